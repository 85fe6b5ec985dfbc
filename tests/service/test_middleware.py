"""Request ids: unique within a process and across processes (the feedback loop joins on them)."""

from __future__ import annotations

import multiprocessing as mp
import os

from shopsense.service.middleware import new_request_id


def _ids_of_a_child(q: mp.Queue) -> None:
    q.put([new_request_id() for _ in range(3)])


def test_request_ids_are_unique_in_a_process_and_in_a_forked_child() -> None:
    here = [new_request_id() for _ in range(10_000)]
    assert len(set(here)) == len(here) and all(len(i) == 32 and int(i, 16) >= 0 for i in here)
    if not hasattr(os, "fork"):
        return
    q: mp.Queue = mp.get_context("fork").Queue()
    child = mp.get_context("fork").Process(target=_ids_of_a_child, args=(q,))
    child.start()
    theirs = q.get(timeout=30)
    child.join(timeout=30)
    assert not set(theirs) & set(here) and not set(theirs) & {new_request_id() for _ in range(3)}
