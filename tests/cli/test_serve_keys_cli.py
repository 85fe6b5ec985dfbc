"""``shopsense keys create|list|revoke`` and ``shopsense serve`` from the command line."""

from __future__ import annotations

import re
import socket
import subprocess
import time

import httpx
from typer.testing import CliRunner

from shopsense.cli.main import app
from shopsense.service.keys import KeyRing
from shopsense.service.training_jobs import CLI
from shopsense.store import open_store

runner = CliRunner()


def test_keys_create_list_revoke(tmp_path) -> None:
    home = str(tmp_path / "kb")
    r = runner.invoke(app, ["--home", home, "keys", "create", "--scope", "read", "--scope", "write", "--name", "web"])
    assert r.exit_code == 0, r.output
    key = r.stdout.strip().splitlines()[-1]
    assert key.startswith("ss_")
    store = open_store(f"sqlite:///{tmp_path / 'kb' / 'shopsense.db'}")
    found = KeyRing(store).verify(key)
    assert found is not None and found.scopes == {"read", "write"} and found.name == "web"
    r = runner.invoke(app, ["--home", home, "keys", "list"])
    assert found.key_id in r.stdout and "read,write" in r.stdout and key not in r.stdout
    assert runner.invoke(app, ["--home", home, "keys", "revoke", found.key_id]).exit_code == 0
    assert KeyRing(store).verify(key) is None
    assert "(revoked)" in runner.invoke(app, ["--home", home, "keys", "list"]).stdout


def test_keys_bad_input_is_exit_2(tmp_path) -> None:
    home = str(tmp_path / "kb")
    r = runner.invoke(app, ["--home", home, "keys", "create", "--scope", "superuser"])
    assert r.exit_code == 2 and "valid: read, write, admin" in r.stderr
    assert runner.invoke(app, ["--home", home, "keys", "create", "--scope", "read"]).exit_code == 0
    r = runner.invoke(app, ["--home", home, "keys", "revoke", "nope"])
    assert r.exit_code == 2 and "unknown key" in r.stderr


def test_serve_answers_on_the_given_port(tmp_path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        *CLI,
        "--home",
        str(tmp_path / "kb"),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1)
                if r.status_code == 200:
                    break
                assert r.json()["status"] == "loading"
            except httpx.HTTPError:
                pass  # not listening yet
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        assert r.json() == {"status": "ready", "model_version": None}
        assert httpx.get(f"http://127.0.0.1:{port}/recommend?user_id=u", timeout=5).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _health_count(metrics_text: str) -> int:
    m = re.search(r'shopsense_http_requests_total\{method="GET",route="/health",status="200"\} (\d+)', metrics_text)
    return int(m.group(1)) if m else 0


def test_serve_workers_share_the_port_evenly_and_stop_together(tmp_path) -> None:
    """``--workers 2``: the parent takes the port (a second server cannot), hands each connection to
    the worker with the fewest open ones (8 keep-alive connections: 4 each), and SIGTERM stops
    every worker (the port is free again)."""
    import pytest

    from shopsense.service.workers import handing_supported, listening_socket

    if not handing_supported():
        pytest.skip("no socket hand-over (send_fds) on this platform")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [*CLI, "--home", str(tmp_path / "kb"), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    clients: list[httpx.Client] = []
    try:
        deadline = time.monotonic() + 120
        ready = 0
        while ready < 20:  # many fresh connections: both workers must answer, whichever gets them
            try:
                ready = ready + 1 if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200 else 0
            except httpx.HTTPError:
                ready = 0
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.1)
        with pytest.raises(OSError):
            listening_socket("127.0.0.1", port)  # taken: a second server must not share the port
        # the /ready answers above may all have come from the first worker while the second still
        # loaded (a loading worker gets no connections): wait until the second one takes one too
        from tests.cli.test_serve_cli import _one_connection_per_worker

        for c in _one_connection_per_worker(port, "", 2):
            c.close()
        # one keep-alive connection per client; each worker's /metrics counts only its own requests
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) for _ in range(8)]
        for c in clients:
            assert c.get("/health").status_code == 200
        counts = [_health_count(c.get("/metrics").text) for c in clients]
        assert sorted(counts) == [4] * 8, counts  # every connection's worker served 4 of the 8
    finally:
        for c in clients:
            c.close()
        proc.terminate()
        assert proc.wait(timeout=60) == 0
    listening_socket("127.0.0.1", port).close()  # every worker is gone
