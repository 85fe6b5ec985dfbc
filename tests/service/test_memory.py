"""A hot swap gives the previous version's memory back to the OS (glibc keeps freed small blocks)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from shopsense.service.models_state import release_freed_memory

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not Path("/proc/self/statm").exists(), reason="needs Linux /proc"
)


def _rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20


def test_freed_heap_blocks_go_back_to_the_os() -> None:
    # 400 MB of 8 KB blocks (below glibc's mmap threshold: they live in the heap), every 16th kept, as
    # a loaded version's arrays and objects interleave with what outlives it
    blocks = [bytearray(8000) for _ in range(50_000)]
    kept = blocks[::16]
    del blocks
    before = _rss_mb()
    if not release_freed_memory():
        pytest.skip("no glibc here")
    assert before - _rss_mb() > 200  # the holes between the kept blocks were handed back
    assert len(kept) == 3125


class _Version:
    """A loaded version's stand-in: 400 MB of heap blocks, every 16th outliving it (as in a real one)."""

    def __init__(self, name: str, kept: list) -> None:
        self.name = name
        self.catalog = None
        blocks = [bytearray(8000) for _ in range(50_000)]
        kept.extend(blocks[::16])
        self.blocks = blocks


def _two_versions(tmp_path, load):
    """A ModelState over a store with complete versions v1 (active) and v2, v1 loaded through ``load``."""
    from shopsense.service.models_state import ModelState
    from shopsense.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'kb.db'}")
    state = ModelState(store, load, home=tmp_path)
    for v in ("v1", "v2"):
        (tmp_path / v).mkdir()
        store.register_version(v, status="complete", path=str(tmp_path / v))
    store.activate_version("v1")
    assert state.refresh() and state.version == "v1"
    return store, state


def test_a_swapped_out_version_is_handed_back_once_its_last_request_ends(tmp_path) -> None:
    """The trim at the swap finds the old version still held by requests in flight (and its index by
    the new version); the memory goes back to the OS at the poll after the last of them lets go."""
    if not release_freed_memory():
        pytest.skip("no glibc here")
    kept: list = []
    store, state = _two_versions(tmp_path, lambda version, path: _Version(version, kept))
    in_flight = state.current  # a request that started before the swap
    store.activate_version("v2")
    assert state.refresh() and state.version == "v2"
    held = _rss_mb()
    del in_flight  # the request ends: the old version is garbage now
    state.refresh()  # the next poll
    assert held - _rss_mb() > 200
    assert not state._retired.pending


def test_a_swapped_out_version_in_a_reference_cycle_is_collected(tmp_path) -> None:
    """Held by a request at the swap, the old version was frozen with the heap; a cycle through it was
    never collected (the soak's +26% RSS). The poll that finds it still alive collects once anyway."""
    import weakref

    from shopsense.service.models_state import Retired

    kept: list = []

    def load(version: str, path) -> _Version:
        v = _Version(version, kept)
        v.me = v  # a cycle: reference counting alone never frees it
        return v

    store, state = _two_versions(tmp_path, load)
    state._retired = Retired(collect_after_polls=3)  # the swap's own poll is the first
    old = weakref.ref(state.current)
    in_flight = state.current
    store.activate_version("v2")
    state.refresh()  # the swap freezes the heap while the request still holds v1
    del in_flight
    state.refresh()
    assert old() is not None  # frozen: only a collection after unfreezing frees it
    state.refresh()
    assert old() is None and not state._retired.pending
