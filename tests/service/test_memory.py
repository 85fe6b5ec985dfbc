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
