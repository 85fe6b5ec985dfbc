"""The shop's own evaluation: the engine and peers measured on the knowledge base's own events, kept in
the knowledge base (the dashboard shows the newest) and written as an HTML report with charts.

``shopsense evaluate recommend`` without files runs it for recommendations. The split is by time
(:func:`~shopsense.data.splits.next_after_cut`): the models learn from everything before one moment and
are scored on each returning shopper's first item after it, so a shop sees how its lists would have
done on what its shoppers did next. Accuracy (HR, NDCG), catalog coverage, intra-list diversity,
novelty and popularity bias per model, and the slices (new shoppers, long-tail targets...), in the
benchmark runner's results shape, so the report and the dashboard draw them the same way. On a
funnel log (views, favourites or carts before purchases) the first item after the cut is mostly a
view of something already seen, so there the target is each shopper's first *purchase* after the cut,
nothing masked, and the engine is scored through the lists a shop shows (``for_you``,
``continue_shopping``) beside the shopper's own items by weighted count (:func:`evaluate_funnel`).

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

from shopsense import columns as C
from shopsense.exceptions import ShopsenseError

if TYPE_CHECKING:  # imported where used: the CLI imports this module for json_ready on every command
    import pandas as pd

    from shopsense.config import Settings
    from shopsense.data.dataset import Dataset
    from shopsense.ranking.pipeline import Engine
    from shopsense.store import KnowledgeStore

#: peers measured beside the engine when none are named: cheap enough for any shop's log
SHOP_PEERS = ("pop", "itemknn")
#: the name the results give the knowledge base's own data
DATASET = "this shop"


class NothingToEvaluateError(ShopsenseError):
    """The knowledge base has too little history for a time-based evaluation."""


def shop_dataset(store: KnowledgeStore, settings: Settings) -> Dataset:
    """The knowledge base's item events as a dataset; refuses an empty log."""
    from shopsense.data.dataset import Dataset

    ds = Dataset.from_store(store, settings.event_weights)
    if not len(ds.interactions):
        raise NothingToEvaluateError("the knowledge base has no item events to evaluate on")
    return ds


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
    (``{"recommendation": {"this shop": {"info": ..., "models": ...}, ...}, "environment": ...}``).

    Any log: each returning shopper's first item after the cut, their own items masked. A funnel log
    (purchases and the views or carts before them): under ``"this shop"`` each shopper's first purchase
    after the cut, nothing masked (:func:`evaluate_funnel`), and under ``"this shop, first new item"``
    the first item after the cut the shopper had not touched before, own items masked (discovery).
    The engine is fitted once, on the log before the cut."""
    from shopsense.data.splits import next_after_cut
    from shopsense.evaluation.next_purchase import is_funnel_log
    from shopsense.evaluation.protocol import evaluate_recommender
    from shopsense.evaluation.runner import run_peer
    from shopsense.training import default_recommender

    say = progress or (lambda _m: None)
    ds = shop_dataset(store, settings)
    funnel = is_funnel_log(ds)
    split = next_after_cut(ds, new_items_only=funnel)
    if not len(split.test) and not funnel:
        raise NothingToEvaluateError(
            "no shopper has item events both before and after the last 20% of the log began: "
            "nothing to score (ingest more history)"
        )
    t0 = time.time()
    engine = None
    if with_engine:
        say("engine: fitting on the log before the cut")
        engine = default_recommender(settings).fit(split.train_full)
    fit_seconds = time.time() - t0
    blocks: dict[str, dict[str, Any]] = {}
    if funnel:
        try:
            blocks[DATASET] = evaluate_funnel(
                ds, settings, peers, engine=engine.engine if engine else None, progress=say
            )
        except NothingToEvaluateError as e:
            if not len(split.test):
                raise
            say(f"{e}; scoring the first new item after the cut only")
    if len(split.test):
        models: dict[str, Any] = {}
        if engine is not None:
            say("engine: test")
            models["engine"] = {**evaluate_recommender(engine, split, fit=False), "fit_seconds": fit_seconds}
        for name in peers:
            models[name] = run_peer(name, split, ds, quick=quick, progress=progress)
        target = "first new item after the cut" if funnel else "first item after the cut"
        info = {
            "users": ds.n_users,
            "items": ds.n_items,
            "events": len(ds.interactions),
            "test_users": len(split.test),
            "valid_users": len(split.valid),
            "protocol": f"time split: trained on the log before the last 20% began, scored on each returning "
            f"shopper's {target}, their own items masked",
            "target": target,
            "seconds": round(time.time() - t0, 1),
        }
        blocks[f"{DATASET}, first new item" if funnel else DATASET] = {"info": info, "models": models}
    return _results(blocks)


#: the engine's surfaces reported by the funnel protocol, under these names
FUNNEL_SURFACES = {"for_you": "engine for_you", "continue_shopping": "engine continue_shopping"}
OWN_ITEMS_PEER = "own items by weighted count"


def evaluate_funnel(
    ds: Dataset,
    settings: Settings,
    peers: list[str] | tuple[str, ...] = SHOP_PEERS,
    *,
    engine: Engine | None = None,
    test_fraction: float = 0.2,
    progress: Any = None,
) -> dict[str, Any]:
    """Next purchase on a funnel log (:mod:`shopsense.evaluation.next_purchase`): models learn from the
    log before the cut; each shopper with events before it is scored on their first purchase after it,
    from every event they had before that purchase (what the live shop reads), nothing masked. The
    ``engine`` (fitted on the log before the cut; none: not measured) through ``for_you`` and
    ``continue_shopping``; the dataset README's own-items peer; the named batch ``peers`` from their
    training rows (``{"info": ..., "models": ...}``)."""
    import numpy as np
    import scipy.sparse as sp

    from shopsense.data.splits import purchases_after_cut
    from shopsense.evaluation import next_purchase as NP
    from shopsense.evaluation.runner import PEERS
    from shopsense.ranking.returns import shopper_logs

    say = progress or (lambda _m: None)
    t0 = time.time()
    train, targets = purchases_after_cut(ds, test_fraction=test_fraction)
    if not len(targets):
        raise NothingToEvaluateError(
            f"no shopper with events before the last {test_fraction:.0%} of the log bought after it: "
            "nothing to score (ingest more history)"
        )
    users = targets[C.USER_IDX].to_numpy(np.int64)
    items = targets[C.ITEM_IDX].to_numpy(np.int64)
    times = targets[C.TIMESTAMP].to_numpy(np.float64)
    logs = dict(shopper_logs(ds))
    histories = [logs[u].before(t) for u, t in zip(users, times, strict=True)]
    models: dict[str, Any] = {}
    if engine is not None:
        say("engine: the for_you and continue_shopping lists")
        lists = NP.surface_lists(engine, histories, times, settings.online)
        for surface, name in FUNNEL_SURFACES.items():
            models[name] = NP.summarise(lists[surface], items)
    models[OWN_ITEMS_PEER] = NP.summarise(NP.own_items_by_weighted_count(histories, times), items)
    for name in peers:
        spec = PEERS[name]
        say(f"{name}: fitting on the log before the cut")
        model = spec.build(**dict((spec.quick_grid or spec.grid)[0]))
        model.fit(train)
        top = model.recommend_batch(users, 20, sp.csr_matrix((len(users), train.n_items), dtype=np.float32))
        models[name] = NP.summarise(list(top), items)
    info = {
        "users": ds.n_users,
        "items": ds.n_items,
        "events": len(ds.interactions),
        "test_users": len(targets),
        "protocol": f"next purchase: trained on the log before the last {test_fraction:.0%} began, scored on "
        "each shopper's first purchase after it from every event before it, nothing masked",
        "target": "first purchase after the cut",
        "seconds": round(time.time() - t0, 1),
    }
    return {"info": info, "models": models}


def _results(blocks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "recommendation": {name: {"info": b["info"], "models": json_ready(b["models"])} for name, b in blocks.items()},
        "environment": {"machine": f"{platform.machine()} {platform.processor()}".strip(), "versions": ""},
    }


#: the grade of a logged search result by what the shopper did with it
GRADES = {"click": 1.0, "add_to_cart": 2.0, "purchase": 3.0}


def logged_judgements(store: KnowledgeStore, latest: int = 200_000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(queries, qrels) from the latest ``latest`` logged search impressions joined to their outcomes:
    one query per distinct text (case and spaces folded), judged by the best outcome per product."""
    import pandas as pd

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
