"""Tokenizer for lexical work (BM25, keyword features): English and Chinese.

- English: lower-case, split on letters/digits, drop stop words, Snowball stemming (PyStemmer).
- Chinese: jieba word segmentation of the CJK runs; Latin runs inside Chinese text ("小米 Redmi Note 12")
  go through the English path, so brands and model numbers still match.

``language="auto"`` segments CJK runs whenever a text contains them (cheap to check per text), so a
mixed catalog works without configuration. :func:`detect_language` picks a catalog's language from
a sample, for code that wants to record or report it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Literal

Language = Literal["auto", "en", "zh"]
LANGUAGES = ("auto", "en", "zh")

# CJK unified ideographs (+ extension A and compatibility ideographs)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CJK_RUNS = re.compile(r"([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+)")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)

#: English stop words: the short classic list (lexical search wants "usb", "c", "3" kept).
_EN_STOP = """a an and are as at be been but by for from has have he her his i if in into is it its me my
    no not of on or our she so such than that the their them then there these they this those to
    too us was we were what when where which while who whom why will with you your yours"""
EN_STOP_WORDS = frozenset(_EN_STOP.split())
#: Chinese function words that carry no product meaning.
_ZH_STOP = "的 了 和 与 及 或 是 在 有 为 对 把 被 让 给 从 向 也 都 就 而 又 并 很 更 最 个 件 款 这 那 之 其 等 着 过 吗 呢 吧 啊"
ZH_STOP_WORDS = frozenset(_ZH_STOP.split())

_jieba_lock = threading.Lock()
_jieba_ready = False


def _jieba():  # noqa: ANN202 - jieba has no types
    """jieba with its dictionary loaded once per process (quietly)."""
    global _jieba_ready
    import jieba

    if not _jieba_ready:
        with _jieba_lock:
            if not _jieba_ready:
                import logging

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba_ready = True
    return jieba


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def detect_language(texts: Iterable[str], *, sample: int = 2000, threshold: float = 0.2) -> str:
    """``"zh"`` when at least ``threshold`` of the (first ``sample``) non-empty texts contain Chinese, else ``"en"``."""
    n = hits = 0
    for t in texts:
        if not isinstance(t, str) or not t.strip():
            continue
        n += 1
        hits += has_cjk(t)
        if n >= sample:
            break
    return "zh" if n and hits / n >= threshold else "en"


class Tokenizer:
    """Text -> list of normalised tokens for lexical matching.

    >>> Tokenizer("en").tokenize("The Running Shoes for Men")
    ['run', 'shoe', 'men']
    """

    def __init__(
        self,
        language: str = "auto",
        *,
        stem: bool = True,
        stop_words: bool = True,
        search_mode: bool = False,
    ) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"unknown tokenizer language {language!r}; valid: {', '.join(LANGUAGES)}")
        self.language = language
        self.stem = stem
        self.stop_words = stop_words
        # jieba's search mode also emits the short words inside long ones (better recall for queries)
        self.search_mode = search_mode
        self._local = threading.local()  # PyStemmer objects are not thread-safe

    def _stemmer(self):  # noqa: ANN202
        st = getattr(self._local, "stemmer", None)
        if st is None:
            import Stemmer

            st = self._local.stemmer = Stemmer.Stemmer("english")
        return st

    def _latin(self, text: str) -> list[str]:
        words = _WORD.findall(text.lower())
        if self.stop_words:
            words = [w for w in words if w not in EN_STOP_WORDS]
        if self.stem and words:
            words = self._stemmer().stemWords(words)
        return words

    def _chinese(self, run: str) -> list[str]:
        jb = _jieba()
        pieces = jb.lcut_for_search(run) if self.search_mode else jb.lcut(run)
        out = [p for p in pieces if p.strip()]
        if self.stop_words:
            out = [p for p in out if p not in ZH_STOP_WORDS]
        return out

    def tokenize(self, text: str) -> list[str]:
        """Tokens of one text (empty list for empty or missing text)."""
        if not isinstance(text, str) or not text:
            return []
        if self.language == "en" or not has_cjk(text):
            return self._latin(text)
        out: list[str] = []
        for i, part in enumerate(_CJK_RUNS.split(text)):
            if not part:
                continue
            # split() with a capture group alternates: even = non-CJK, odd = CJK run
            out.extend(self._chinese(part) if i % 2 else self._latin(part))
        return out

    def tokenize_many(self, texts: Iterable[str]) -> list[list[str]]:
        """Tokens of each text (the corpus format bm25s and similar libraries take)."""
        return [self.tokenize(t) for t in texts]

    __call__ = tokenize

    def __repr__(self) -> str:
        return f"Tokenizer(language={self.language!r})"
