"""A small thread-safe least-recently-used map: what a server keeps in memory for repeated requests."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class LRU(Generic[V]):
    """At most ``size`` values by key; the least recently read or written goes first (``size`` 0:
    keeps nothing). Safe to share between a server's request threads."""

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"an LRU size cannot be negative: {size}")
        self.size = size
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> None:
        if self.size == 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def pop(self, key: Hashable) -> V | None:
        """Remove ``key``; returns its value, or None where it was not held."""
        with self._lock:
            return self._items.pop(key, None)

    def keys(self) -> list[Hashable]:
        """The keys held now, the least recently used first (a copy: safe while others write)."""
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
