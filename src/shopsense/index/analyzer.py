"""Text analysis for lexical search: normalise numbers and units, tokenize, expand synonyms.

Product titles and queries write the same quantity many ways ("1/2 in.", "1/2\"", ".5 inch",
"1-1/2 in." vs "1.5 in"). :func:`normalize_text` rewrites fractions and decimals to one spelling
(``0p5``) and attaches a canonical unit (``0p5in``) while keeping the bare number, so "1/2 inch pvc"
matches "PVC 1/2 in. x 10 ft." on both ``0p5`` and ``0p5in``. The shared
:class:`~shopsense.features.tokenize.Tokenizer` then does stemming, stop words and Chinese
segmentation. Synonyms come from a plain text file (see :func:`load_synonyms`).
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

from shopsense.exceptions import InputFileError
from shopsense.features.tokenize import Tokenizer

_MIXED = re.compile(r"\b(\d+)[- ]+(\d+)/(\d+)\b")
_FRAC = re.compile(r"\b(\d+)/(\d+)\b")
_DEC = re.compile(r"(?<![\d.])(\d*)\.(\d+)\b")
_NUM_X = re.compile(r"(\d)\s*(?:x|\*|by)\s*(?=\d)")
_NUM = r"\b(\d[\dp]*)[\s-]*"
# Longer units first: "sq. ft." must not become "sq" + "ft".
_UNITS: tuple[tuple[str, str], ...] = (
    (r"(?:sq\.?\s*ft\.?|square\s+f(?:ee|oo)t|sqft)", "sqft"),
    (r"(?:cu\.?\s*ft\.?|cubic\s+f(?:ee|oo)t|cuft)", "cuft"),
    (r"(?:inches|inch|in\.|in\b|\"|''|”)", "in"),
    (r"(?:feet|foot|ft\.?|')", "ft"),
    (r"(?:gallons|gallon|gal\.?)", "gal"),
    (r"(?:pounds|pound|lbs\.?|lb\.?)", "lb"),
    (r"(?:ounces|ounce|oz\.?)", "oz"),
    (r"(?:volts|volt|v)\b", "volt"),
    (r"(?:watts|watt|w)\b", "watt"),
    (r"(?:amps|amp|a)\b", "amp"),
    (r"(?:millimeters|millimeter|mm)\b", "mm"),
    (r"(?:centimeters|centimeter|cm)\b", "cm"),
    (r"(?:gauge|ga\.?)\b", "ga"),
    (r"(?:degrees|degree|deg\.?)\b", "deg"),
    (r"(?:btus|btu)\b", "btu"),
    (r"(?:pack|pk\.?|pcs|pieces|piece|pc\.?)\b", "pk"),
)
_UNIT_RES = tuple((re.compile(_NUM + pattern, re.IGNORECASE), unit) for pattern, unit in _UNITS)
_HTML = {"&#39;": "'", "&quot;": '"', "&amp;": "&"}


def _num(value: float | Fraction) -> str:
    """A number as one token: 1.5 -> ``1p5`` (the tokenizer would split on the dot)."""
    s = f"{float(value):.4f}".rstrip("0").rstrip(".")
    return s.replace(".", "p")


def normalize_text(text: str) -> str:
    """Lower-case ``text`` and give numbers and units one spelling (``1-1/2 in.`` -> ``1p5 1p5in``)."""
    if not isinstance(text, str) or not text:
        return ""
    t = text.lower()
    for k, v in _HTML.items():
        t = t.replace(k, v)
    t = _MIXED.sub(lambda m: _num(int(m[1]) + Fraction(int(m[2]), int(m[3]))) + " " if int(m[3]) else m[0], t)
    t = _FRAC.sub(lambda m: _num(Fraction(int(m[1]), int(m[2]))) if int(m[2]) else m[0], t)
    t = _DEC.sub(lambda m: _num(float((m[1] or "0") + "." + m[2])), t)
    t = _NUM_X.sub(r"\1 x ", t)
    for rx, unit in _UNIT_RES:
        t = rx.sub(r"\1 \1" + unit + " ", t)
    return t


def load_synonyms(path: str | Path) -> list[list[str]]:
    """Synonym groups from a file: one group per line, comma-separated (``fridge, refrigerator``);
    ``#`` starts a comment. A ``.json`` file holds a list of lists instead."""
    p = Path(path)
    try:
        raw = p.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise FileNotFoundError(f"synonyms file not found: {p}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise InputFileError(f"{p}: cannot read the synonyms file: {e}") from e
    if p.suffix == ".json":
        try:
            groups = json.loads(raw)
        except json.JSONDecodeError as e:
            raise InputFileError(f"{p}: not valid JSON: {e}") from e
        if not isinstance(groups, list) or not all(isinstance(g, list) for g in groups):
            raise ValueError(f"{p}: a JSON synonyms file must hold a list of lists of strings")
        return [[str(w).strip() for w in g if str(w).strip()] for g in groups]
    out: list[list[str]] = []
    for line in raw.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            group = [w.strip() for w in line.split(",") if w.strip()]
            if len(group) > 1:
                out.append(group)
    return out


MEMO_TEXTS = 4096  # short texts whose tokens an Analyzer remembers
MEMO_TEXT_CHARS = 120


class Analyzer:
    """Text -> tokens for the BM25 index and the re-ranker features.

    >>> Analyzer("en").tokens('1/2 in. copper pipes')
    ['0p5', '0p5in', 'copper', 'pipe']
    """

    def __init__(self, language: str = "auto", synonyms: list[list[str]] | None = None) -> None:
        self.language = language
        # jieba's search mode also emits the words inside long ones ("智能手机" -> 智能, 手机, 智能手机),
        # so a short query matches a long title word
        self.tokenizer = Tokenizer(language, search_mode=True)
        # short text -> its tokens: one search analyses its query 4-5 times (retrieval, features,
        # did-you-mean, matched fields), ~0.1 ms each; product texts are mostly longer and skip it
        self._memo: dict[str, tuple[str, ...]] = {}
        self.synonym_groups = [list(g) for g in synonyms or []]
        # token -> the other tokens of its groups (single-token entries only; phrases expand token-wise)
        self._syn: dict[str, list[str]] = {}
        for group in self.synonym_groups:
            toks = [self.tokens(w) for w in group]
            for i, ti in enumerate(toks):
                if len(ti) != 1:
                    continue
                others = [t for j, tj in enumerate(toks) if j != i for t in tj]
                self._syn.setdefault(ti[0], []).extend(t for t in others if t != ti[0])

    def tokens(self, text: str) -> list[str]:
        """Normalised, stemmed tokens of a text (products and queries alike)."""
        if not isinstance(text, str) or len(text) > MEMO_TEXT_CHARS:
            return self.tokenizer.tokenize(normalize_text(text))
        found = self._memo.get(text)
        if found is None:
            found = tuple(self.tokenizer.tokenize(normalize_text(text)))
            if len(self._memo) >= MEMO_TEXTS:
                self._memo.clear()  # bounded; a cleared memo refills with the next searches
            self._memo[text] = found
        return list(found)

    def synonyms_of(self, token: str) -> list[str]:
        """The other tokens of ``token``'s synonym groups (empty without synonyms)."""
        return list(self._syn.get(token, ()))

    def query_tokens(self, text: str) -> list[str]:
        """Tokens of a query plus the synonyms of each token (deduplicated, original order first)."""
        toks = self.tokens(text)
        if not self._syn:
            return toks
        out = list(toks)
        for t in toks:
            out.extend(s for s in self._syn.get(t, ()) if s not in out)
        return out
