"""Autocomplete: prefix suggestions from past popular queries and product titles.

Entries are kept in one sorted list of lower-cased keys, so the entries starting with a prefix are
a contiguous range found by binary search; within it the heaviest win. Past queries weigh their
search count times :data:`QUERY_WEIGHT` (what shoppers typed beats what the catalog says), titles
weigh 1 plus their popularity. Besides whole strings, every title suffix starting at a word is
indexed too, so "micro" also completes "Whirlpool Microwave ..." (at a lower weight).
"""

from __future__ import annotations

import bisect
import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

FORMAT_VERSION = 1
QUERY_WEIGHT = 10.0
INNER_WEIGHT = 0.5  # a match inside a title counts half of a match at its start
MAX_ANSWERS = 20_000  # remembered suggestion lists per instance
_SPACES = re.compile(r"\s+")


def _key(s: str) -> str:
    return _SPACES.sub(" ", s.strip().lower())


class Autocomplete:
    """Prefix suggestions.

    >>> ac = Autocomplete.build(["Whirlpool Microwave"], queries=["whirlpool fridge", "whirlpool fridge"])
    >>> ac.suggest("whirl")
    ['whirlpool fridge', 'whirlpool microwave']
    """

    def __init__(self, entries: dict[str, tuple[str, float]], queries: dict[str, int] | None = None) -> None:
        # key -> (text to show, weight); ``text`` is the full suggestion even for inner-word keys
        self.entries = entries
        self._keys = sorted(entries)
        self.queries = dict(queries or {})  # past query (normalised) -> times searched ("did you mean")
        self._by_word: dict[str, list[str]] | None = None
        # Answers per (prefix, k, scan): the entries never change, and short prefixes, the ones
        # typed most, scan thousands of keys (~4 ms for a two-letter prefix on 50k products)
        self._answers: dict[tuple[str, int, int], list[str]] = {}

    @classmethod
    def build(
        cls,
        titles: Iterable[str],
        queries: Iterable[str] = (),
        popularity: Iterable[float] | None = None,
        max_title_words: int = 8,
    ) -> Autocomplete:
        """Entries from product titles (optionally weighted by popularity) and past queries (repeats count)."""
        entries: dict[str, tuple[str, float]] = {}

        def put(key: str, text: str, w: float) -> None:
            old = entries.get(key)
            if old is None or w > old[1]:
                entries[key] = (text, w)
            elif old[0] == text:
                entries[key] = (text, old[1] + w)

        pops = list(popularity) if popularity is not None else None
        for i, title in enumerate(titles):
            if not isinstance(title, str) or not title.strip():
                continue
            text = _key(title)
            w = 1.0 + (float(pops[i]) if pops is not None else 0.0)
            put(text, text, w)
            words = text.split(" ")[:max_title_words]
            for j in range(1, len(words)):
                put(" ".join(words[j:]) + "\x00" + text, text, w * INNER_WEIGHT)
        counts = Counter(_key(q) for q in queries if isinstance(q, str) and q.strip())
        for q, n in counts.items():
            put(q, q, QUERY_WEIGHT * n)
        return cls(entries, dict(counts))

    def suggest(self, prefix: str, k: int = 8, scan: int = 5000) -> list[str]:
        """Up to ``k`` distinct suggestions for a typed prefix, heaviest first."""
        p = _key(prefix)
        if not p:
            return []
        memo = (p, k, scan)
        # one snapshot, read in this order: forget() swaps in entries, keys, then answers
        answers, keys, entries = self._answers, self._keys, self.entries
        found = answers.get(memo)
        if found is None:
            lo = bisect.bisect_left(keys, p)
            hi = bisect.bisect_left(keys, p + "\uffff", lo)
            best: dict[str, float] = {}
            for key in keys[lo : min(hi, lo + scan)]:  # a 1-letter prefix may match most of the catalog
                entry = entries.get(key)  # None: forgotten between reading keys and entries
                if entry is None:
                    continue
                text, w = entry
                if w > best.get(text, -1.0):
                    best[text] = w
            found = [t for t, _ in sorted(best.items(), key=lambda x: (-x[1], x[0]))[:k]]
            if len(answers) >= MAX_ANSWERS:  # bounded: prefixes come from requests
                answers.clear()
            answers[memo] = found
        return list(found)

    def forget(self, queries: Iterable[str]) -> int:
        """Take back past searches (a deleted shopper's, with repeats): each one's count goes down, and a
        query nobody else searched leaves the suggestions and "did you mean". Returns the queries changed.
        (A query equal to a product title may take that title's entry with it until the next build.)"""
        counts = Counter(_key(q) for q in queries if isinstance(q, str) and q.strip())
        counts = Counter({q: n for q, n in counts.items() if self.queries.get(q)})
        if not counts:
            return 0
        # copies swapped in at the end: requests on other threads read the old ones meanwhile
        past, entries, dropped = dict(self.queries), dict(self.entries), set()
        for q, n in counts.items():
            taken = min(n, past[q])
            if past[q] > taken:
                past[q] -= taken
            else:
                del past[q]
            entry = entries.get(q)
            if entry is not None and entry[0] == q:
                w = entry[1] - QUERY_WEIGHT * taken
                if w > 0:
                    entries[q] = (q, w)
                else:
                    del entries[q]
                    dropped.add(q)
        keys = [k for k in self._keys if k not in dropped] if dropped else self._keys
        self.entries, self._keys, self.queries = entries, keys, past
        self._by_word = None
        self._answers = {}  # last: remembered answers may hold the queries (see suggest)
        return len(counts)

    def limit_to(self, queries: Iterable[str]) -> int:
        """Cut past-query counts down to those of ``queries`` (the searches the store holds now): what
        was deleted elsewhere leaves; queries searched since are not added."""
        now = Counter(_key(q) for q in queries if isinstance(q, str) and q.strip())
        excess = [q for q, have in self.queries.items() for _ in range(max(have - now.get(q, 0), 0))]
        return self.forget(excess)

    def queries_with_word(self, word: str) -> list[str]:
        """Past queries having ``word`` as one of their words (an inverted index built on first use)."""
        by_word = self._by_word
        if by_word is None:
            past, by_word = self.queries, {}
            for q in past:
                for w in set(q.split(" ")):
                    by_word.setdefault(w, []).append(q)
            if self.queries is past:  # not forgotten meanwhile (forget() resets the index)
                self._by_word = by_word
        return by_word.get(word, [])

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        data = {
            "format_version": FORMAT_VERSION,
            "entries": [[k, t, w] for k, (t, w) in self.entries.items()],
            "queries": self.queries,
        }
        p.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        return p

    @classmethod
    def load(cls, path: str | Path) -> Autocomplete:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"autocomplete at {path} has format {data.get('format_version')}, expected {FORMAT_VERSION}"
            )
        # "queries" was added later in format 1: older files simply have no past queries for "did you mean"
        return cls({k: (t, float(w)) for k, t, w in data["entries"]}, data.get("queries"))
