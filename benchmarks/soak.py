"""Soak benchmark: minutes of mixed traffic against ``shopsense serve --workers 2`` while the shop
trains, a worker is killed and a shopper is deleted.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/soak.py --json /tmp/soak.json
    ... --build        # first: the 50k-product, 1M-event home of service_load.py, trained
    ... --home /tmp/soak-small --minutes 3 --rate 15 --train-at 0.25 --kill-at 1.5 --delete-at 2  # a quick try

Traffic: ``--rate`` requests/s offered on a fixed schedule (open loop, :func:`loadgen.offer`: latency
counts from when a request was due, so a stall shows as queueing instead of as fewer requests), over
32 keep-alive connections that close after 1000 requests as behind nginx, a mix of GET /recommend
(known and new shoppers), /search (repeated queries from a small pool and, `--new-queries` of them
(default half), new ones),
/autocomplete, /similar and POST /events (event ids ``soak-RUN-N``). A cut connection is retried on a
new one, twice at most (events carry their event id, so a retry is stored once).
Schedule (minutes from the start of the load): ``--train-at`` starts ``nice -n 19 shopsense train
--incremental`` and waits until every worker answers ``/ready`` with the new version (each worker is
asked on a connection it holds: its pid is looked up in ``/proc``); ``--kill-at`` SIGKILLs the worker
with the most connections and waits until its replacement answers; ``--delete-at`` sends
``DELETE /users/{id}`` for a shopper with events (one the traffic never uses). A negative time skips it.
Afterwards, with the server stopped: every event acknowledged by POST /events must be in the store,
and the search events of answered searches are counted (kill -9 may lose the last 0.2 s of them).
Report: per minute and route p50/p99 and counts, every non-2xx and connection error with its cause,
each process's RSS per minute (the parent and each worker slot, followed across the restart), the
issue's checks; a markdown section for docs/benchmarks.md and, with ``--json``, all of it. Linux only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
from loadgen import Outcome, http_request, offer  # the benchmarks' folder is on the path of its scripts
from server_procs import Probe, Workers, cpu_model, cpu_seconds, rss_mb, server_sockets, socket_inodes
from service_load import SS, build_home, free_port, start_server, wait_ready
from soak_report import ROUTES, SEARCH_WINDOW_S, checks, classify_errors, clock, markdown, per_minute

from shopsense import columns as C
from shopsense.search.personal import ANONYMOUS

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MIX = "recommend=40,search=25,autocomplete=15,similar=10,events=10"


# ---------------------------------------------------------------------- the shop's ids
def store_db(home: Path) -> Path:
    return home / "shopsense.db"


def read_only(home: Path) -> contextlib.closing[sqlite3.Connection]:
    """The store's SQLite file, read-only (the benchmark homes are SQLite)."""
    return contextlib.closing(sqlite3.connect(f"file:{store_db(home)}?mode=ro", uri=True, timeout=60))


def shop_ids(home: Path, rng: random.Random) -> dict:
    """Users with events, products and title words from the store, and the shopper to delete."""
    with read_only(home) as db:
        users = [
            u
            for (u,) in db.execute(f"SELECT {C.USER} FROM events GROUP BY {C.USER} ORDER BY random() LIMIT 5001")
            if u != ANONYMOUS and not u.startswith("soak-")
        ]
        products = db.execute(f"SELECT {C.ITEM}, {C.TITLE} FROM products").fetchall()
    if not users or not products:
        raise SystemExit("the store has no events or no products")
    victim = users.pop(0)
    words = sorted({w.lower() for _, t in products[:5000] for w in str(t).split() if w.isalpha() and len(w) > 2})
    pool = [f"{rng.choice(words)} {rng.choice(words)}" for _ in range(40)]
    return {"users": users, "items": [p[0] for p in products], "words": words, "pool": pool, "victim": victim}


# ---------------------------------------------------------------------- traffic
def parse_mix(text: str) -> dict[str, float]:
    mix = {}
    for part in text.split(","):
        name, _, share = part.partition("=")
        if name.strip() not in ROUTES:
            raise SystemExit(f"--mix: unknown route {name.strip()!r}; choose from {', '.join(ROUTES)}")
        mix[name.strip()] = float(share)
    return mix


class Traffic:
    """Makes request *i* of the mix and keeps what came back (both run on the loader's thread)."""

    def __init__(
        self, ids: dict, mix: dict[str, float], run: str, host: str, key: str, seed: int, new_queries: float = 0.5
    ) -> None:
        self.ids, self.run, self.host = ids, run, host
        self.new_queries = new_queries  # share of searches whose query was never asked before
        self.headers = [f"X-API-Key: {key}"]
        self.rng = random.Random(seed)
        self.routes, self.weights = list(mix), list(mix.values())
        self.pool_weights = [1 / (r + 1) for r in range(len(ids["pool"]))]  # a few queries are popular
        self.start = 0.0  # the load's clock (time.perf_counter), set before it starts
        self.records: list[tuple[str, float, float, int | None]] = []  # route, due, latency ms, status
        self.non2xx: list[dict] = []
        self.conn_errors: list[dict] = []  # one per connection error (each followed by a retry)
        self.failed: list[dict] = []  # requests whose every try was cut, with their errors
        self.acked: dict[str, float] = {}  # event id -> when its POST was answered
        self.searched: dict[str, tuple[float, int | None]] = {}  # request_id -> (answered, local port)

    def _user(self, new_share: float) -> str:
        if self.rng.random() < new_share:  # a shopper the store has not seen (until this run)
            return f"soak-{self.run}-u{self.rng.randrange(2000)}"
        return self.rng.choice(self.ids["users"])

    def make(self, i: int) -> tuple[bytes, tuple[str, str | None]]:
        route = self.rng.choices(self.routes, self.weights)[0]
        words, extra = self.ids["words"], None
        if route == "recommend":
            path = f"/recommend?k=10&user_id={quote(self._user(0.1), safe='')}"
        elif route == "search":
            if self.rng.random() >= self.new_queries:
                q = self.rng.choices(self.ids["pool"], self.pool_weights)[0]
            else:  # three random title words: practically never asked before
                q = " ".join(self.rng.choice(words) for _ in range(3))
            path = f"/search?k=10&q={quote(q, safe='')}"
            if self.rng.random() < 0.8:  # a shopper's search is logged as their search event
                extra = self._user(0.1)
                path += f"&user_id={quote(extra, safe='')}"
        elif route == "autocomplete":
            w = self.rng.choice(words)
            path = f"/autocomplete?q={quote(w[: self.rng.randint(2, min(4, len(w)))], safe='')}"
        elif route == "similar":
            path = f"/similar/{quote(self.rng.choice(self.ids['items']), safe='')}?k=10"
        else:
            extra = f"soak-{self.run}-{i}"
            event = {
                "user_id": self._user(0.2),
                "item_id": self.rng.choice(self.ids["items"]),
                "event_type": self.rng.choices(["view", "click", "add_to_cart", "purchase"], [60, 20, 15, 5])[0],
                "event_id": extra,
            }
            return http_request("POST", "/events", self.host, self.headers, json.dumps(event).encode()), (route, extra)
        return http_request("GET", path, self.host, self.headers), (route, extra)

    def done(self, o: Outcome) -> None:
        route, extra = o.tag
        finished = o.finished - self.start
        errors = [{"t": round(w - self.start, 3), "route": route, "error": n, "port": p} for n, p, w in o.errors]
        self.conn_errors += errors
        self.records.append((route, o.due - self.start, (o.finished - o.due) * 1000, o.status))
        if o.status is None:
            self.failed.append({"t": round(finished, 3), "route": route, "errors": errors})
            return
        if not 200 <= o.status < 300:
            body = o.body[:200].decode("utf-8", "replace")
            self.non2xx.append({"t": round(finished, 3), "route": route, "status": o.status, "body": body})
        elif route == "events":
            self.acked[extra] = finished
        elif route == "search" and extra is not None:
            with contextlib.suppress(ValueError, KeyError):
                self.searched[json.loads(o.body)["request_id"]] = (finished, o.port)


# ---------------------------------------------------------------------- the run
class Soak:
    """The server under load, the schedule of faults, and what was seen (times in seconds from the
    start of the load)."""

    def __init__(self, a: argparse.Namespace, server: subprocess.Popen, port: int, key: str, victim: str) -> None:
        self.a, self.server, self.port, self.key, self.victim = a, server, port, key, victim
        self.base = f"http://127.0.0.1:{port}"
        self.workers = Workers(server.pid)
        self.probe = Probe("127.0.0.1", port, self.workers, key)
        self.start = 0.0
        self.timeline: list[dict] = []
        self.samples: list[dict] = []
        self.train: subprocess.Popen | None = None
        self.train_t0 = 0.0
        self.new_version: str | None = None  # what the training made (from its JSON summary)
        self.serving: dict[int, str] = {}  # worker pid -> the version it served when last asked
        self.changed_to: str | None = None  # the version the first worker that changed went to
        self.killed: dict = {}
        self.phases: dict[str, list[float]] = {}  # name -> [from, to]
        self.lock = threading.Lock()  # the worker slots: the sampler and the watcher both look
        self.stop = threading.Event()

    def now(self) -> float:
        return time.perf_counter() - self.start

    def note(self, what: str, **info: object) -> None:
        t = round(self.now(), 2)
        self.timeline.append({"t": t, "what": what, **info})
        print(f"  {clock(t)}  {what} {json.dumps(info, default=str) if info else ''}", flush=True)

    def update_workers(self) -> None:
        with self.lock:
            for slot, old, new in self.workers.update():
                self.note("worker restarted", slot=slot, old_pid=old, new_pid=new)
                if self.killed.get("pid") == old:
                    self.killed["new_pid"] = new

    def sample(self) -> None:
        self.update_workers()
        socks = server_sockets(self.port)
        self.samples.append(
            {
                "t": round(self.now(), 1),
                "load1": round(os.getloadavg()[0], 2),
                "parent_mb": rss_mb(self.server.pid),
                "workers": {
                    slot: {
                        "pid": pid,
                        "rss_mb": rss_mb(pid),
                        "cpu_s": cpu_seconds(pid),
                        "conns": len(socket_inodes(pid) & socks.keys()),
                    }
                    for slot, pid in sorted(self.workers.slots.items())
                },
            }
        )

    # -- training and the swap
    def start_training(self) -> None:
        cmd = ["nice", "-n", "19", *SS, "--home", str(self.a.home), "train", "--incremental", "--json"]
        log = open(self.a.home / "soak-train.log", "wb")  # noqa: SIM115 (the child writes it)
        self.train = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, env=server_env(self.a.home))
        self.train_t0 = self.now()
        self.phases["train"] = [self.train_t0, float("inf")]
        self.note("training started", command="nice -n 19 shopsense train --incremental")

    def check_training(self) -> None:
        if self.train is None or self.train.poll() is None or self.phases["train"][1] != float("inf"):
            return
        out = self.train.communicate()[0].decode(errors="replace").strip().splitlines()
        t = self.now()
        self.phases["train"][1] = t
        try:
            self.new_version = json.loads(out[-1])["version"]
        except (IndexError, ValueError, KeyError):
            tail = (self.a.home / "soak-train.log").read_text(errors="replace")[-300:]
            self.note("training failed", returncode=self.train.returncode, log_tail=tail)
            self.phases["swap"] = [t, t]
            return
        self.note("training finished", version=self.new_version, seconds=round(t - self.train_t0, 1))
        self.phases.setdefault("swap", [t, float("inf")])  # or it began already: the CLI exits after it

    def track_versions(self) -> None:
        """Ask every worker which version it serves (this also keeps the probe's connections, which
        the server closes when idle). The swap runs from the first worker seen serving another
        version to the moment every worker serves the training's."""
        live = list(self.workers.slots.values())
        for pid in [p for p in self.probe.conns if p not in live]:
            self.probe.conns.pop(pid).close()
        for slot, pid in sorted(self.workers.slots.items()):
            v = self.probe.version(pid)
            if not v:
                continue
            if pid in self.serving and v != self.serving[pid]:
                self.note("worker serves another version", slot=slot, pid=pid, version=v)
                self.phases.setdefault("swap", [self.now(), float("inf")])
                self.changed_to = self.changed_to or v
            self.serving[pid] = v
        swap = self.phases.get("swap")
        target = self.new_version or self.changed_to  # the training's, once its summary is in
        if target and swap and swap[1] == float("inf") and all(self.serving.get(p) == target for p in live):
            swap[1] = self.now()
            self.note("every worker serves the new version", version=target)

    # -- the kill
    def kill_worker(self) -> None:
        self.update_workers()
        socks = server_sockets(self.port)
        conns = {pid: socket_inodes(pid) & socks.keys() for pid in self.workers.slots.values()}
        pid = max(conns, key=lambda p: len(conns[p]))  # the busiest: the most requests cut off
        slot = next(s for s, p in self.workers.slots.items() if p == pid)
        self.killed = {"pid": pid, "slot": slot, "ports": sorted(socks[i] for i in conns[pid])}
        os.kill(pid, signal.SIGKILL)
        self.killed["t"] = self.now()
        self.phases["kill"] = [self.killed["t"], float("inf")]
        self.note("SIGKILL", slot=slot, pid=pid, connections=len(conns[pid]))

    def check_restart(self) -> None:
        if "kill" not in self.phases or self.phases["kill"][1] != float("inf"):
            return
        self.update_workers()
        new = self.killed.get("new_pid")
        if new is not None and self.serving.get(new):  # it answered: it is ready and takes connections
            self.phases["kill"][1] = self.now()
            self.killed["ready_t"] = self.now()
            self.note("replacement worker answers", slot=self.killed["slot"], pid=new, version=self.serving[new])

    # -- the deletion
    def delete_user(self) -> None:
        """``DELETE /users/{id}`` (on its own thread: the schedule does not wait for it)."""
        with read_only(self.a.home) as db:
            before = db.execute(f"SELECT count(*) FROM events WHERE {C.USER} = ?", (self.victim,)).fetchone()[0]
        t0 = self.now()
        self.phases["delete"] = [t0, float("inf")]
        self.note("DELETE /users/{id} sent", user=self.victim, events_before=before)
        url = f"{self.base}/users/{quote(self.victim, safe='')}"
        for attempt in (1, 2):  # a connection handed to a worker as it dies is cut: try once more
            try:
                r = httpx.delete(url, headers={"X-API-Key": self.key}, timeout=300)
                break
            except httpx.TransportError as e:
                self.note("DELETE /users/{id}: connection error", error=repr(e), attempt=attempt)
        else:
            self.phases["delete"][1] = self.now()
            return
        self.phases["delete"][1] = self.now()
        self.note(
            "DELETE /users/{id} answered",
            status=r.status_code,
            answer=r.text[:300],
            ms=round((self.now() - t0) * 1000, 1),
        )

    def watch(self) -> None:
        """The watcher's thread: the training's end, the swap, the replacement worker. Asking a worker
        waits behind the requests it has queued, so this runs apart from the schedule."""
        while not self.stop.wait(1.0):
            self.track_versions()
            self.check_training()
            self.check_restart()


def server_env(home: Path) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "SHOPSENSE_HOME": str(home)}


def run_load(soak: Soak, traffic: Traffic, a: argparse.Namespace, failure: list) -> None:
    """The loader's thread: the open-loop load on its own event loop, at a higher priority than the
    server where allowed (a starved loader sends late and counts its own delay as latency)."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), -10)  # this thread only (Linux)
    job = offer(
        soak.base,
        a.rate,
        a.connections,
        a.minutes * 60,
        traffic.make,
        traffic.done,
        retries=2,  # a request can be cut twice by a kill: on its connection, then on one handed to the dying worker
        requests_per_connection=a.conn_requests,
        max_idle=4.0,  # under uvicorn's 5 s keep-alive timeout
        start=soak.start,
    )
    try:
        try:
            import uvloop

            uvloop.run(job)
        except ImportError:
            asyncio.run(job)
    except Exception as e:  # reported by the main thread
        failure.append(e)


def drive(soak: Soak, traffic: Traffic, a: argparse.Namespace) -> None:
    """Run the load and the schedule until the load has sent everything."""
    failure: list = []
    loader = threading.Thread(target=run_load, args=(soak, traffic, a, failure), name="soak-load", daemon=True)
    loader.start()
    todo = sorted((t * 60, name) for t, name in ((a.train_at, "train"), (a.kill_at, "kill"), (a.delete_at, "delete")))
    todo = [(t, name) for t, name in todo if t >= 0]
    deleting = threading.Thread(target=soak.delete_user, name="soak-delete", daemon=True)
    actions = {"train": soak.start_training, "kill": soak.kill_worker, "delete": deleting.start}
    watcher = threading.Thread(target=soak.watch, name="soak-watch", daemon=True)
    watcher.start()
    next_sample = 0.0
    minute = 0
    while loader.is_alive():  # this thread keeps the clock: only /proc reads and quick actions here
        t = soak.now()
        if t >= next_sample:
            soak.sample()
            next_sample += a.sample_s
        while todo and t >= todo[0][0]:
            actions[todo.pop(0)[1]]()
        if t >= (minute + 1) * 60:
            minute += 1
            print(progress(traffic, soak, minute), flush=True)
        time.sleep(0.25)
    loader.join()
    soak.sample()
    soak.stop.set()
    watcher.join(timeout=120)
    if deleting.ident is not None:
        deleting.join(timeout=300)
    if failure:
        raise failure[0]
    soak.check_training()
    if soak.train is not None and soak.train.poll() is None:
        soak.note("training still running at the end of the load: stopped (SIGTERM)")
        soak.train.terminate()
        soak.train.wait(timeout=60)


def progress(traffic: Traffic, soak: Soak, minute: int) -> str:
    lo, hi = (minute - 1) * 60, minute * 60
    rows = [r for r in traffic.records[-int(soak.a.rate * 90) :] if lo <= r[1] < hi]
    rec = [r[2] for r in rows if r[0] == "recommend" and r[3] is not None]
    p99 = f"{np.percentile(rec, 99):.1f} ms" if rec else "-"
    s = soak.samples[-1] if soak.samples else {"workers": {}}
    rss = " ".join(f"w{k}:{v['rss_mb']}" for k, v in s["workers"].items())
    return (
        f"minute {minute}: {len(rows)} requests, /recommend p99 {p99}, non-2xx so far {len(traffic.non2xx)}, "
        f"connection errors so far {len(traffic.conn_errors)}; RSS MiB parent:{s.get('parent_mb')} {rss}"
    )


# ---------------------------------------------------------------------- afterwards
def verify(home: Path, run: str, traffic: Traffic, soak: Soak, wall_start: float) -> dict:
    """With the server stopped: acknowledged events and logged searches in the store, the deleted user gone."""
    with read_only(home) as db:
        stored = {
            e for (e,) in db.execute(f"SELECT {C.EVENT_ID} FROM events WHERE {C.EVENT_ID} LIKE ?", (f"soak-{run}-%",))
        }
        logged = {
            r
            for (r,) in db.execute(
                f"SELECT {C.REQUEST_ID} FROM events WHERE {C.EVENT_TYPE} = 'search' AND {C.TIMESTAMP} >= ?",
                (wall_start - 120,),
            )
        }
        victim_left = db.execute(f"SELECT count(*) FROM events WHERE {C.USER} = ?", (soak.victim,)).fetchone()[0]
    missing = sorted(set(traffic.acked) - stored)
    kill_t, killed_ports = soak.killed.get("t"), set(soak.killed.get("ports", []))
    lost = []
    for rid, (t, port) in traffic.searched.items():
        if rid not in logged:
            near = kill_t is not None and kill_t - SEARCH_WINDOW_S <= t <= kill_t
            lost.append({"request_id": rid, "t": round(t, 3), "in_kill_window": near and port in killed_ports})
    return {
        "acked_events": len(traffic.acked),
        "acked_events_missing": len(missing),
        "acked_missing_ids": missing[:50],
        "events_stored_not_acked": len(stored - set(traffic.acked)),  # e.g. answered after a cut connection
        "searches_logged_expected": len(traffic.searched),
        "search_events_missing": len(lost),
        "search_events_missing_in_kill_window": sum(x["in_kill_window"] for x in lost),
        "search_events_missing_list": lost[:50],
        "deleted_user_events_left": int(victim_left),
    }


# ---------------------------------------------------------------------- main
def check_home(home: Path) -> dict:
    build = (
        "build it (the data ~2 min, then `shopsense train` ~9 min on an idle core; far longer on a busy "
        "machine) and soak it with\n"
        f"    HF_HUB_OFFLINE=1 python benchmarks/soak.py --home {home} --build\n"
        "(the home benchmarks/service_load.py builds), or give another trained home with --home"
    )
    if not store_db(home).exists():
        raise SystemExit(f"no knowledge base at {store_db(home)}: {build}")
    with read_only(home) as db:
        n_products = db.execute("SELECT count(*) FROM products").fetchone()[0]
        n_events = db.execute("SELECT count(*) FROM events").fetchone()[0]
        trained = db.execute("SELECT count(*) FROM model_versions WHERE status = 'complete'").fetchone()[0]
    if not n_products or not n_events:
        raise SystemExit(f"{home} has {n_products} products and {n_events} events: {build}")
    if not trained:
        raise SystemExit(f"{home} has no trained version: run `shopsense --home {home} train` first")
    return {"products": n_products, "events": n_events}


def create_key(home: Path, run: str) -> tuple[str, str]:
    """A real API key from the CLI (read, write, admin: the deletion needs admin); returns (id, key)."""
    cmd = [*SS, "--home", str(home), "keys", "create", "--scope", "read,write,admin", "--name", f"soak-{run}"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=server_env(home), timeout=120)
    if out.returncode != 0:
        raise SystemExit(f"shopsense keys create failed: {out.stderr.strip()[-500:]}")
    lines = [x for x in out.stdout.splitlines() if x.strip()]
    return lines[0].split()[2].rstrip(","), lines[-1].strip()


def environment() -> dict:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "commit": commit.stdout.strip() or "unknown",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def wait_similar(soak: Soak, item: str, timeout: float = 1800) -> None:
    """Until every worker answers /similar (its index is built in the background after the engines load)."""
    deadline = time.monotonic() + timeout
    for slot, pid in sorted(soak.workers.slots.items()):
        while (got := soak.probe.ask(pid, f"/similar/{quote(item, safe='')}?k=1")) is None or got[0] != 200:
            if time.monotonic() > deadline:
                raise SystemExit(f"worker {slot} (pid {pid}) does not answer /similar: {got}")
            time.sleep(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, default=Path("/tmp/shopsense-bench"), help="a trained shop")
    ap.add_argument("--build", action="store_true", help="first build the 50k/1M home (service_load.py's)")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--rate", type=float, default=200, help="requests per second offered")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--conn-requests", type=int, default=1000, help="requests per connection before it closes")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--mix", default=DEFAULT_MIX, help="route=share,... of " + ", ".join(ROUTES))
    ap.add_argument("--train-at", type=float, default=3, help="minute to start the incremental training")
    ap.add_argument("--kill-at", type=float, default=6, help="minute to SIGKILL a worker")
    ap.add_argument("--delete-at", type=float, default=8, help="minute to DELETE /users/{id}")
    ap.add_argument("--sample-s", type=float, default=5, help="seconds between RSS samples")
    ap.add_argument("--p99-target", type=float, default=20, help="/recommend p99 (ms) in quiet minutes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--new-queries",
        type=float,
        default=0.5,
        help="share of searches with a query never asked before (each costs a text-model encoding)",
    )
    ap.add_argument("--json", type=Path, help="write everything here")
    a = ap.parse_args()
    if not Path("/proc/self/stat").exists():
        raise SystemExit("needs Linux: worker processes, RSS and sockets are read from /proc")
    a.mix = parse_mix(a.mix)
    os.environ["HF_HUB_OFFLINE"] = "1"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still stop the server (finally: below)
    env = environment()
    print(f"CPU: {env['cpu']} ({env['cores']} cores); load average {env['loadavg']}", flush=True)
    if a.build:
        build_home(a.home, 50_000, 1_000_000, 50_000)
    shop = check_home(a.home)
    run = str(int(time.time()))
    rng = random.Random(a.seed)
    ids = shop_ids(a.home, rng)
    key_id, key = create_key(a.home, run)
    port = free_port()
    server = start_server(a.home, port, a.workers, similar=True)
    print(f"server pid {server.pid} on port {port} (log: {a.home / 'serve.log'}); waiting until ready", flush=True)
    soak = Soak(a, server, port, key, ids["victim"])
    traffic = Traffic(ids, a.mix, run, f"127.0.0.1:{port}", key, a.seed, a.new_queries)
    try:
        wait_ready(soak.base)
        soak.update_workers()
        if len(soak.workers.slots) != a.workers:
            raise SystemExit(f"found {len(soak.workers.slots)} worker processes, expected {a.workers}")
        wait_similar(soak, ids["items"][0])
        soak.start = traffic.start = time.perf_counter() + 1.0
        wall_start = time.time() + 1.0
        print(f"load: {a.rate:g} requests/s for {a.minutes:g} min, mix {a.mix}", flush=True)
        drive(soak, traffic, a)
    finally:
        soak.probe.close()
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=120)
        if soak.train is not None and soak.train.poll() is None:
            soak.train.kill()
    subprocess.run([*SS, "--home", str(a.home), "keys", "revoke", key_id], env=server_env(a.home), capture_output=True)
    classify_errors(traffic, soak)
    verified = verify(a.home, run, traffic, soak, wall_start)
    minutes = per_minute(traffic, soak, int(np.ceil(a.minutes)))
    answered = sum(1 for r in traffic.records if r[3] is not None)
    result = {
        "command": "python benchmarks/soak.py " + " ".join(sys.argv[1:]),
        "args": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}},
        "environment": env,
        "shop": shop,
        "deleted_user": ids["victim"],
        "achieved_rps": round(answered / (a.minutes * 60), 1),
        "timeline": soak.timeline,
        "phases": {
            k: [round(t0, 2), None if t1 == float("inf") else round(t1, 2)] for k, (t0, t1) in soak.phases.items()
        },
        "minutes": minutes,
        "samples": soak.samples,
        "non2xx": traffic.non2xx[:5000],
        "conn_errors": traffic.conn_errors[:5000],
        "failed": traffic.failed[:1000],
        "verified": verified,
        "checks": checks(minutes, traffic, soak, verified, a.p99_target),
    }
    result["markdown"] = markdown(result)
    if a.json:
        a.json.write_text(json.dumps(result, indent=1, default=str))
    print(result["markdown"])


if __name__ == "__main__":
    main()
