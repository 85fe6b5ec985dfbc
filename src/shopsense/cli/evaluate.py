"""``shopsense evaluate recommend|search``: measure the engine (and peers) on any shop's files.

Both commands load the files into a temporary knowledge base through the same validated ingest as
``shopsense ingest``, so a malformed file fails the same way (message on stderr, exit code 2).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import typer

from shopsense import columns as C
from shopsense.cli.context import console, err_console, fail, handle_errors, state
from shopsense.cli.main import app
from shopsense.evaluation.shop import json_ready
from shopsense.exceptions import SchemaError

evaluate_app = typer.Typer(help="Offline evaluation on your own files (leave-one-out recommendation, judged search).")
app.add_typer(evaluate_app, name="evaluate")

_JSON = typer.Option(False, "--json", help="Print one JSON object on stdout.")
_PEERS = typer.Option(None, "--peers", help="Peers to run side by side: 'all' or names, e.g. 'pop,ease,als'.")
_QUICK = typer.Option(False, "--quick", help="One setting per peer instead of a validation grid.")
_ENGINE = typer.Option(True, "--engine/--no-engine", help="Evaluate the engine itself (--no-engine: peers only).")

SEARCH_PEERS = ("bm25", "dense", "rrf", "blend")


def _note(msg: str) -> None:
    err_console.print(msg, highlight=False, soft_wrap=True)


def _load_store(tmp: str, products: Path, events: Path | None) -> Any:
    from shopsense.data.ingest import ingest_events, ingest_products
    from shopsense.store import open_store

    store = open_store(f"sqlite:///{Path(tmp) / 'eval.db'}")
    try:
        ingest_products(store, products)
        if events is not None:
            ingest_events(store, events)
    except SchemaError as e:
        store.close()
        raise fail(str(e)) from None
    return store


# ---------------------------------------------------------------------------- recommend
@evaluate_app.command("recommend")
@handle_errors
def recommend(
    ctx: typer.Context,
    products: Path | None = typer.Option(
        None, "--products", help="Products file (CSV, TSV, Parquet, JSONL); without files: the knowledge base."
    ),
    events: Path | None = typer.Option(
        None, "--events", help="Events file (user_id, item_id, event_type, timestamp); goes with --products."
    ),
    as_json: bool = _JSON,
    peers: str | None = _PEERS,
    quick: bool = _QUICK,
    with_engine: bool = _ENGINE,
) -> None:
    """With files: leave-one-out, full ranking, peers tuned on validation. Without: the knowledge base's
    own log split by time (peers pop and itemknn unless --peers), kept in it for the dashboard and
    written as an HTML report with charts."""
    from shopsense.data.dataset import Dataset
    from shopsense.data.splits import leave_one_out
    from shopsense.evaluation.runner import parse_peers, run_engine, run_peer

    settings = state(ctx).settings
    if (products is None) != (events is None):
        raise fail("--products and --events go together (or give neither to evaluate the knowledge base)")
    if products is None or events is None:
        _evaluate_the_shop(ctx, peers, quick, with_engine, as_json)
        return
    names = parse_peers(peers)
    with tempfile.TemporaryDirectory(prefix="shopsense-eval-") as tmp:
        store = _load_store(tmp, products, events)
        try:
            ds = Dataset.from_store(store, settings.event_weights)
        finally:
            store.close()
    split = leave_one_out(ds)
    if len(split.test) == 0:
        raise fail("no user has 2 or more item events: leave-one-out needs a history and a target")
    _note(
        f"{ds.n_users:,} users, {ds.n_items:,} items, {len(ds.interactions):,} item events; "
        f"{len(split.test):,} test users, {len(split.valid):,} validation users"
    )
    results: dict[str, Any] = {}
    engine = run_engine(split, settings=settings, progress=_note) if with_engine else None
    for name in names:
        results[name] = run_peer(name, split, ds, quick=quick, progress=_note)
    out: dict[str, Any] = {k: None for k in ("ndcg@10", "hr@10", "ndcg@20", "hr@20", "coverage@10")}
    out["engine_available"] = engine is not None
    if engine is not None:
        out.update(engine)
    for name, r in results.items():
        out[name] = r
    out = json_ready(out)
    if as_json:
        typer.echo(json.dumps(out))
        return
    rows = ([("engine", out)] if engine is not None else []) + [(n, out[n]) for n in results]
    _print_recommend(rows)


def _evaluate_the_shop(ctx: typer.Context, peers: str | None, quick: bool, with_engine: bool, as_json: bool) -> None:
    """``evaluate recommend`` without files: the knowledge base's own log (:mod:`shopsense.evaluation.shop`)."""
    from shopsense.evaluation.runner import parse_peers
    from shopsense.evaluation.shop import DATASET, SHOP_PEERS, evaluate_shop, save_evaluation

    st = state(ctx)
    store = st.store(create=False)
    names = parse_peers(peers) if peers is not None else list(SHOP_PEERS)
    if not names and not with_engine:
        raise fail("nothing to evaluate: --no-engine and no --peers")
    results = evaluate_shop(store, st.settings, names, with_engine=with_engine, quick=quick, progress=_note)
    evaluation_id, page = save_evaluation(store, st.settings.home, "recommend", results)
    blocks = results["recommendation"]
    if as_json:
        primary = DATASET if DATASET in blocks else next(iter(blocks))  # a funnel log without purchases after the cut
        extra = {name: b for name, b in blocks.items() if name != primary}
        typer.echo(json.dumps({"evaluation_id": evaluation_id, "report": str(page), **blocks[primary], "also": extra}))
        return
    for name, block in blocks.items():
        info = block["info"]
        _note(f"{info['events']:,} item events; {info['test_users']:,} shoppers scored on their {info['target']}")
        _print_recommend(list(block["models"].items()), f"{name}: each shopper's {info['target']}")
    console.print(f"evaluation {evaluation_id} kept in the knowledge base (the dashboard shows it); report: {page}")


def _evaluate_the_shops_search(ctx: typer.Context, peers: str | None, with_engine: bool, as_json: bool) -> None:
    """``evaluate search`` without files: the logged searches (:mod:`shopsense.evaluation.shop`)."""
    from shopsense.evaluation.shop import DATASET, evaluate_shop_search, save_evaluation

    st = state(ctx)
    store = st.store(create=False)
    names = _parse_search_peers(peers) if peers is not None else ["bm25"]
    results = evaluate_shop_search(store, st.settings, names, with_engine=with_engine)
    evaluation_id, page = save_evaluation(store, st.settings.home, "search", results)
    block = results["search"][DATASET]
    if as_json:
        typer.echo(json.dumps({"evaluation_id": evaluation_id, "report": str(page), **block}))
        return
    from rich.table import Table

    t = Table(title=f"this shop's logged searches: {block['info']['queries']:,} judged queries over every product")
    for col in ("system", "NDCG@10", "Recall@100", "MRR", "p50 ms"):
        t.add_column(col, justify="left" if col == "system" else "right")
    for name, m in block["models"].items():
        t.add_row(name, *(_fmt(m.get(k)) for k in ("ndcg@10", "recall@100", "mrr")), _fmt(m.get("latency_p50_ms"), 2))
    console.print(t)
    console.print(f"evaluation {evaluation_id} kept in the knowledge base (the dashboard shows it); report: {page}")


def _fmt(v: Any, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _print_recommend(
    rows: list[tuple[str, dict]], title: str = "recommendation, leave-one-out, full ranking (test)"
) -> None:
    from rich.table import Table

    if not rows:
        console.print("nothing was evaluated (--no-engine and no --peers)")
        return
    t = Table(title=title)
    for col in ("model", "HR@10", "NDCG@10", "HR@20", "NDCG@20", "cov@10", "fit s", "score s"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for name, r in rows:
        t.add_row(
            name,
            *(_fmt(r.get(m)) for m in ("hr@10", "ndcg@10", "hr@20", "ndcg@20", "coverage@10")),
            _fmt(r.get("fit_seconds"), 1),
            _fmt(r.get("score_seconds"), 1),
        )
    console.print(t)
    if not any(r.get("slices") for _, r in rows):
        return
    s = Table(title="slices (test users)")
    for col in ("model", "slice", "users", "HR@10", "NDCG@10", "HR@20", "NDCG@20"):
        s.add_column(col, justify="left" if col in ("model", "slice") else "right")
    for name, r in rows:
        for sl, v in (r.get("slices") or {}).items():
            if v.get("n"):
                s.add_row(name, sl, f"{v['n']:,}", *(_fmt(v.get(m)) for m in ("hr@10", "ndcg@10", "hr@20", "ndcg@20")))
    console.print(s)


# ---------------------------------------------------------------------------- search
def read_table(path: Path, required: list[str], what: str) -> pd.DataFrame:
    """A small table (queries, qrels) from CSV/TSV/Parquet/JSONL with its required columns, as text."""
    from shopsense.data.inputfiles import input_errors
    from shopsense.data.readers import detect_format

    if not path.exists():
        raise FileNotFoundError(f"{what} file not found: {path}")
    fmt = detect_format(path)
    with input_errors(path, f"{what} file"):
        if path.is_dir():
            raise IsADirectoryError(path)
        try:
            if fmt in ("csv", "tsv"):
                df = pd.read_csv(path, sep="\t" if fmt == "tsv" else ",", dtype=str, keep_default_na=False)
            elif fmt == "parquet":
                df = pd.read_parquet(path)
            else:
                df = pd.read_json(path, lines=True, dtype=False)
        except (UnicodeDecodeError, OSError, EOFError):
            raise
        except (ValueError, pd.errors.ParserError) as e:
            raise ValueError(f"{path}: cannot read {what} as {fmt}: {' '.join(str(e).split())}") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(
            f"{path}: {what} needs column(s) {', '.join(missing)}; found {', '.join(map(str, df.columns))}"
        )
    df = df[required].copy()
    for c in required:
        if c != "relevance":
            df[c] = df[c].astype(str)
    return df


def _parse_search_peers(spec: str | None) -> list[str]:
    if not spec or spec == "none":
        return []
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if "all" in names:
        return list(SEARCH_PEERS)
    unknown = [n for n in names if n not in SEARCH_PEERS]
    if unknown:
        raise ValueError(f"unknown search peer(s) {', '.join(unknown)}; valid: all, {', '.join(SEARCH_PEERS)}")
    return list(dict.fromkeys(names))


@evaluate_app.command("search")
@handle_errors
def search(
    ctx: typer.Context,
    products: Path | None = typer.Option(
        None, "--products", help="Products file (item_id, title, ...); without files: the knowledge base."
    ),
    queries: Path | None = typer.Option(None, "--queries", help="Queries file: query_id, query."),
    qrels: Path | None = typer.Option(None, "--qrels", help="Judgements file: query_id, item_id, relevance."),
    as_json: bool = _JSON,
    peers: str | None = _PEERS,
    train_queries: Path | None = typer.Option(None, "--train-queries", help="Queries to tune/train on."),
    train_qrels: Path | None = typer.Option(None, "--train-qrels", help="Judgements of --train-queries."),
    with_engine: bool = _ENGINE,
) -> None:
    """Rank ALL products for every judged query: NDCG@10, Recall@100, MRR, p50/p99 latency. Without
    files: the knowledge base's logged searches judged by what shoppers did with the results (peer
    bm25 unless --peers), kept in it for the dashboard and written as an HTML report."""
    from shopsense.evaluation.search_protocol import engine_search_system, evaluate_search, search_peer_systems

    settings = state(ctx).settings
    given = [p for p in (products, queries, qrels) if p is not None]
    if given and len(given) < 3:
        raise fail("--products, --queries and --qrels go together (or give none to evaluate the logged searches)")
    if products is None or queries is None or qrels is None:
        _evaluate_the_shops_search(ctx, peers, with_engine, as_json)
        return
    names = _parse_search_peers(peers)
    q = read_table(queries, ["query_id", "query"], "queries")
    r = read_table(qrels, ["query_id", C.ITEM, "relevance"], "qrels")
    train = None
    if (train_queries is None) != (train_qrels is None):
        raise fail("--train-queries and --train-qrels go together")
    if train_queries is not None and train_qrels is not None:
        train = (
            read_table(train_queries, ["query_id", "query"], "train queries"),
            read_table(train_qrels, ["query_id", C.ITEM, "relevance"], "train qrels"),
        )
    with tempfile.TemporaryDirectory(prefix="shopsense-eval-") as tmp:
        store = _load_store(tmp, products, None)
        try:
            catalog = store.products()
            if catalog.empty:
                raise fail(f"{products}: no products")
            engine = engine_search_system(settings, catalog, store=store, train=train) if with_engine else None
            systems, report_names, blend_weight = search_peer_systems(
                names, catalog, settings, store=store, train=train
            )
        finally:
            store.close()
    if engine is None and with_engine:
        _note("engine search not available (shopsense.search.SearchEngine is missing); peers only")
    if engine is not None:
        systems = {"engine": engine, **systems}
    if not systems:
        raise fail("nothing to evaluate: no engine search and no --peers")
    res = evaluate_search(catalog, q, r, systems, fusion=bool({"rrf", "blend"} & set(names)), blend_weight=blend_weight)
    keys = ("ndcg@10", "recall@100", "mrr", "rerank_ndcg@10", "latency_p50_ms", "latency_p99_ms", "n_queries")
    out: dict[str, Any] = {k: None for k in keys}
    out["engine_available"] = engine is not None
    if engine is not None:
        out.update(res["engine"])
    for name in report_names:
        out[name] = res[name]
    out = json_ready(out)
    if as_json:
        typer.echo(json.dumps(out))
        return
    from rich.table import Table

    t = Table(
        title=f"search over all {len(catalog):,} products, {out[report_names[0]]['n_queries'] if report_names else out['n_queries']} judged queries"
    )
    for col in ("system", "NDCG@10", "Recall@100", "MRR", "rerank NDCG@10", "p50 ms", "p99 ms"):
        t.add_column(col, justify="left" if col == "system" else "right")
    rows = ([("engine", out)] if engine is not None else []) + [(n, out[n]) for n in report_names]
    for name, m in rows:
        t.add_row(
            name,
            *(_fmt(m.get(k)) for k in ("ndcg@10", "recall@100", "mrr", "rerank_ndcg@10")),
            _fmt(m.get("latency_p50_ms"), 2),
            _fmt(m.get("latency_p99_ms"), 2),
        )
    console.print(t)
    sys.stdout.flush()
