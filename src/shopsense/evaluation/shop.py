"""The shop's own evaluation: the engine and peers measured on the knowledge base's own events, kept in
the knowledge base (the dashboard shows the newest) and written as an HTML report with charts.

``shopsense evaluate recommend`` without files runs it for recommendations. The split is by time
(:func:`~shopsense.data.splits.next_after_cut`): the models learn from everything before one moment and
are scored on each returning shopper's first item after it, so a shop sees how its lists would have
done on what its shoppers did next. Accuracy (HR, NDCG), catalog coverage, intra-list diversity,
novelty and popularity bias per model, and the slices (new shoppers, long-tail targets...), in the
benchmark runner's results shape, so the report and the dashboard draw them the same way.

``shopsense evaluate search`` without files judges search by the shop's own logged searches: each
query shown to shoppers is judged by what they did with its results (click 1, add to cart 2, purchase
3, the best per product), and every system ranks the whole catalog for it. Clicks can only judge what
was shown, so a system that ranks products nobody was shown first is under-credited: the numbers
compare systems on what this shop's shoppers could see, not on absolute relevance.
"""

from __future__ import annotations

import math
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shopsense.exceptions import ShopsenseError

if TYPE_CHECKING:  # imported where used: the CLI imports this module for json_ready on every command
    import pandas as pd

    from shopsense.config import Settings
    from shopsense.data.dataset import Dataset
    from shopsense.data.splits import LeaveOneOut
    from shopsense.store import KnowledgeStore

#: peers measured beside the engine when none are named: cheap enough for any shop's log
SHOP_PEERS = ("pop", "itemknn")
#: the name the results give the knowledge base's own data
DATASET = "this shop"


class NothingToEvaluateError(ShopsenseError):
    """The knowledge base has too little history for a time-based evaluation."""


def shop_split(store: KnowledgeStore, settings: Settings, test_fraction: float = 0.2) -> tuple[Dataset, LeaveOneOut]:
    """The knowledge base's events and their time-based split; refuses a log nobody comes back in."""
    from shopsense.data.dataset import Dataset
    from shopsense.data.splits import next_after_cut

    ds = Dataset.from_store(store, settings.event_weights)
    if not len(ds.interactions):
        raise NothingToEvaluateError("the knowledge base has no item events to evaluate on")
    split = next_after_cut(ds, test_fraction=test_fraction)
    if not len(split.test):
        raise NothingToEvaluateError(
            "no shopper has item events both before and after the last "
            f"{test_fraction:.0%} of the log began: nothing to score (ingest more history)"
        )
    return ds, split


def evaluate_shop(
    store: KnowledgeStore,
    settings: Settings,
    peers: list[str] | tuple[str, ...] = SHOP_PEERS,
    *,
    with_engine: bool = True,
    quick: bool = True,
    progress: Any = None,
) -> dict[str, Any]:
    """The engine and ``peers`` on the knowledge base's own log, in the benchmark runner's results shape
    (``{"recommendation": {"this shop": {"info": ..., "models": ...}}, "environment": ...}``)."""
    from shopsense.evaluation.runner import run_engine, run_peer

    ds, split = shop_split(store, settings)
    t0 = time.time()
    models: dict[str, Any] = {}
    if with_engine:
        models["engine"] = run_engine(split, settings=settings, progress=progress)
    for name in peers:
        models[name] = run_peer(name, split, ds, quick=quick, progress=progress)
    info = {
        "users": ds.n_users,
        "items": ds.n_items,
        "events": len(ds.interactions),
        "test_users": len(split.test),
        "valid_users": len(split.valid),
        "protocol": "time split: trained on the log before the last 20% began, scored on each returning "
        "shopper's first item after it",
        "seconds": round(time.time() - t0, 1),
    }
    return {
        "recommendation": {DATASET: {"info": info, "models": json_ready(models)}},
        "environment": {"machine": f"{platform.machine()} {platform.processor()}".strip(), "versions": ""},
    }


#: the grade of a logged search result by what the shopper did with it
GRADES = {"click": 1.0, "add_to_cart": 2.0, "purchase": 3.0}


def logged_judgements(store: KnowledgeStore, latest: int = 200_000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(queries, qrels) from the latest ``latest`` logged search impressions joined to their outcomes:
    one query per distinct text (case and spaces folded), judged by the best outcome per product."""
    import pandas as pd

    from shopsense import columns as C
    from shopsense.data.outcomes import label_impressions

    imp = store.impressions(latest=latest)
    imp = imp[(imp[C.SURFACE] == "search") & imp[C.QUERY].notna()]
    empty = pd.DataFrame({"query_id": [], "query": []}), pd.DataFrame({"query_id": [], C.ITEM: [], "relevance": []})
    if imp.empty:
        return empty
    since = float(imp[C.TIMESTAMP].min())
    labelled = label_impressions(imp, store.events(since=since))
    grade = pd.concat([labelled[col].astype(float) * g for col, g in GRADES.items()], axis=1).max(axis=1)
    labelled = labelled.assign(relevance=grade.to_numpy(), query=labelled[C.QUERY].str.strip().str.lower())
    judged = labelled[labelled.relevance > 0]
    if judged.empty:
        return empty
    qrels = judged.groupby(["query", C.ITEM], as_index=False).relevance.max()
    texts = sorted(qrels["query"].unique())
    ids = {t: f"q{i}" for i, t in enumerate(texts)}
    queries = pd.DataFrame({"query_id": [ids[t] for t in texts], "query": texts})
    qrels = pd.DataFrame({"query_id": qrels["query"].map(ids), C.ITEM: qrels[C.ITEM], "relevance": qrels.relevance})
    return queries, qrels


def evaluate_shop_search(
    store: KnowledgeStore,
    settings: Settings,
    peers: list[str] | tuple[str, ...] = ("bm25",),
    *,
    with_engine: bool = True,
) -> dict[str, Any]:
    """The engine's search and ``peers`` on the shop's logged searches, in the results shape
    (``{"search": {"this shop": {"info": ..., "models": ...}}}``)."""
    from shopsense.evaluation.search_protocol import engine_search_system, evaluate_search, search_peer_systems

    queries, qrels = logged_judgements(store)
    if queries.empty:
        raise NothingToEvaluateError(
            "no logged search has a click, add to cart or purchase of one of its results yet "
            "(searches through the server are logged with their results; events quoting their request_id judge them)"
        )
    catalog = store.products()
    systems: dict[str, Any] = {}
    if with_engine and (engine := engine_search_system(settings, catalog, store=store)) is not None:
        systems["engine"] = engine
    peer_systems, names, blend_weight = search_peer_systems(list(peers), catalog, settings, store=store)
    systems.update(peer_systems)
    res = evaluate_search(
        catalog,
        queries,
        qrels,
        systems,
        fusion=bool({"rrf", "blend"} & set(peers)),
        blend_weight=blend_weight,
        threshold=1.0,
    )
    models = {n: res[n] for n in [*(["engine"] if "engine" in systems else []), *names]}
    info = {
        "queries": len(queries),
        "judged_products": len(qrels),
        "products": len(catalog),
        "protocol": "logged searches judged by their outcomes (click 1, cart 2, purchase 3)",
    }
    return {"search": {DATASET: {"info": info, "models": json_ready(models)}}}


def save_evaluation(store: KnowledgeStore, home: Path, kind: str, results: dict[str, Any]) -> tuple[int, Path]:
    """Keep ``results`` in the knowledge base and write its HTML report with charts under
    ``<home>/reports/evaluations/<id>/``; returns (the evaluation's id, the report's path)."""
    from shopsense.evaluation.report import html_report

    evaluation_id = store.add_evaluation(kind, results)
    out = Path(home) / "reports" / "evaluations" / str(evaluation_id)
    return evaluation_id, html_report(results, out, title=f"shopsense: evaluation {evaluation_id} of this shop")


def json_ready(v: Any) -> Any:
    """Arrays dropped (per-user top-k lists), floats rounded, NaN -> None, numpy scalars as Python."""
    if isinstance(v, dict):
        return {k: json_ready(x) for k, x in v.items() if not hasattr(x, "shape")}
    if isinstance(v, list | tuple):
        return [json_ready(x) for x in v]
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, 6)
    if hasattr(v, "item"):
        return json_ready(v.item())
    return v
