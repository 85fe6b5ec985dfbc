"""CPU time one server worker spends per request: the measure behind the serving changes.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/worker_cpu.py --home /tmp/my-copy \
        --path "/recommend?k=10&user_id=U{rand:50000}" --rate 200
    ... --path "/search?k=10&q={newquery}" --path "/search?k=10&q={word}%20{word}" --rate 100

``--path`` repeats: each route is measured in turn on the same server and the CPU milliseconds per
request are printed per route. ``{newquery}`` is a query never sent before (three random words of
the catalog's titles: the encoder runs for each), ``{word}`` one of ``--repeat-words`` (10) of those
words, so two of them make one of 100 queries that all repeat after the warm-up (the query vector
is cached: no encoding), as in ``benchmarks/loadgen.py``.
Searches write search events and query vectors: give a copy of the benchmark home.

Starts ``shopsense serve`` (one worker) pinned to core 0, offers ``--rate`` requests/s from
``benchmarks/loadgen.py`` pinned to core 1 (Linux ``sched_setaffinity``; unpinned elsewhere), warms
up, then reads the worker's user + system CPU time (``/proc/PID/stat``) around ``--runs`` timed runs.
Unlike latency, CPU per request hardly depends on what else the machine does, so two versions of the
code can be compared a few percent apart. Needs a trained knowledge base in ``--home`` (as left by
``benchmarks/service_load.py``) and an API key with the read scope (one is created). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from server_procs import cpu_model, cpu_seconds  # the benchmarks' folder is on the path of its scripts
from service_load import SS, wait_ready

from shopsense.service.keys import create_key
from shopsense.store import open_store

ROOT = Path(__file__).resolve().parents[1]


def _pinned(core: int) -> dict:
    """``preexec_fn`` for a child bound to one core (where the platform can)."""
    if not hasattr(os, "sched_setaffinity") or core >= (os.cpu_count() or 1):
        return {}
    return {"preexec_fn": lambda: os.sched_setaffinity(0, {core})}


def catalog_words(store: object) -> list[str]:
    """Words of the catalog's titles, as ``benchmarks/service_load.py`` draws its queries from."""
    from shopsense import columns as C

    titles = store.products()[C.TITLE].head(2000)  # type: ignore[attr-defined]
    return sorted({w.lower() for t in titles for w in t.split()[1:3] if w.isalpha()})[:200]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, default=Path("/tmp/shopsense-bench"))
    ap.add_argument(
        "--path", action="append", default=None, help="loadgen.py path template (repeatable: one route each)"
    )
    ap.add_argument("--repeat-words", type=int, default=10, help="catalog words {word} draws from")
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=20, help="length of each timed run")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--port", type=int, default=8765)
    a = ap.parse_args()
    paths = a.path or ["/recommend?k=10&user_id=U{rand:50000}"]
    if not Path("/proc/self/stat").exists():
        raise SystemExit("needs Linux (/proc) to read a process's CPU time")
    store = open_store(f"sqlite:///{a.home / 'shopsense.db'}")
    key = create_key(store, ["read"], "worker-cpu")[1]
    words = catalog_words(store)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SHOPSENSE_HOME": str(a.home), "OMP_NUM_THREADS": "1"}
    env.setdefault("SHOPSENSE_SERVICE__SIMILAR_INDEX", "false")
    server = subprocess.Popen(
        [*SS, "--home", str(a.home), "serve", "--port", str(a.port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        **_pinned(0),
    )
    base = f"http://127.0.0.1:{a.port}"

    def offer(path: str, seconds: float) -> dict:
        load = [sys.executable, str(ROOT / "benchmarks" / "loadgen.py"), base, "--rate", str(a.rate)]
        load += ["--connections", "32", "--header", f"X-API-Key: {key}", "--path", path]
        load += ["--words", ",".join(words[: a.repeat_words]), "--mix-words", ",".join(words)]
        out = subprocess.run(
            [*load, "--seconds", str(seconds)], capture_output=True, text=True, check=True, **_pinned(1)
        )
        return json.loads(out.stdout)

    try:
        wait_ready(base, timeout=600)
        routes = []
        for path in paths:
            offer(path, min(a.seconds, 10))  # warm-up
            runs = []
            for _ in range(a.runs):
                before = cpu_seconds(server.pid)
                r = offer(path, a.seconds)
                used = cpu_seconds(server.pid) - before
                runs.append({"cpu_ms_per_request": round(1000 * used / max(r["requests"], 1), 3), **r})
            routes.append({"path": path, "runs": runs})
            print(path, [x["cpu_ms_per_request"] for x in runs], file=sys.stderr, flush=True)
        print(json.dumps({"rate": a.rate, "cpu": cpu_model(), "routes": routes}, indent=1))
        for route in routes:
            ms = [x["cpu_ms_per_request"] for x in route["runs"]]
            print(f"{route['path']}: {min(ms):.2f} ms CPU per request (runs: {', '.join(f'{m:.2f}' for m in ms)})")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
