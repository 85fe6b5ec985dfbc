"""``make bench``: the engine and its peers side by side on the public datasets.

Recommendation (Scientific, Video Games, Beauty): leave-one-out, full ranking, every model tuned on
validation (see ``shopsense.evaluation.runner``). Search (Home Depot dev split): all products per query.
Writes the ``## Recommendation`` and ``## Search`` sections of ``docs/benchmarks.md`` (each table with its
date and commit; the other sections, kept by hand, are left as they are), ``reports/index.html`` with
charts, and ``reports/results.json`` (results of earlier runs of other datasets are kept, so
``--datasets beauty`` refreshes one table).

    .venv/bin/python benchmarks/run.py                       # everything (hours on 2 shared cores)
    .venv/bin/python benchmarks/run.py --datasets beauty --quick --peers pop,pop-all,ease
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from shopsense.process import process_environment

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache"
REC_DATASETS = ("scientific", "videogames", "beauty")
SEARCH_DATASETS = ("homedepot",)
DEFAULT_DATASETS = (*REC_DATASETS, *SEARCH_DATASETS)

os.environ.update(process_environment())  # before torch, LightGBM or faiss load: see shopsense.process
os.environ.setdefault("SHOPSENSE_RECTOOLS_PYTHON", str(ROOT / ".venv-rectools" / "bin" / "python"))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- environment
def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{mem_kb / 2**20:.0f} GiB"
    except OSError:
        mem = "?"
    return f"{os.cpu_count()} cores ({cpu}), {mem} RAM, {platform.system()} {platform.release()}; shared with other jobs, noisy"


def versions() -> dict[str, str]:
    out = {}
    for pkg in ("shopsense", "numpy", "scipy", "pandas", "implicit", "bm25s", "sentence-transformers", "torch"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    try:
        # "-dirty" marks numbers measured on uncommitted changes; tags are left out so it stays a hash
        sha = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--exclude=*"], cwd=ROOT, capture_output=True, text=True
        ).stdout
        out["commit"] = sha.strip()
    except OSError:
        pass
    return out


# ---------------------------------------------------------------------------- item vectors (for diversity)
def _cached(key: str, make: Any) -> np.ndarray:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{key}.npy"
    if path.exists():
        return np.load(path)
    arr = make()
    np.save(path, arr)
    return arr


def text_vectors(name: str, products: Any) -> np.ndarray:
    """MiniLM vectors of the product text (the engine's encoder and template), cached on disk."""
    from shopsense.features.embeddings import embed_products
    from shopsense.features.product_text import product_texts
    from shopsense.features.text import TextEncoder

    enc = TextEncoder()
    digest = hashlib.sha1("\n".join(product_texts(products, enc.config.template)).encode()).hexdigest()[:12]
    key = f"{name}-{enc.model_id.replace('/', '_')}-{digest}"

    def make() -> np.ndarray:
        log(f"{name}: encoding {len(products):,} product texts with {enc.model_id} (cached afterwards)")
        return embed_products(products, enc)

    return _cached(key, make)


def attribute_vectors(name: str, products: Any) -> np.ndarray | None:
    """Bag-of-attributes vectors for the S3-Rec sets (no titles): their ``*_item2attributes.json``."""
    from shopsense.config import data_dir

    stem = {"beauty": "Beauty", "sports": "Sports_and_Outdoors", "toys": "Toys_and_Games"}.get(name)
    path = data_dir() / "amazon-beauty-sports-toys-s3rec" / f"{stem}_item2attributes.json"
    if stem is None or not path.exists():
        return None
    attrs = json.loads(path.read_text())
    ids = sorted({a for v in attrs.values() for a in v})
    col = {a: i for i, a in enumerate(ids)}
    vec = np.zeros((len(products), len(ids)), dtype=np.float32)
    for row, item in enumerate(products["item_id"].astype(str)):
        for a in attrs.get(item, []):
            vec[row, col[a]] = 1.0
    return vec


# ---------------------------------------------------------------------------- runs
def run_recommendation(
    name: str,
    peers: list[str],
    *,
    quick: bool,
    engine: bool,
    checkpoint: Any = None,
    vectors: bool = True,
    grids: dict[str, dict[str, list[Any]]] | None = None,
) -> dict[str, Any]:
    from shopsense.data.dataset import Dataset
    from shopsense.data.public import load_dataset
    from shopsense.data.splits import leave_one_out
    from shopsense.evaluation.runner import run_engine, run_peer

    t0 = time.perf_counter()
    d = load_dataset(name)
    ds = Dataset.from_frames(d.events, d.products)
    split = leave_one_out(ds)
    log(f"{name}: {ds.n_users:,} users, {ds.n_items:,} items, {len(ds.interactions):,} interactions")
    item_vectors = None
    if vectors:
        item_vectors = text_vectors(name, ds.products) if d.has_text else attribute_vectors(name, ds.products)
    info: dict[str, Any] = {
        "users": ds.n_users,
        "items": ds.n_items,
        "interactions": len(ds.interactions),
        "test_users": len(split.test),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "quick": quick,
    }
    models: dict[str, Any] = {}
    if engine:
        models["engine"] = run_engine(split, item_vectors=item_vectors, progress=lambda m: log(f"{name}: {m}"))
    for peer in peers:
        try:
            models[peer] = run_peer(
                peer,
                split,
                ds,
                quick=quick,
                item_vectors=item_vectors,
                progress=lambda m: log(f"{name}: {m}"),
                override=(grids or {}).get(peer),
            )
            r = models[peer]
            if checkpoint is not None:  # a crash later must not lose the finished models
                checkpoint({"info": info, "models": models})
            log(f"{name}: {peer} NDCG@10 {r['ndcg@10']:.4f} HR@10 {r['hr@10']:.4f} fit {r['fit_seconds']:.1f}s")
        except Exception as e:  # one failing peer must not lose the others' numbers
            log(f"{name}: {peer} FAILED: {e}")
            traceback.print_exc()
            info.setdefault("failed", {})[peer] = str(e)[:300]
    info["seconds"] = time.perf_counter() - t0
    return {"info": info, "models": models}


def run_search(name: str, peers: list[str], *, engine: bool) -> dict[str, Any]:
    from shopsense.data.public import load_dataset
    from shopsense.evaluation.search_protocol import engine_search_system, evaluate_search, search_peer_systems

    d = load_dataset(name)
    products = d.products.reset_index(drop=True)
    log(f"{name}: {len(products):,} products, {d.queries['query_id'].nunique():,} queries")
    # the catalog is encoded only when a dense system runs (54k titles: long on 2 shared cores)
    needs_dense = engine or bool({"dense", "rrf", "blend"} & set(peers))
    vectors = text_vectors(name, products) if needs_dense else None
    systems, _, weight = search_peer_systems(peers, products, vectors=vectors)
    info: dict[str, Any] = {
        "products": len(products),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    if engine:
        eng = engine_search_system(None, products, vectors=vectors)
        if eng is None:
            info["note"] = "Engine search (shopsense.search.SearchEngine) not available at this commit."
        else:
            systems = {"engine": eng, **systems}
    total = len(d.queries)
    done = [0]

    def progress(n: int) -> None:
        done[0] += n
        if done[0] % 1000 == 0:
            log(f"{name}: {done[0]:,}/{total:,} queries")

    res = evaluate_search(products, d.queries, d.qrels, systems, fusion=True, blend_weight=weight, progress=progress)
    info["queries"] = next(iter(res.values()))["n_queries"]
    keep = [n for n in ("engine", "bm25", "dense", "rrf", "blend") if n in res]
    return {"info": info, "models": {n: res[n] for n in keep}}


def _strip(v: Any) -> Any:
    if isinstance(v, dict):
        # evaluated-user and top-k arrays are dropped; an info count named "users" is kept
        return {k: _strip(x) for k, x in v.items() if not isinstance(x, np.ndarray)}
    if isinstance(v, list | tuple):
        return [_strip(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and v != v:
        return None
    return v


def _shown_args(argv: list[str] | None) -> list[str]:
    """The command-line options that change the numbers (not where the outputs go)."""
    args, out, skip = list(argv if argv is not None else sys.argv[1:]), [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("--reports", "--docs"):
            skip = True
            continue
        if a == "--merge":
            break
        out.append(a)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default=",".join(DEFAULT_DATASETS), help="comma list (default: all four)")
    ap.add_argument("--peers", default="all", help="recommendation peers: all, or e.g. pop,ease,als")
    ap.add_argument("--search-peers", default="bm25,dense,rrf,blend")
    ap.add_argument("--quick", action="store_true", help="one setting per peer (no validation grid)")
    ap.add_argument("--no-engine", action="store_true", help="peers only")
    ap.add_argument("--no-vectors", action="store_true", help="skip item text vectors (no diversity column)")
    ap.add_argument("--docs", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument("--reports", default=str(ROOT / "reports"))
    ap.add_argument(
        "--merge", nargs="*", default=[], help="results.json files of other runs to fold in (then run --datasets too)"
    )
    ap.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="PEER:KEY=V1,V2[;KEY=...]",
        help="replace axes of a peer's validation grid, e.g. 'sasrec:dropout_rate=0.2,0.5;budget_seconds=1800'",
    )
    args = ap.parse_args(argv)
    from shopsense.evaluation.runner import parse_grid_override

    try:
        grids = dict(parse_grid_override(g) for g in args.grid)
    except ValueError as e:
        ap.error(str(e))

    from shopsense.evaluation.report import html_report, recommendation_section, search_section, update_markdown
    from shopsense.evaluation.runner import parse_peers

    names = [n.strip() for n in args.datasets.split(",") if n.strip() and n.strip() != "none"]
    unknown = [n for n in names if n not in (*REC_DATASETS, *SEARCH_DATASETS, "sports", "toys", "movielens-100k")]
    if unknown:
        ap.error(f"unknown dataset(s) {', '.join(unknown)}; valid: {', '.join(DEFAULT_DATASETS)}")
    peers = parse_peers(args.peers)
    if "sasrec" in peers and any(n not in SEARCH_DATASETS for n in names):
        from shopsense.evaluation.peers.sasrec import ensure_rectools_venv

        log("checking the RecTools virtualenv (.venv-rectools; created on first use, a few minutes)")
        try:
            ensure_rectools_venv(Path(os.environ["SHOPSENSE_RECTOOLS_PYTHON"]).parents[1])
        except Exception as e:
            log(f"RecTools environment unavailable, SASRec skipped: {e}")
            peers.remove("sasrec")
    reports = Path(args.reports)
    reports.mkdir(parents=True, exist_ok=True)
    store_path = reports / "results.json"
    environment = {
        "machine": machine(),
        "versions": versions(),
        "command": "make bench  (= .venv/bin/python benchmarks/run.py " + " ".join(_shown_args(argv)) + ")",
    }
    mine: dict[str, dict[str, Any]] = {"recommendation": {}, "search": {}}
    for other in args.merge:  # model by model: two partial runs of one dataset add up
        data = json.loads(Path(other).read_text())
        for part in ("recommendation", "search"):
            for ds_name, block in data.get(part, {}).items():
                have = mine[part].setdefault(ds_name, {"info": {}, "models": {}})
                have["info"] = {**block.get("info", {}), **have["info"]}
                have["models"].update(block.get("models", {}))

    def save() -> None:
        # re-read at every save: another run (other datasets) may have written meanwhile; keep its tables
        results: dict[str, Any] = json.loads(store_path.read_text()) if store_path.exists() else {}
        for part in ("recommendation", "search"):
            results.setdefault(part, {}).update(mine[part])
        results["environment"] = environment
        results = _strip(results)
        store_path.write_text(json.dumps(results, indent=1))
        update_markdown(
            args.docs, {"Recommendation": recommendation_section(results), "Search": search_section(results)}
        )
        html_report(results, reports)

    if args.merge:
        save()
        log(f"merged {len(args.merge)} result file(s) into {store_path}")
    for name in names:
        log(f"=== {name}")
        if name in SEARCH_DATASETS:
            search_peers = [p.strip() for p in args.search_peers.split(",") if p.strip()]
            mine["search"][name] = run_search(name, search_peers, engine=not args.no_engine)
            mine["search"][name]["info"]["command"] = environment["command"]
            mine["search"][name]["info"]["commit"] = environment["versions"].get("commit")
        else:
            ds_peers = list(peers)
            if name == "beauty" and "pop-all" not in ds_peers:
                ds_peers.insert(1 if "pop" in ds_peers else 0, "pop-all")  # the protocol check

            def checkpoint(partial: dict[str, Any], name: str = name) -> None:
                mine["recommendation"][name] = partial
                save()

            mine["recommendation"][name] = run_recommendation(
                name,
                ds_peers,
                quick=args.quick,
                engine=not args.no_engine,
                checkpoint=checkpoint,
                vectors=not args.no_vectors,
                grids=grids,
            )
            mine["recommendation"][name]["info"]["command"] = environment["command"]
            mine["recommendation"][name]["info"]["commit"] = environment["versions"].get("commit")
        save()
        log(f"{name}: written to {args.docs} and {reports / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
