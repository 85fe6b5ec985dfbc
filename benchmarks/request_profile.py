"""Where a worker's time goes per request, in process: the served engines as ``shopsense serve`` loads
them, called directly (no HTTP), for /recommend, new search queries and repeated ones.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/request_profile.py --home COPY_OF_A_HOME \\
        [--requests 500] [--kinds recommend,new_query,repeated_query] [--profile 30]

HOME is a trained knowledge base, e.g. the 50k-product home ``benchmarks/service_load.py`` builds;
searches write search events and query vectors into it, so give a copy. For each kind: CPU ms
(``time.process_time``, every thread of the process) and wall ms per request over ``--requests``
requests after a warm-up of 100, then with ``--profile N`` the N functions with the most cumulative
time under cProfile (which slows Python code several times over: read its shares, not its seconds).
``recommend_live`` asks the same as ``recommend`` with the version's precomputed lists set aside
(every shopper ranked live, as one with a newer event is); ``--build-lists`` first writes the lists
into a home trained before they existed. Queries are drawn as ``benchmarks/worker_cpu.py`` draws them: a new query is three catalog words
never sent before, a repeated one one of 100 two-word queries already searched.

The similar-products index is off unless ``--similar``: a server builds it in a background thread
after loading (about a minute of one core at 50k products, until its cache exists), and a profile
taken meanwhile measures that build as much as the requests. CPU ms above wall ms says another
thread of the process was busy. ``benchmarks/worker_cpu.py`` measures the same through HTTP.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

from shopsense.process import process_environment

os.environ.update(process_environment())  # before LightGBM or ONNX Runtime load: see shopsense.process
KINDS = ("recommend", "recommend_live", "new_query", "repeated_query")


def load_served(home: Path, similar: bool) -> tuple[object, object]:
    """The served engines of ``home``'s active version (as a worker loads them) and its store."""
    os.environ["SHOPSENSE_HOME"] = str(home)
    if not similar:
        os.environ["SHOPSENSE_SERVICE__SIMILAR_INDEX"] = "false"
    from shopsense.config import load_settings
    from shopsense.service import engines
    from shopsense.store import open_store

    settings = load_settings()
    store = open_store(settings.store_url)
    active = store.active_version()
    if active is None:
        raise SystemExit(f"{home} has no active model version: train one first (shopsense train)")
    return engines.load(active, settings.models_dir / active, store, settings), store


def build_lists(home: Path) -> dict[str, object]:
    """Write the precomputed lists of ``home``'s active version (as its training would have) unless it
    has them. Changes the version's folder: run on a copy."""
    os.environ["SHOPSENSE_HOME"] = str(home)
    from shopsense.config import load_settings
    from shopsense.data.idmap import IdMap
    from shopsense.ranking.pipeline import Engine
    from shopsense.recommend import precomputed
    from shopsense.store import open_store
    from shopsense.versions import encoder_settings

    settings = load_settings()
    store = open_store(settings.store_url)
    folder = settings.models_dir / str(store.active_version())
    if (folder / precomputed.FOLDER).exists():
        return {"lists": "already there"}
    users = [str(u) for u in store.events(include_opted_out=False)["user_id"].unique()]  # as a training lists them
    engine = Engine.load(folder / "engine").warm()
    items = IdMap.load(folder / "items.json")
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    return precomputed.build(engine, store, encoder_settings(settings, folder), items, users, folder, say)


def calls(served: object, store: object, n: int, users: int, seed: int = 0) -> dict[str, Callable[[int], object]]:
    """One request per index for each kind, indices 0 .. 2n + 99 (measured, warm-up, profiled: a new
    query is new in each)."""
    from worker_cpu import catalog_words  # the benchmarks' folder is on the path of its scripts

    from shopsense.recommend import RecommendRequest
    from shopsense.search.request import SearchRequest

    rng = random.Random(seed)
    shoppers = [f"U{rng.randrange(users)}" for _ in range(2 * n + 100)]
    words = catalog_words(store)
    fresh = [" ".join(rng.sample(words, 3)) for _ in range(2 * n + 100)]
    head = [f"{rng.choice(words[:10])} {rng.choice(words[:10])}" for _ in range(100)]
    rec = served.recommender  # type: ignore[attr-defined]
    lists = rec.lists

    def live(i: int) -> object:  # the same request ranked live: the version's precomputed lists set aside
        rec.lists = None
        try:
            return served.recommend(RecommendRequest(user_id=shoppers[i], k=10))  # type: ignore[attr-defined]
        finally:
            rec.lists = lists

    return {
        "recommend": lambda i: served.recommend(RecommendRequest(user_id=shoppers[i], k=10)),  # type: ignore[attr-defined]
        "recommend_live": live,
        "new_query": lambda i: served.search(SearchRequest(fresh[i], shoppers[i], 10, {}, f"p{i}")),  # type: ignore[attr-defined]
        "repeated_query": lambda i: served.search(SearchRequest(head[i % 100], shoppers[i], 10, {}, f"p{i}")),  # type: ignore[attr-defined]
    }


def measure(call: Callable[[int], object], n: int, profile: int) -> dict[str, object]:
    """CPU and wall ms per request over ``n`` requests after 100 of warm-up; the profile's top lines."""
    for i in range(100):
        call(n + i)  # the warm-up's indices come after the measured ones: new queries stay new
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(n):
        call(i)
    out: dict[str, object] = {
        "requests": n,
        "cpu_ms": round((time.process_time() - cpu) / n * 1000, 3),
        "wall_ms": round((time.perf_counter() - wall) / n * 1000, 3),
    }
    if profile:
        prof = cProfile.Profile()
        prof.enable()
        for i in range(n):
            call(n + 100 + i)
        prof.disable()
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(profile)
        out["profile"] = text.getvalue()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, of {', '.join(KINDS)}")
    ap.add_argument("--profile", type=int, default=0, help="print this many cProfile lines per kind (0: none)")
    ap.add_argument("--similar", action="store_true", help="keep the similar-products index (built in the background)")
    ap.add_argument(
        "--users", type=int, default=50_000, help="shoppers U0..U(n-1), as service_load.py's homes name them"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--build-lists",
        action="store_true",
        help="first write the precomputed lists into the active version when it has none (a home trained "
        "before they existed; a training makes them itself)",
    )
    a = ap.parse_args()
    kinds = [k.strip() for k in a.kinds.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        raise SystemExit(f"unknown --kinds {unknown or a.kinds!r}; valid: {', '.join(KINDS)}")
    if a.requests < 1:
        raise SystemExit("--requests must be at least 1")
    if a.build_lists:
        print(json.dumps(build_lists(a.home)), file=sys.stderr)
    served, store = load_served(a.home, a.similar)
    if served.recommender.lists is None:  # type: ignore[attr-defined]
        print("the active version has no precomputed lists: every request ranks live", file=sys.stderr)
    todo = calls(served, store, a.requests, a.users, a.seed)
    results = {}
    for kind in kinds:
        results[kind] = measure(todo[kind], a.requests, a.profile)
        print(
            f"{kind}: {results[kind]['cpu_ms']} ms CPU, {results[kind]['wall_ms']} ms wall per request", file=sys.stderr
        )
        if a.profile:
            print(results[kind]["profile"], file=sys.stderr)
    from server_procs import cpu_model

    report = {k: {m: v for m, v in r.items() if m != "profile"} for k, r in results.items()}
    load = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps({"home": str(a.home), "cpu": cpu_model(), "load_average": load, "results": report}, indent=1))


if __name__ == "__main__":
    main()
