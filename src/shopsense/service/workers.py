"""``shopsense serve --workers N``: N server processes behind one port, each connection given to the
worker that holds the fewest open connections.

Keep-alive clients (a shop's web servers, a load generator) open a few connections and send every
request over them, so how the connections are spread decides how the load is spread. Measured with
32 connections on 2 workers:

- uvicorn's own ``--workers`` shares one listening socket, and whichever process wakes first accepts
  a whole burst: all 32 connections went to one worker in two of three tries;
- one ``SO_REUSEPORT`` socket per worker lets the kernel spread connections by a hash of their
  addresses: 9/23, 18/14 and 21/11 in three tries, so one core got up to 72% of the work.

Here the parent accepts every connection and hands its file descriptor (``SCM_RIGHTS`` over a Unix
socket pair) to the worker with the fewest open connections: 16/16. Workers that have loaded their
engines come first, so a worker restarted after a crash does not answer "loading" (503) to new
connections while the others can serve them. Each worker serves the handed connections with
uvicorn's own HTTP protocol, counts the ones that close and says when it is ready. The parent
restarts a worker that dies and stops them all on SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("shopsense.service")


def handing_supported() -> bool:
    """Whether this platform can pass sockets between processes (POSIX: ``socket.send_fds``)."""
    return hasattr(socket, "send_fds") and hasattr(socket, "AF_UNIX")


def listening_socket(host: str, port: int) -> socket.socket:
    """The one socket the parent accepts on (fails at once if anything listens on the port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(2048)
    except OSError:
        s.close()
        raise
    return s


class _Worker:
    """One worker process as the parent sees it: its end of the hand-over channel and the number of
    connections it was given. The worker writes two shared slots: ``closed[index]``, how many of
    them closed, and ``ready[index]``, 1 once its engines are loaded."""

    def __init__(self, ctx: Any, index: int, shared: tuple[Any, Any], host: str, port: int, log_level: str) -> None:
        self.index = index
        self.given = 0
        closed, ready = shared
        closed[index] = ready[index] = 0
        self.channel, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.process = ctx.Process(
            target=_worker_main,
            args=(child_end, shared, index, host, port, log_level),
            name=f"shopsense-worker-{index}",
        )
        self.process.start()
        child_end.close()

    def open_connections(self, closed: Any) -> int:
        return self.given - closed[self.index]

    def preference(self, shared: tuple[Any, Any]) -> tuple[bool, int, int]:
        """Sort key: ready workers first, then the fewest open connections, then the lowest index."""
        closed, ready = shared
        return (not ready[self.index], self.open_connections(closed), self.index)

    def hand(self, conn: socket.socket) -> None:
        socket.send_fds(self.channel, [b"c"], [conn.fileno()])
        self.given += 1

    def close(self) -> None:
        self.channel.close()


def serve_workers(host: str, port: int, workers: int, log_level: str = "warning") -> None:
    """Run ``workers`` server processes behind ``host:port`` until SIGINT/SIGTERM. Each builds its app
    with :func:`shopsense.service.app.app_from_env`: put :func:`~shopsense.service.app.worker_environment`
    in ``os.environ`` first, or the workers read their settings from the environment alone."""
    listener = listening_socket(host, port)
    listener.settimeout(0.5)  # the accept loop looks at the stop flag this often
    ctx = mp.get_context("spawn")  # a fresh interpreter per worker: no state forked from this one
    # slot i of each is written by worker i only (and reset by the parent before worker i starts)
    shared = (ctx.Array("q", workers, lock=False), ctx.Array("b", workers, lock=False))
    pool = [_Worker(ctx, i, shared, host, port, log_level) for i in range(workers)]
    lock = threading.Lock()  # the pool list: the accept thread reads it, the supervisor replaces members
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if stop.is_set():
                    return
                time.sleep(0.05)  # e.g. out of file descriptors: do not spin
                continue
            try:
                with lock:
                    _hand_to_least_busy(pool, shared, conn)
            finally:
                conn.close()  # the worker holds its own copy now

    acceptor = threading.Thread(target=accept_loop, name="shopsense-accept", daemon=True)
    acceptor.start()
    try:
        while not stop.wait(0.5):
            for i, w in enumerate(pool):
                if not w.process.is_alive():
                    log.error(
                        "worker %d (pid %s) exited with %s: starting a new one", i, w.process.pid, w.process.exitcode
                    )
                    time.sleep(1.0)  # a worker that cannot start must not spin
                    with lock:
                        w.close()
                        pool[i] = _Worker(ctx, i, shared, host, port, log_level)
    finally:
        stop.set()
        acceptor.join(timeout=5)
        listener.close()
        for w in pool:
            if w.process.is_alive() and w.process.pid is not None:
                os.kill(w.process.pid, signal.SIGTERM)  # uvicorn finishes open requests, then exits
        for w in pool:
            w.process.join(timeout=30)
            if w.process.is_alive():
                w.process.kill()
            w.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _hand_to_least_busy(pool: list[_Worker], shared: tuple[Any, Any], conn: socket.socket) -> None:
    """Give ``conn`` to the live worker that is ready and has the fewest open connections (the next
    one on a failure)."""
    for w in sorted(pool, key=lambda w: w.preference(shared)):
        if not w.process.is_alive():
            continue
        try:
            w.hand(conn)
            return
        except OSError:  # the worker just died: the supervisor restarts it
            continue
    log.error("no live worker to take a connection: closing it")


# ---------------------------------------------------------------------------- in the worker
def _worker_main(
    channel: socket.socket, shared: tuple[Any, Any], index: int, host: str, port: int, log_level: str
) -> None:
    """One server process: the app over the parent's settings, page key and cookie secret (passed in
    the environment by ``shopsense serve``), serving the connections the parent hands over ``channel``."""
    import uvicorn

    from shopsense.service.app import app_from_env, flush_when_stopping

    app = app_from_env()

    def engines_loaded() -> bool:
        return app.state.shopsense.models.current is not None

    # no WebSocket routes here; and an upgraded connection would leave the HTTP protocol without a
    # connection_lost, so its close would never be counted
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, ws="none")
    handed = _HandedConnections(config, channel, shared, index, engines_loaded)
    flush_when_stopping(handed.server, app)
    handed.run()


def _counted(protocol_class: Any, closed: Any, index: int) -> Any:
    """uvicorn's HTTP protocol, counting closed connections into ``closed[index]``."""

    class Counted(protocol_class):  # type: ignore[misc, valid-type]
        def connection_lost(self, exc: Exception | None) -> None:
            closed[index] += 1
            super().connection_lost(exc)

    return Counted


class _HandedConnections:
    """A uvicorn server with no listening socket of its own: it serves the connections handed to it."""

    def __init__(
        self, config: Any, channel: socket.socket, shared: tuple[Any, Any], index: int, ready: Callable[[], bool]
    ) -> None:
        import uvicorn

        self.server = uvicorn.Server(config)
        self.config = config
        self.channel = channel
        self.closed, self.ready_flags = shared
        self.index = index
        self.ready = ready
        self._tasks: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks
        original = self.server.startup

        async def startup(sockets: Any = None) -> None:
            await original(sockets=[])  # lifespan, no listener
            if not self.server.should_exit:
                self._start_receiving()

        self.server.startup = startup  # type: ignore[method-assign]

    def run(self) -> None:
        self.server.run()

    def _start_receiving(self) -> None:
        config = self.config  # loaded by uvicorn before startup: http_protocol_class is set
        protocol_class = _counted(config.http_protocol_class, self.closed, self.index)
        server_state = self.server.server_state
        app_state = self.server.lifespan.state
        loop = asyncio.get_running_loop()
        self.channel.setblocking(False)

        def make_protocol() -> asyncio.Protocol:
            return protocol_class(config=config, server_state=server_state, app_state=app_state)

        def receive() -> None:
            while True:
                try:
                    msg, fds, _, _ = socket.recv_fds(self.channel, 64, 64)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    msg, fds = b"", []
                if not msg and not fds:  # the parent is gone: stop like on SIGTERM
                    loop.remove_reader(self.channel.fileno())
                    self.server.should_exit = True
                    return
                for fd in fds:
                    task = loop.create_task(serve(socket.socket(fileno=fd)))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

        async def serve(conn: socket.socket) -> None:
            try:
                conn.setblocking(False)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                await loop.connect_accepted_socket(make_protocol, conn)
            except OSError as e:  # the client left before its connection was taken up
                log.debug("handed connection not served: %s", e)
                conn.close()
                self.closed[self.index] += 1

        def say_when_ready() -> None:
            if self.ready():
                self.ready_flags[self.index] = 1
            elif not self.server.should_exit:
                loop.call_later(0.25, say_when_ready)

        loop.add_reader(self.channel.fileno(), receive)
        say_when_ready()
