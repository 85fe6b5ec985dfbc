"""Typo tolerance against the catalog vocabulary (symmetric-delete spelling correction).

The vocabulary is every word of the indexed product text with its frequency. A query word that the
catalog does not know (neither as written nor after stemming) is replaced by the most frequent
catalog word within a small Damerau-Levenshtein distance (1 for words of 4-5 letters, 2 beyond),
found through a symmetric-delete dictionary (SymSpell's idea: index every deletion of every
word, so a lookup is a handful of dict probes instead of a scan). A word that is two catalog words
glued together ("microwavestand") is split. Words with digits (model numbers) are never touched.

On the Home Depot development queries this corrects about 1 query in 6 and lifts BM25 NDCG@10 by
about 0.015 (see ``docs/benchmarks.md``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from shopsense.index.analyzer import normalize_text

FORMAT_VERSION = 1
_WORD = re.compile(r"[^\W_]+")
# The correction thresholds (SpellCorrector's defaults). They were first picked by looking at Home
# Depot's scored queries; `benchmarks/search_homedepot.py --choose-defaults` now chooses them on one
# half of the queries and scores the other (docs/benchmarks.md, Search quality).
MIN_LENGTH = 4  # shorter words are never corrected
TWO_EDITS_FROM = 6  # words this long may be 2 edits away (shorter: 1)
MIN_SPLIT_FREQUENCY = 5  # a glued word is split only into two words seen this often


def _deletes(word: str, depth: int) -> set[str]:
    out = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        out |= frontier
    return out


def edit_distance(a: str, b: str, limit: int = 2) -> int:
    """Optimal-string-alignment distance (a swap of neighbours counts 1); ``limit + 1`` when above ``limit``."""
    la, lb = len(a), len(b)
    if abs(la - lb) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(lb + 1))
    for i in range(1, la + 1):
        cur = [i] + [0] * lb
        for j in range(1, lb + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return min(prev[lb], limit + 1)


def max_distance(n: int, min_length: int = MIN_LENGTH, two_edits_from: int = TWO_EDITS_FROM) -> int:
    """How many edits a word of ``n`` letters may be away from its correction."""
    return 0 if n < min_length else (1 if n < two_edits_from else 2)


class SpellCorrector:
    """Correct query words against a catalog vocabulary.

    >>> sc = SpellCorrector.from_texts(["Whirlpool Microwave Oven"] * 3)
    >>> sc.correct("whirpool microwve")
    ('whirlpool microwave', True)
    """

    def __init__(
        self,
        frequencies: dict[str, int],
        known: Callable[[str], bool] | None = None,
        *,
        min_length: int = MIN_LENGTH,
        two_edits_from: int = TWO_EDITS_FROM,
        min_split_frequency: int = MIN_SPLIT_FREQUENCY,
    ) -> None:
        if not 1 <= min_length <= two_edits_from:
            raise ValueError(f"need 1 <= min_length <= two_edits_from, got {min_length} and {two_edits_from}")
        self.frequencies = dict(frequencies)
        # ``known`` says a word needs no correction although it is not in the vocabulary as written
        # (the engine passes "its stem is indexed", so "drills" is not corrected to "drill").
        self.known = known
        self.min_length, self.two_edits_from = min_length, two_edits_from
        self.min_split_frequency = min_split_frequency
        self._deletes: dict[str, list[str]] = {}
        for w in self.frequencies:
            if len(w) >= min_length:
                for d in _deletes(w, self.max_distance(len(w))):
                    self._deletes.setdefault(d, []).append(w)

    def max_distance(self, n: int) -> int:
        """How many edits a word of ``n`` letters may be away from its correction (this corrector's thresholds)."""
        return max_distance(n, self.min_length, self.two_edits_from)

    @classmethod
    def from_texts(
        cls, texts: Iterable[str], known: Callable[[str], bool] | None = None, **thresholds: int
    ) -> SpellCorrector:
        """Build the vocabulary from product texts (normalised like the index); ``thresholds`` are the
        constructor's ``min_length``, ``two_edits_from`` and ``min_split_frequency``."""
        freq = Counter(w for t in texts for w in _WORD.findall(normalize_text(t)) if w.isalpha() and w.isascii())
        return cls(dict(freq), known, **thresholds)

    def correct_word(self, word: str) -> str:
        """The correction of one lower-case word (itself when known, short, or nothing is close)."""
        # only plain Latin words: model numbers (digits) and Chinese are left alone
        if len(word) < self.min_length or word in self.frequencies or not (word.isalpha() and word.isascii()):
            return word
        if self.known is not None and self.known(word):
            return word
        close = self.neighbours(word, 1)
        if close:
            return close[0]
        for i in range(2, len(word) - 1):  # two words glued together
            a, b = word[:i], word[i:]
            if min(self.frequencies.get(a, 0), self.frequencies.get(b, 0)) >= self.min_split_frequency:
                return f"{a} {b}"
        return word

    def neighbours(self, word: str, n: int = 5, *, limit: int | None = None, min_frequency: int = 0) -> list[str]:
        """Up to ``n`` vocabulary words within :meth:`max_distance` (or ``limit``) edits of ``word``
        (itself excluded) seen at least ``min_frequency`` times, closest first, then most frequent.
        Unlike :meth:`correct_word` this also answers for known words, which finds real-word typos
        ("heather" for "heater") when a query finds little."""
        w = word.lower()
        most = self.max_distance(len(w))
        limit = most if limit is None else min(most, limit)
        if limit == 0 or not (w.isalpha() and w.isascii()):
            return []
        candidates: set[str] = set()
        for d in _deletes(w, limit):
            candidates.update(self._deletes.get(d, ()))
        scored = []
        for c in candidates:
            if c == w or self.frequencies[c] < min_frequency:
                continue
            dist = edit_distance(w, c, limit)
            if dist <= limit:
                scored.append((dist, -self.frequencies[c], c))
        return [c for _, _, c in sorted(scored)[:n]]

    def correct(self, query: str) -> tuple[str, bool]:
        """``(corrected query, whether anything changed)``; words keep their place, the text is lower-cased."""
        changed = False

        def fix(m: re.Match[str]) -> str:
            nonlocal changed
            c = self.correct_word(m[0])
            changed |= c != m[0]
            return c

        text = _WORD.sub(fix, query.lower()) if isinstance(query, str) else ""
        return text, changed

    def suggest(self, prefix: str, n: int = 5) -> list[str]:
        """The most frequent vocabulary words starting with ``prefix``."""
        p = prefix.lower()
        hits = [(f, w) for w, f in self.frequencies.items() if w.startswith(p)]
        return [w for _, w in sorted(hits, key=lambda x: (-x[0], x[1]))[:n]]

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps({"format_version": FORMAT_VERSION, "frequencies": self.frequencies}), encoding="utf-8")
        return p

    @classmethod
    def load(cls, path: str | Path, known: Callable[[str], bool] | None = None) -> SpellCorrector:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"spelling vocabulary at {path} has format {data.get('format_version')}, expected {FORMAT_VERSION}"
            )
        return cls(data["frequencies"], known)
