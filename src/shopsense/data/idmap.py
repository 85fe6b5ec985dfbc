"""External string ids <-> internal integers 0..n-1."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from shopsense.exceptions import UnknownItemError


class IdMap:
    """A bijection between external ids (strings) and dense integers, in insertion order."""

    def __init__(self, external_ids: Sequence[str] | np.ndarray) -> None:
        ext = np.asarray(external_ids, dtype=object)
        self.external_ids = ext
        self._index = pd.Index(ext)
        if not self._index.is_unique:
            raise ValueError("IdMap ids must be unique")
        self._dict: dict[object, int] | None = None  # built on the first small lookup

    @classmethod
    def from_values(cls, values: Iterable[str]) -> IdMap:
        """Ids in order of first appearance."""
        return cls(pd.unique(pd.Series(list(values) if not isinstance(values, pd.Series) else values, dtype=object)))

    def __len__(self) -> int:
        return len(self.external_ids)

    def __contains__(self, ext_id: object) -> bool:
        return ext_id in self._index

    def to_internal(self, ext_ids: Sequence[str] | np.ndarray | pd.Series, *, strict: bool = True) -> np.ndarray:
        """Internal indices of ``ext_ids``; unknown ids raise (``strict``) or map to -1."""
        if len(ext_ids) <= 256:  # per-request sizes: a dict beats building a pandas Index (~0.5 ms)
            if self._dict is None:
                self._dict = {e: i for i, e in enumerate(self.external_ids.tolist())}
            get = self._dict.get
            idx = np.fromiter((get(e, -1) for e in ext_ids), dtype=np.int64, count=len(ext_ids))
        else:
            idx = self._index.get_indexer(pd.Index(np.asarray(ext_ids, dtype=object)))
        if strict and (idx < 0).any():
            missing = np.asarray(ext_ids, dtype=object)[idx < 0][:5]
            raise UnknownItemError(f"unknown ids: {', '.join(map(str, missing))}")
        return idx.astype(np.int64)

    def index_of(self, ext_id: str) -> int:
        """Internal index of one id; raises UnknownItemError when absent."""
        return int(self.to_internal([ext_id])[0])

    def to_external(self, idx: Sequence[int] | np.ndarray) -> np.ndarray:
        return self.external_ids[np.asarray(idx, dtype=np.int64)]

    def extended(self, new_ids: Iterable[str]) -> IdMap:
        """A new map holding these ids and, after them, any new ones (existing indices do not move)."""
        new = [i for i in pd.unique(pd.Series(list(new_ids), dtype=object)) if i not in self._index]
        return IdMap(np.concatenate([self.external_ids, np.asarray(new, dtype=object)]))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps([str(x) for x in self.external_ids], ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> IdMap:
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))
