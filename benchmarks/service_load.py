"""Service load benchmark: /recommend and /search over HTTP on loopback, and freshness.

    .venv/bin/python benchmarks/service_load.py [--home /tmp/shopsense-bench] [--workers 2] \
        [--rates 250,400,500]

Data: a SYNTHETIC scale-up of the sample shop's catalog vocabulary to 50,000 products and 1,000,000
events (50,000 shoppers with one or two favourite categories; Zipf popularity within a category;
view > click > add_to_cart > purchase funnel). It is built once into HOME and reused.
Then: `shopsense train` (unless a complete version exists). Every run serves a fresh copy of HOME
(``--run-home``; deleted afterwards unless ``--keep``) with the query-vector cache and the search
events of earlier runs removed, so no query of the run was ever encoded before; with ``--reindex``
the copy's search index is rebuilt first when it was built with another text encoder backend than
the configured one. `shopsense serve` in a subprocess; `/recommend`: `wrk` (Debian package `wrk`)
closed loop at 1 and 32 connections with random users; `/search`: `benchmarks/loadgen.py` closed
loop at 1 and 32 connections, queries from its head-and-tail mix (``--new-share`` of them never
seen before in the run: three random catalog words), latency reported for new and repeated queries
apart; both routes open loop at ``--rates``; and freshness: POST one event, then GET /recommend for
that user until the list changes (time from sending the event to the first changed list).
``--surfaces`` also offers each named `/recommend?surface=...` list ``--surface-rate`` requests/s
(random shoppers, and random products for `similar` and `bought_together`); ``--kinds ""`` skips the
rest, e.g. ``--kinds "" --surfaces for_you,continue_shopping,buy_again,similar,bought_together,complete_the_cart``.
Every loop is bounded (duration or count) and stops by itself. Prints the CPU model, the load
average, and every number of the run as one markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.data.sample import CATALOG
from shopsense.service.keys import create_key
from shopsense.store import open_store

ROOT = Path(__file__).resolve().parents[1]
SS = [sys.executable, "-c", "from shopsense.cli.main import main; main()"]


# ---------------------------------------------------------------------- synthetic data
def make_products(n: int, rng: np.random.Generator) -> pd.DataFrame:
    cats = list(CATALOG)
    cat_i = np.arange(n) % len(cats)
    rows = []
    for i, ci in enumerate(cat_i):
        nouns, brands, (lo, hi), words = CATALOG[cats[ci]]
        r = rng.integers(0, 1 << 30, size=4)
        noun, brand, adj = nouns[r[0] % len(nouns)], brands[r[1] % len(brands)], words[r[2] % len(words)]
        rows.append(
            (
                f"P{i:06d}",
                f"{brand} {adj} {noun} {chr(65 + r[3] % 26)}{r[3] % 900 + 100}",
                cats[ci],
                brand,
                float(round(lo + (hi - lo) * (r[3] % 1000) / 1000, 2)),
            )
        )
    df = pd.DataFrame(rows, columns=[C.ITEM, C.TITLE, C.CATEGORY, C.BRAND, C.PRICE])
    df[C.DESCRIPTION] = "Synthetic benchmark product: " + df[C.TITLE]
    return df


def make_events(products: pd.DataFrame, n_events: int, n_users: int, rng: np.random.Generator) -> pd.DataFrame:
    cats = products[C.CATEGORY].to_numpy()
    ucats, cat_of = np.unique(cats, return_inverse=True)
    members = [np.flatnonzero(cat_of == c) for c in range(len(ucats))]
    fav = rng.integers(0, len(ucats), size=n_users)
    users = rng.integers(0, n_users, size=n_events)
    in_fav = rng.random(n_events) < 0.85
    ev_cat = np.where(in_fav, fav[users], rng.integers(0, len(ucats), size=n_events))
    item = np.empty(n_events, dtype=np.int64)
    for c in range(len(ucats)):
        idx = np.flatnonzero(ev_cat == c)
        m = members[c]
        z = rng.zipf(1.3, size=len(idx)) - 1  # popular items within the category
        item[idx] = m[z % len(m)]
    etype = rng.choice(np.array([C.VIEW, C.CLICK, C.ADD_TO_CART, C.PURCHASE]), size=n_events, p=[0.7, 0.15, 0.1, 0.05])
    ts = 1_760_000_000 + np.sort(rng.uniform(0, 90 * 86400, size=n_events))
    return pd.DataFrame(
        {
            C.USER: np.char.add("U", users.astype(str)).astype(object),
            C.ITEM: products[C.ITEM].to_numpy()[item],
            C.EVENT_TYPE: etype.astype(object),
            C.TIMESTAMP: ts,
        }
    )


def prepare(home: Path, n_products: int, n_events: int, n_users: int) -> dict:
    store_url = f"sqlite:///{home / 'shopsense.db'}"
    store = open_store(store_url)
    s = store.stats()
    if s["products"] >= n_products and s["events"] >= n_events:
        return {"reused": True, **s}
    rng = np.random.default_rng(7)
    t0 = time.perf_counter()
    products = make_products(n_products, rng)
    store.upsert_products(products)
    ev = make_events(products, n_events, n_users, rng)
    for i in range(0, len(ev), 100_000):
        store.add_events(ev.iloc[i : i + 100_000])
    store.close()
    return {"reused": False, "seconds": round(time.perf_counter() - t0, 1), **open_store(store_url).stats()}


def build_home(home: Path, n_products: int, n_events: int, n_users: int) -> dict:
    """The benchmark shop in ``home``: the synthetic data (:func:`prepare`), then ``shopsense train``
    unless a complete version exists. Returns ``{"data": ..., "train": ...}`` (no ``train`` when reused)."""
    home.mkdir(parents=True, exist_ok=True)
    out: dict = {"data": prepare(home, n_products, n_events, n_users)}
    print("data:", out["data"], flush=True)
    vs = open_store(f"sqlite:///{home / 'shopsense.db'}").versions()
    if vs.empty or not (vs["status"] == "complete").any():
        t0 = time.perf_counter()
        env = {**os.environ, "SHOPSENSE_HOME": str(home)}
        r = subprocess.run([*SS, "--home", str(home), "train"], env=env, timeout=3 * 3600)
        out["train"] = {"returncode": r.returncode, "seconds": round(time.perf_counter() - t0, 1)}
        print("train:", out["train"], flush=True)
    return out


# ---------------------------------------------------------------------- server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(home: Path, port: int, workers: int, similar: bool) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SHOPSENSE_HOME": str(home)}
    if not similar:  # encoding 50k products for /similar would compete with the load for the CPU
        env["SHOPSENSE_SERVICE__SIMILAR_INDEX"] = "false"
    cmd = [*SS, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(home / "serve.log", "wb"), start_new_session=True
    )


def wait_similar(base: str, key: str, item_id: str, timeout: float = 1800) -> float:
    """Bounded wait until every worker has built its similar-products index (``/recommend?surface=similar``
    answers 503 "building" until then; the build encodes the catalog, which would compete with the
    measured load for the CPU). Returns the seconds waited."""
    t0 = time.monotonic()
    streak = 0
    params: dict[str, str | int] = {"surface": "similar", "user_id": "U1", "item_id": item_id, "k": 10}
    while time.monotonic() - t0 < timeout:
        r = httpx.get(base + "/recommend", params=params, headers={"X-API-Key": key}, timeout=60)
        streak = streak + 1 if r.status_code == 200 else 0
        if streak >= 20:
            return time.monotonic() - t0
        time.sleep(0.1 if streak else 2.0)
    raise RuntimeError("the similar-products index was not built in time (see HOME/serve.log)")


def wait_ready(base: str, timeout: float = 1800) -> dict:
    """Bounded wait until the server has loaded its engines (``/ready`` answers 200)."""
    t0 = time.monotonic()
    streak = 0  # with several workers each loads on its own: wait for a run of ready answers
    while time.monotonic() - t0 < timeout:
        try:
            r = httpx.get(base + "/ready", timeout=2)
            streak = streak + 1 if r.status_code == 200 else 0
            if streak >= 20:
                return r.json()
        except (httpx.HTTPError, ValueError):
            streak = 0
        time.sleep(0.25 if streak else 0.5)
    raise RuntimeError("server not ready (see HOME/serve.log)")


# ---------------------------------------------------------------------- load
WRK_LUA = """
local key = os.getenv("SS_KEY")
local kind = os.getenv("SS_KIND")
local n_users = tonumber(os.getenv("SS_USERS"))
local words = {}
for w in string.gmatch(os.getenv("SS_WORDS"), "[^,]+") do table.insert(words, w) end
math.randomseed(os.time())
request = function()
  local path
  if kind == "recommend" then
    path = "/recommend?k=10&user_id=U" .. math.random(0, n_users - 1)
  else
    local q = words[math.random(#words)] .. "%20" .. words[math.random(#words)]
    path = "/search?k=10&q=" .. q .. "&user_id=U" .. math.random(0, n_users - 1)
  end
  return wrk.format("GET", path, {["X-API-Key"] = key})
end
"""


def run_wrk(base: str, kind: str, conns: int, seconds: int, key: str, users: int, words: list[str]) -> dict:
    lua = Path(tempfile.mkdtemp()) / "load.lua"
    lua.write_text(WRK_LUA)
    env = {**os.environ, "SS_KEY": key, "SS_KIND": kind, "SS_USERS": str(users), "SS_WORDS": ",".join(words)}
    threads = max(1, min(2, conns))
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s", "--latency", "-s", str(lua), base],
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        preexec_fn=_high_priority,
    ).stdout
    return parse_wrk(out)


def _high_priority() -> None:
    """The load generator shares the 2 cores with the server: a starved generator would send late and
    count its own delay as latency, so it runs at a higher priority when allowed."""
    with contextlib.suppress(OSError):
        os.nice(-10)


#: surfaces of a product page: their requests also name the page's product (``item_id``)
ITEM_SURFACES = ("similar", "bought_together")


def run_loadgen(
    base: str,
    kind: str,
    rate: int,
    conns: int,
    seconds: int,
    key: str,
    users: int,
    words: list[str],
    *,
    closed: bool = False,
    new_share: float = 0.5,
) -> dict:
    """``benchmarks/loadgen.py``: ``rate`` requests/s offered whatever the server's speed (latency counted
    from when each request was due, so queueing shows), over ``conns`` keep-alive connections; or with
    ``closed`` a closed loop of ``conns`` clients. Search queries come from its head-and-tail mix."""
    if kind == "recommend":
        path = f"/recommend?k=10&user_id=U{{rand:{users}}}"
    elif kind.startswith("surface:"):  # a product page's surface draws product ids from ``words``
        surface = kind.split(":", 1)[1]
        page = "&item_id={word}" if surface in ITEM_SURFACES else ""
        path = f"/recommend?k=10&surface={surface}&user_id=U{{rand:{users}}}{page}"
    else:
        path = f"/search?k=10&q={{query}}&user_id=U{{rand:{users}}}"
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "loadgen.py"),
        base,
        "--rate",
        str(rate),
        "--connections",
        str(conns),
        "--seconds",
        str(seconds),
        "--header",
        f"X-API-Key: {key}",
        "--path",
        path,
        "--new-share",
        str(new_share),
    ]
    if kind == "search" or kind.startswith("surface:"):
        cmd += ["--words", ",".join(words)]
    if closed:
        cmd.append("--closed")
    out = subprocess.run(
        cmd, capture_output=True, text=True, timeout=seconds * 20 + 60, preexec_fn=_high_priority
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def _ms(s: str) -> float:
    s = s.strip()
    for unit, f in (("ms", 1.0), ("us", 1e-3), ("s", 1000.0)):
        if s.endswith(unit):
            return float(s[: -len(unit)]) * f
    return float(s)


def parse_wrk(out: str) -> dict:
    res: dict = {"raw": out}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("50%", "90%", "99%"):
            res[f"p{parts[0][:-1]}_ms"] = _ms(parts[1])
        elif line.startswith("Requests/sec:"):
            res["rps"] = float(parts[1])
        elif "requests in" in line:
            res["requests"] = int(parts[0])
        elif line.strip().startswith("Non-2xx"):
            res["non_2xx"] = int(parts[-1])
        elif line.strip().startswith("Socket errors"):
            res["socket_errors"] = line.strip()
    return res


def freshness(base: str, key: str, products: pd.DataFrame, users: int, n: int = 30, new: bool = False) -> dict:
    """POST an add-to-cart of a random product; time until that user's /recommend changes.

    Known shoppers (``new=False``) have dozens of events, and one more does not always move their
    top 10 (then nothing changes to time); a new shopper's (``new=True``) first event always turns
    the popular list into a personal one."""
    hdr = {"X-API-Key": key}
    run = f"{time.time():.0f}"
    # other shoppers and products each run: with a fixed seed a rerun repeated the last run's events,
    # and a product already in a shopper's history moves their list less (fewer changes to time)
    rng = np.random.default_rng(int(run))
    times, first_try = [], 0
    with httpx.Client(base_url=base, headers=hdr, timeout=10) as c:
        for i in range(n):
            user = f"fresh-{run}-{i}" if new else f"U{int(rng.integers(0, users))}"
            before = [h["item_id"] for h in c.get("/recommend", params={"user_id": user, "k": 10}).json()["items"]]
            item = str(products[C.ITEM].iloc[int(rng.integers(0, len(products)))])
            t0 = time.perf_counter()
            r = c.post(
                "/events",
                json={
                    "user_id": user,
                    "item_id": item,
                    "event_type": "add_to_cart",
                    "event_id": f"fresh-{time.time()}-{i}",
                },
            )
            r.raise_for_status()
            for attempt in range(200):  # bounded: 200 polls at most
                after = [h["item_id"] for h in c.get("/recommend", params={"user_id": user, "k": 10}).json()["items"]]
                if after != before:
                    times.append((time.perf_counter() - t0) * 1000)
                    first_try += attempt == 0
                    break
    times.sort()
    return {
        "n": n,
        "changed": len(times),
        "changed_on_first_request": first_try,
        "p50_ms": statistics.median(times) if times else None,
        "max_ms": times[-1] if times else None,
    }


# ---------------------------------------------------------------------- a fresh home per run
def fresh_copy(home: Path, run_home: Path) -> dict:
    """Copy ``home`` to ``run_home`` and remove what earlier runs left: cached query vectors and search
    events (a server loads the latest searches' vectors at start), so every query of this run is one
    the knowledge base has never seen. Returns what was removed."""
    t0 = time.perf_counter()
    if run_home.exists():
        shutil.rmtree(run_home)
    shutil.copytree(home, run_home, ignore=shutil.ignore_patterns("serve.log"))
    store = open_store(f"sqlite:///{run_home / 'shopsense.db'}")
    with store.engine.begin() as c:  # type: ignore[attr-defined]
        vectors = c.exec_driver_sql("DELETE FROM embeddings WHERE model_id LIKE '%#query'").rowcount
        searches = c.exec_driver_sql("DELETE FROM events WHERE event_type = 'search'").rowcount
    store.close()
    return {"query_vectors_removed": vectors, "search_events_removed": searches, "seconds": time.perf_counter() - t0}


def reindex_if_other_encoder(run_home: Path) -> dict:
    """Rebuild ``run_home``'s search index (``shopsense search-index``) when its vectors came from
    another encoder than the configured one: the run then measures today's default encoder."""
    from shopsense.config import load_settings
    from shopsense.features.text import TextEncoder
    from shopsense.search.index import built_encoder

    want = TextEncoder(load_settings(home=run_home).encoder).model_id
    vs = [d for d in sorted((run_home / "models").glob("*/search")) if d.is_dir()]
    path = vs[-1] if vs else run_home / "search"
    have = built_encoder(path)
    if have == want:
        return {"encoder": have, "rebuilt": False}
    t0 = time.perf_counter()
    env = {**os.environ, "SHOPSENSE_HOME": str(run_home)}
    subprocess.run([*SS, "--home", str(run_home), "search-index", "--index", str(path)], env=env, check=True)
    return {"encoder": want, "was": have, "rebuilt": True, "seconds": round(time.perf_counter() - t0, 1)}


def machine() -> dict:
    """The CPU model, cores and load average (1, 5, 15 min) now."""
    from server_procs import cpu_model

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "load": os.getloadavg()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "shopsense-bench")
    ap.add_argument("--products", type=int, default=50_000)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=int, default=15, help="duration of each wrk and open-loop run")
    ap.add_argument(
        "--rates",
        type=lambda v: [int(x) for x in v.split(",") if x],
        default=[250, 400, 500],
        help="open-loop offered rates (requests/s) over 32 connections, comma-separated",
    )
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    ap.add_argument("--similar", action="store_true", help="also build the similar-products index in the server")
    ap.add_argument("--new-share", type=float, default=0.5, help="share of /search queries never seen before")
    ap.add_argument("--run-home", type=Path, default=None, help="where the run's copy of --home goes")
    ap.add_argument("--keep", action="store_true", help="keep the run's copy of --home")
    ap.add_argument("--port", type=int, default=0, help="the server's port (default: a free one)")
    ap.add_argument("--reindex", action="store_true", help="rebuild the copy's search index if another encoder made it")
    ap.add_argument(
        "--kinds", default="recommend,search", help="routes measured at every load (comma list; may be empty)"
    )
    ap.add_argument(
        "--surfaces",
        default="",
        help="/recommend surfaces also offered --surface-rate each, e.g. "
        "for_you,continue_shopping,buy_again,similar,bought_together,complete_the_cart",
    )
    ap.add_argument("--surface-rate", type=int, default=500, help="requests/s offered to each of --surfaces")
    a = ap.parse_args()
    a.home.mkdir(parents=True, exist_ok=True)
    os.environ["HF_HUB_OFFLINE"] = "1"
    results: dict = build_home(a.home, a.products, a.events, a.users)
    run_home = a.run_home or Path(tempfile.mkdtemp(prefix="shopsense-load-"))
    results["fresh"] = fresh_copy(a.home, run_home)
    print("fresh copy:", run_home, results["fresh"], flush=True)
    if a.reindex:
        results["reindex"] = reindex_if_other_encoder(run_home)
        print("search index:", results["reindex"], flush=True)
    store = open_store(f"sqlite:///{run_home / 'shopsense.db'}")
    key = create_key(store, ["read", "write"], "bench")[1]
    products = store.products()[[C.ITEM, C.TITLE]]
    words = sorted({w.lower() for t in products[C.TITLE].head(2000) for w in t.split()[1:3] if w.isalpha()})[:200]
    port = a.port or free_port()
    base = f"http://127.0.0.1:{port}"
    results["machine_before"] = machine()
    print("machine:", results["machine_before"], flush=True)
    kinds, surfaces = ([x for x in v.split(",") if x] for v in (a.kinds, a.surfaces))
    server = start_server(run_home, port, a.workers, a.similar or "similar" in surfaces)
    try:
        results["ready"] = wait_ready(base)
        if "similar" in surfaces or a.similar:
            results["similar_built_s"] = wait_similar(base, key, str(products[C.ITEM].iloc[0]))
            print(f"similar-products index built in {results['similar_built_s']:.0f} s", flush=True)
        use_wrk = shutil.which("wrk") is not None
        if not use_wrk:
            print("wrk not found (apt-get install wrk): /recommend's closed loops run through loadgen.py", flush=True)
        for kind in kinds:
            probe = httpx.get(
                f"{base}/{kind}",
                params={"user_id": "U1", "q": words[0], "k": 10},
                headers={"X-API-Key": key},
                timeout=60,
            )
            if probe.status_code != 200:
                results[kind] = {"unavailable": probe.status_code, "detail": probe.text[:300]}
                print(kind, "unavailable:", results[kind], flush=True)
                continue
            if kind == "recommend" and use_wrk:
                run_wrk(base, kind, 4, 3, key, a.users, words)  # warm-up
            else:  # warm-up: its queries are its own (each loadgen run draws its own mix)
                run_loadgen(base, kind, 0, 4, 3, key, a.users, words, closed=True, new_share=a.new_share)
            for conns in (1, 32):
                if kind == "recommend" and use_wrk:
                    r = run_wrk(base, kind, conns, a.seconds, key, a.users, words)
                else:
                    r = run_loadgen(
                        base, kind, 0, conns, a.seconds, key, a.users, words, closed=True, new_share=a.new_share
                    )
                print(kind, conns, {k: v for k, v in r.items() if k != "raw"}, flush=True)
                results[f"{kind}_c{conns}"] = r
            for rate in a.rates:
                r = run_loadgen(base, kind, rate, 32, a.seconds, key, a.users, words, new_share=a.new_share)
                print(kind, "open loop", rate, r, flush=True)
                results[f"{kind}_rate{rate}"] = r
        item_ids = products[C.ITEM].sample(min(2000, len(products)), random_state=0).astype(str).tolist()
        for surface in surfaces:
            kind = f"surface:{surface}"
            run_loadgen(base, kind, 0, 4, 3, key, a.users, item_ids, closed=True)  # warm-up
            r = run_loadgen(base, kind, a.surface_rate, 32, a.seconds, key, a.users, item_ids)
            print(kind, "open loop", a.surface_rate, r, flush=True)
            results[f"{kind}_rate{a.surface_rate}"] = r
        if "recommend" in kinds and "recommend" not in results:
            results["freshness"] = freshness(base, key, products, a.users)
            print("freshness", results["freshness"], flush=True)
            results["freshness_new"] = freshness(base, key, products, a.users, new=True)
            print("freshness, new shoppers", results["freshness_new"], flush=True)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        results["machine_after"] = machine()
        if not a.keep:
            shutil.rmtree(run_home, ignore_errors=True)
    results["command"] = "python benchmarks/service_load.py " + " ".join(sys.argv[1:])
    if a.json:
        a.json.write_text(json.dumps(results, indent=1, default=str))
    print(markdown(results))


def _fmt(x: float | None) -> str:
    return "–" if x is None else (f"{x:,.0f}" if x >= 1000 else f"{x:.1f}")


def _bad(x: dict) -> int:
    if "statuses" in x:
        return sum(n for code, n in x["statuses"].items() if not str(code).startswith("2")) + x.get("errors", 0)
    return int(x.get("non_2xx", 0))


def markdown(r: dict) -> str:
    """Every number of the run as one markdown table (pasted under ``## Service`` in docs/benchmarks.md)."""
    d, m0, m1 = r["data"], r.get("machine_before", {}), r.get("machine_after", {})
    fresh = r.get("fresh", {})
    lines = [
        f"`{r.get('command', '')}`: {d['products']:,} products, {d['users']:,} users, {d['events']:,} events "
        f"(synthetic), a fresh copy of the home ({fresh.get('query_vectors_removed', 0):,} cached query vectors "
        f"and {fresh.get('search_events_removed', 0):,} search events of earlier runs removed), server "
        f"`--workers` as in the command, load generators on the same machine over loopback. "
        f"CPU: {m0.get('cpu', '?')}, {m0.get('cores', '?')} cores; load average (1/5/15 min) "
        f"{'/'.join(f'{x:.2f}' for x in m0.get('load', ()))} before, "
        f"{'/'.join(f'{x:.2f}' for x in m1.get('load', ()))} after."
        + (f" Search index: {r['reindex']}." if "reindex" in r else ""),
        "",
        "| route | load | requests/s | p50 ms | p90 ms | p99 ms | new queries p50 / p99 ms | repeated p50 / p99 ms "
        "| non-2xx |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for kind in ("search", "recommend"):
        if kind in r:
            lines.append(f"| /{kind} | – | – | – | – | – | – | – | unavailable: {r[kind].get('detail', '')[:80]} |")
            continue
        rows: list[tuple[str, dict]] = []
        for c in (1, 32):
            x = r.get(f"{kind}_c{c}")
            if x:
                tool = "loadgen.py" if "by_tag" in x else "wrk"
                rows.append((f"{c} client{'s' if c > 1 else ''}, closed loop ({tool})", x))
        for key in sorted((k for k in r if k.startswith(f"{kind}_rate")), key=lambda k: int(k.split("rate")[1])):
            rows.append((f"{r[key]['offered_rps']:.0f}/s offered, 32 connections", r[key]))
        for load, x in rows:
            rps = x.get("achieved_rps", x.get("rps"))
            tags = x.get("by_tag", {})
            new, rep = tags.get("new", {}), tags.get("repeat", {})
            lines.append(
                f"| /{kind} | {load} | {_fmt(rps)} | {_fmt(x.get('p50_ms'))} | {_fmt(x.get('p90_ms'))} | "
                f"{_fmt(x.get('p99_ms'))} | "
                + (f"{_fmt(new.get('p50_ms'))} / {_fmt(new.get('p99_ms'))} ({new['requests']:,})" if new else "–")
                + " | "
                + (f"{_fmt(rep.get('p50_ms'))} / {_fmt(rep.get('p99_ms'))} ({rep['requests']:,})" if rep else "–")
                + f" | {_bad(x)} |"
            )
    for key in sorted(k for k in r if k.startswith("surface:")):
        x, surface = r[key], key.split(":", 1)[1].split("_rate")[0]
        lines.append(
            f"| /recommend?surface={surface} | {x['offered_rps']:.0f}/s offered, 32 connections | "
            f"{_fmt(x.get('achieved_rps'))} | {_fmt(x.get('p50_ms'))} | {_fmt(x.get('p90_ms'))} | "
            f"{_fmt(x.get('p99_ms'))} | – | – | {_bad(x)} |"
        )
    for name, who in (("freshness", "known shoppers"), ("freshness_new", "new shoppers' first event")):
        f = r.get(name)
        if f:
            lines.append(
                f"| freshness | {who}: event POSTed -> changed /recommend, {f['n']} trials, changed in "
                f"{f['changed']} ({f['changed_on_first_request']} on the first request) | – | "
                f"{_fmt(f['p50_ms'])} | – | max {_fmt(f['max_ms'])} | – | – | – |"
            )
    lines += [
        "",
        "Requests/s of the 32-client closed loops is the saturation rate; in brackets, how many requests "
        "each latency is over.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
