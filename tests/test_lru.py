"""The shared least-recently-used map (shopsense/lru.py)."""

import pytest

from shopsense.lru import LRU


def test_the_least_recently_used_goes_first() -> None:
    cache: LRU[int] = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the oldest
    cache.put("c", 3)
    assert cache.keys() == ["a", "c"]
    assert cache.get("b") is None


def test_pop_keys_and_clear() -> None:
    cache: LRU[str] = LRU(3)
    for k in "xyz":
        cache.put(k, k.upper())
    assert cache.pop("y") == "Y"
    assert cache.pop("y") is None
    assert cache.keys() == ["x", "z"] and len(cache) == 2
    cache.clear()
    assert len(cache) == 0


def test_size_zero_keeps_nothing_and_negative_is_refused() -> None:
    cache: LRU[int] = LRU(0)
    cache.put("a", 1)
    assert cache.get("a") is None and len(cache) == 0
    with pytest.raises(ValueError, match="negative"):
        LRU(-1)
