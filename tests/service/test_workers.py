"""The parent of ``serve --workers N`` hands each connection to the least busy live worker."""

from __future__ import annotations

import socket

import pytest

from shopsense.service.workers import _hand_to_least_busy, _Worker, handing_supported


class _Proc:
    def __init__(self, alive: bool) -> None:
        self.alive = alive

    def is_alive(self) -> bool:
        return self.alive


class _FakeWorker(_Worker):
    """A ``_Worker`` without a process: open connections = given - closed[index]."""

    def __init__(self, index: int, given: int, alive: bool = True, broken: bool = False) -> None:
        self.index, self.given, self.broken = index, given, broken
        self.process = _Proc(alive)  # type: ignore[assignment]
        self.received: list[int] = []

    def hand(self, conn: socket.socket) -> None:
        if self.broken:
            raise BrokenPipeError("worker gone")
        self.received.append(conn.fileno())
        self.given += 1


@pytest.fixture
def conn():
    a, b = socket.socketpair()
    yield a
    a.close()
    b.close()


def test_goes_to_the_worker_with_fewest_open_connections(conn) -> None:
    pool = [_FakeWorker(0, given=5), _FakeWorker(1, given=9)]
    closed = [0, 6]  # worker 0 has 5 open, worker 1 has 3
    _hand_to_least_busy(pool, (closed, [1, 1]), conn)
    assert pool[1].received and not pool[0].received


def test_ready_workers_come_first(conn) -> None:
    """A worker still loading its engines (just restarted) gets connections only when no ready one is left."""
    pool = [_FakeWorker(0, given=0), _FakeWorker(1, given=6), _FakeWorker(2, given=0, broken=True)]
    _hand_to_least_busy(pool, ([0, 0, 0], [0, 1, 1]), conn)
    assert pool[1].received and not pool[0].received  # busier, but ready (worker 2 failed)
    pool[1].broken = True
    _hand_to_least_busy(pool, ([0, 0, 0], [0, 1, 1]), conn)
    assert pool[0].received  # no ready worker took it: the loading one does


def test_spreads_evenly_and_ties_go_to_the_first(conn) -> None:
    pool = [_FakeWorker(i, given=0) for i in range(3)]
    closed = [0, 0, 0]
    for _ in range(9):
        _hand_to_least_busy(pool, (closed, [1, 1, 1]), conn)
    assert [len(w.received) for w in pool] == [3, 3, 3]
    assert pool[0].received  # the first hand-over (all tied) went to worker 0


def test_skips_dead_and_failing_workers(conn) -> None:
    pool = [_FakeWorker(0, 0, alive=False), _FakeWorker(1, 0, broken=True), _FakeWorker(2, given=7)]
    _hand_to_least_busy(pool, ([0, 0, 0], [1, 1, 1]), conn)
    assert pool[2].received and pool[1].given == 0


def test_no_live_worker_leaves_the_connection_to_the_caller(conn) -> None:
    pool = [_FakeWorker(0, 0, alive=False)]
    _hand_to_least_busy(pool, ([0], [1]), conn)  # logs; the caller closes conn
    assert not pool[0].received


@pytest.mark.skipif(not handing_supported(), reason="no send_fds on this platform")
def test_a_handed_socket_is_the_same_connection() -> None:
    """The mechanism itself: a socket sent with send_fds arrives as a working copy in the receiver."""
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    client, server_side = socket.socketpair()
    try:
        socket.send_fds(left, [b"c"], [server_side.fileno()])
        server_side.close()  # the sender's copy is closed, as the parent does
        msg, fds, _, _ = socket.recv_fds(right, 64, 64)
        assert msg == b"c" and len(fds) == 1
        with socket.socket(fileno=fds[0]) as handed:
            client.sendall(b"ping")
            assert handed.recv(4) == b"ping"
    finally:
        for s in (left, right, client):
            s.close()


def test_a_worker_gets_exactly_the_parents_settings_and_keys(tmp_path, monkeypatch) -> None:
    """What ``serve --workers N`` passes each worker: its settings (secrets included), one page key
    and one cookie secret, taken out of the environment again so a trainer does not inherit them."""
    import os

    from shopsense.config import load_settings
    from shopsense.service.app import app_from_env, worker_environment

    config = tmp_path / "shop.toml"
    config.write_text('[service]\npages = true\nmax_body_bytes = 2048\npseudonym_secret = "s3cret"\n')
    settings = load_settings(config, home=tmp_path / "kb")
    env = worker_environment(settings)
    monkeypatch.setenv("SHOPSENSE_SERVICE__MAX_BODY_BYTES", "9999")  # the worker's own environment loses
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    state = app_from_env().state.shopsense
    assert state.settings == settings and state.settings.service.pseudonym_secret == "s3cret"
    assert state.page_key in env.values() and state.keys.verify(state.page_key).is_shopper
    assert not set(env) & set(os.environ)
    state.store.close()
