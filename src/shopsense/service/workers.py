"""``shopsense serve --workers N``: N server processes on one port, each with its own listening socket.

uvicorn's own ``--workers`` shares one socket between the processes, and whichever process wakes
first accepts a whole burst of connections: measured here, 32 keep-alive client connections all went
to one of two workers in two of three tries, so one core did all the work. With ``SO_REUSEPORT``
each worker listens on its own socket and the kernel spreads new connections across them by hash.

The parent binds every socket (so a port in use fails at once, in the parent), starts the workers,
restarts one that dies, and stops them all on SIGINT/SIGTERM.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import socket
import threading
import time
from typing import Any

log = logging.getLogger("shopsense.service")


def reuse_port_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def listening_sockets(host: str, port: int, n: int) -> list[socket.socket]:
    """``n`` sockets listening on ``host:port`` together (``SO_REUSEPORT``).

    A plain bind comes first: it fails if anything listens on the port already, including another
    server's ``SO_REUSEPORT`` group, which would otherwise silently share this port's traffic."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    socks = []
    for _ in range(n):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind((host, port))
        s.listen(2048)
        s.set_inheritable(True)
        socks.append(s)
    return socks


def _worker(sock: socket.socket, log_level: str) -> None:
    """One server process: the app from the environment's settings, on its own socket."""
    import uvicorn

    from shopsense.service.app import create_app

    config = uvicorn.Config(create_app(), log_level=log_level, access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def serve_workers(host: str, port: int, workers: int, log_level: str = "warning") -> None:
    """Run ``workers`` server processes on ``host:port`` until SIGINT/SIGTERM (settings come from the
    environment: ``SHOPSENSE_HOME``, ``SHOPSENSE_STORE``, ...)."""
    socks = listening_sockets(host, port, workers)
    ctx = mp.get_context("spawn")  # a fresh interpreter per worker: no state forked from this one

    def start(i: int) -> Any:
        p = ctx.Process(target=_worker, args=(socks[i], log_level), name=f"shopsense-worker-{i}")
        p.start()
        return p

    procs = [start(i) for i in range(workers)]
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            for i, p in enumerate(procs):
                if not p.is_alive():
                    log.error("worker %d (pid %s) exited with %s: starting a new one", i, p.pid, p.exitcode)
                    time.sleep(1.0)  # a worker that cannot start must not spin
                    procs[i] = start(i)
    finally:
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGTERM)  # uvicorn finishes open requests, then exits
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
        for s in socks:
            s.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
