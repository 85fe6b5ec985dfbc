"""The engine lane: a process computes recommend/search/similar answers one at a time on its event loop
(``service.engine_threads`` = 0) or on at most N threads; the rest wait in order."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from shopsense.config import Settings
from shopsense.ranking.ranked import RankedItem
from shopsense.recommend.request import RecommendRequest
from tests.service.conftest import FakeServed, make_env


def _peak_concurrency(settings: Settings, monkeypatch: pytest.MonkeyPatch, lanes: int) -> tuple[int, list[int]]:
    settings = settings.model_copy(update={"service": settings.service.model_copy(update={"engine_threads": lanes})})
    running, peak, lock = 0, 0, threading.Lock()
    real = FakeServed.recommend

    def slow(self: FakeServed, request: RecommendRequest) -> list[RankedItem]:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return real(self, request)

    monkeypatch.setattr(FakeServed, "recommend", slow)
    env = make_env(settings)
    e = next(env)
    try:
        with ThreadPoolExecutor(6) as pool:
            codes = list(
                pool.map(
                    lambda i: e.client.get("/recommend", params={"user_id": f"u{i}", "k": 2}, headers=e.h("read")),
                    range(6),
                )
            )
        health = e.client.get("/health").status_code
    finally:
        env.close()
    return peak, [c.status_code for c in codes] + [health]


@pytest.mark.parametrize("lanes", [0, 1])  # 0: on the event loop itself
def test_one_lane_runs_one_computation_at_a_time(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, lanes: int
) -> None:
    peak, codes = _peak_concurrency(settings, monkeypatch, lanes)
    assert peak == 1 and set(codes) == {200}


def test_more_lanes_run_side_by_side(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    peak, codes = _peak_concurrency(settings, monkeypatch, 3)
    assert 1 < peak <= 3 and set(codes) == {200}
