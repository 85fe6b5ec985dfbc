"""Run recommenders side by side on one leave-one-out split: tune each on validation, score it on test.

Peers are named (``pop``, ``pop-all``, ``als``, ``bpr``, ``itemknn``, ``itemknn-recency``, ``covisit``,
``ease``, ``sasrec``) and each has a small grid searched on the validation targets (fit on ``train``); the
best setting by NDCG@10 is refitted on ``train_full`` and scored on the test targets. The engine's own pipeline
(``shopsense.training.default_recommender``) runs with its default configuration.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shopsense import columns as C
from shopsense.config import Settings
from shopsense.data.dataset import Dataset
from shopsense.data.splits import LeaveOneOut
from shopsense.evaluation.protocol import Recommender, evaluate_recommender
from shopsense.training import default_recommender

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PeerSpec:
    """A named peer: how to build it from params, and the grid tried on validation."""

    name: str
    build: Callable[..., Recommender]
    grid: Sequence[dict[str, Any]] = ({},)
    quick_grid: Sequence[dict[str, Any]] | None = None
    description: str = ""
    needs_full: bool = False  # built with the whole dataset (pop-all only)
    # chooses its epochs on validation by early stopping (SASRec): validated even with one setting
    early_stopping: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _pop(**kw: Any) -> Recommender:
    from shopsense.evaluation.peers.popular import MostPopular

    return MostPopular(**kw)


def _als(**kw: Any) -> Recommender:
    from shopsense.evaluation.peers.factorization import ALS

    return ALS(**kw)


def _bpr(**kw: Any) -> Recommender:
    from shopsense.evaluation.peers.factorization import BPR

    return BPR(**kw)


def _knn(**kw: Any) -> Recommender:
    from shopsense.evaluation.peers.neighbors import ItemKNN

    return ItemKNN(**kw)


def _ease(**kw: Any) -> Recommender:
    from shopsense.evaluation.peers.neighbors import EASE

    return EASE(**kw)


def _knn_recency(**kw: Any) -> Recommender:
    from shopsense.evaluation.peers.recency import RecencyItemKNN

    return RecencyItemKNN(**kw)


def _covisit(**kw: Any) -> Recommender:
    from shopsense.evaluation.peers.recency import CoVisitation

    return CoVisitation(**kw)


def _sasrec(**kw: Any) -> Recommender:
    from shopsense.evaluation.peers.sasrec import SASRecPeer

    return SASRecPeer(**kw)


def _grid(**axes: Sequence[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{}]
    for key, values in axes.items():
        out = [{**d, key: v} for d in out for v in values]
    return out


PEERS: dict[str, PeerSpec] = {
    "pop": PeerSpec("pop", _pop, description="most popular in the training part"),
    "pop-all": PeerSpec(
        "pop-all", _pop, needs_full=True, description="most popular over ALL interactions (leaks test; protocol check)"
    ),
    "itemknn": PeerSpec(
        "itemknn", _knn, _grid(neighbors=[20, 50, 100, 200]), _grid(neighbors=[50]), "item-kNN, cosine (implicit)"
    ),
    "ease": PeerSpec("ease", _ease, _grid(l2=[50.0, 200.0, 500.0, 1000.0]), _grid(l2=[200.0]), "EASE, closed form"),
    "als": PeerSpec(
        "als",
        _als,
        _grid(factors=[64, 128], alpha=[5.0, 20.0], regularization=[0.01]),
        _grid(factors=[64], alpha=[10.0]),
        "implicit ALS",
    ),
    "bpr": PeerSpec(
        "bpr",
        _bpr,
        _grid(factors=[64, 128], learning_rate=[0.01, 0.05]),
        _grid(factors=[64], learning_rate=[0.05]),
        "implicit BPR",
    ),
    # the engine's own item-kNN and co-visitation models, each alone, with the engine's recency weighting
    # (quick grid = the engine's settings); decay 1.0 is left out: that is the plain item-kNN peer's ground.
    # 0.3, 500 neighbours and a 50-step window: the first grid's edges (0.5 on Beauty, 200, 20) were chosen
    "itemknn-recency": PeerSpec(
        "itemknn-recency",
        _knn_recency,
        _grid(recency_decay=[0.3, 0.5, 0.8, 0.95], neighbors=[50, 200, 500]),
        _grid(recency_decay=[0.8], neighbors=[200]),
        "engine item-kNN (cosine, shrinkage), recency-weighted history",
    ),
    "covisit": PeerSpec(
        "covisit",
        _covisit,
        _grid(recency_decay=[0.3, 0.5, 0.8, 0.95], window=[5, 20, 50]),
        _grid(recency_decay=[0.8], window=[20]),
        "engine co-visitation, recency-weighted history",
    ),
    # softmax loss; epochs chosen by early stopping on validation (at most 200, patience 3 after 10 epochs:
    # the first epochs are a plateau; each validation fit at most an hour of training: see SASRecPeer),
    # dropout by the grid
    "sasrec": PeerSpec(
        "sasrec",
        _sasrec,
        _grid(
            loss=["softmax"],
            dropout_rate=[0.1, 0.3, 0.5],
            epochs=[200],
            patience=[3],
            min_epochs=[10],
            budget_seconds=[3600.0],
        ),
        _grid(loss=["softmax"], dropout_rate=[0.2], epochs=[3], patience=[1], budget_seconds=[600.0]),
        "RecTools SASRecModel, softmax loss, on CPU (own virtualenv)",
        early_stopping=True,
    ),
}
#: peers run by ``--peers all`` (pop-all leaks the test set: only on request)
DEFAULT_PEERS = ("pop", "itemknn", "itemknn-recency", "covisit", "ease", "als", "bpr", "sasrec")


def parse_peers(spec: str | Sequence[str] | None) -> list[str]:
    """``"all"``, ``"pop,ease"`` or a list -> validated peer names (empty for None/"none")."""
    if spec is None:
        return []
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    names = [n for n in names if n]
    if names in (["none"], []):
        return []
    if "all" in names:
        names = [*DEFAULT_PEERS, *[n for n in names if n not in DEFAULT_PEERS and n != "all"]]
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        raise ValueError(f"unknown peer(s) {', '.join(unknown)}; valid: all, {', '.join(PEERS)}")
    return list(dict.fromkeys(names))


def parse_grid_override(text: str) -> tuple[str, dict[str, list[Any]]]:
    """``"sasrec:dropout_rate=0.2,0.5;budget_seconds=1800"`` -> ``("sasrec", {"dropout_rate": [0.2, 0.5],
    "budget_seconds": [1800]})``: numbers as numbers, anything else as text."""
    name, sep, body = text.partition(":")
    if not sep or name.strip() not in PEERS:
        raise ValueError(f"--grid {text!r}: expected PEER:KEY=V1,V2[;KEY=...] with PEER one of {', '.join(PEERS)}")
    axes: dict[str, list[Any]] = {}
    for part in filter(None, (p.strip() for p in body.split(";"))):
        key, eq, values = part.partition("=")
        if not eq or not key.strip() or not values.strip():
            raise ValueError(f"--grid {text!r}: {part!r} is not KEY=V1,V2")
        axes[key.strip()] = [_value(v.strip()) for v in values.split(",")]
    return name.strip(), axes


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def override_grid(grid: Sequence[dict[str, Any]], axes: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """``grid`` with the given axes replaced (or added): every setting times every combination, duplicates
    dropped, order kept."""
    out: list[dict[str, Any]] = []
    for setting in grid:
        for combo in _grid(**axes):
            new = {**setting, **combo}
            if new not in out:
                out.append(new)
    return out


def tune_and_test(
    build: Callable[[dict[str, Any]], Recommender],
    grid: Sequence[dict[str, Any]],
    split: LeaveOneOut,
    *,
    metric: str = "ndcg@10",
    k: Sequence[int] = (10, 20),
    item_vectors: np.ndarray | None = None,
    progress: Progress | None = None,
    label: str = "",
    keep_topk: bool = False,
    early_stopping: bool = False,
) -> dict[str, Any]:
    """Try every setting of ``grid`` on validation (skipped for a single setting), then fit the best one
    on ``train_full`` and score it on test. Returns the test result plus ``params``, ``valid`` (metric per
    setting) and ``tune_seconds``.

    ``early_stopping``: the model also gets the validation targets before its validation fit
    (``set_validation(users, items)``) and chooses its epochs on them: ``chosen_params()`` updates the
    setting for the test fit and ``validation_report()`` (the curve) goes into its ``valid`` entry."""
    t0 = time.perf_counter()
    valid: list[dict[str, Any]] = []
    best = dict(grid[0])
    if len(grid) > 1 or early_stopping:
        best_score = -np.inf
        for params in grid:
            if progress:
                progress(f"{label}: validating {params}")
            model = build(dict(params))
            chosen = dict(params)
            if early_stopping:
                model.set_validation(  # type: ignore[attr-defined]
                    split.valid[C.USER_IDX].to_numpy(), split.valid[C.ITEM_IDX].to_numpy()
                )
            r = evaluate_recommender(model, split, stage="valid", k=k)
            entry: dict[str, Any] = {"params": dict(params), metric: r[metric], "fit_seconds": r["fit_seconds"]}
            if early_stopping:
                chosen.update(model.chosen_params())  # type: ignore[attr-defined]
                entry.update(model.validation_report(), chosen=dict(chosen))  # type: ignore[attr-defined]
            valid.append(entry)
            if progress and early_stopping:
                progress(f"{label}: {metric} {r[metric]:.4f} on validation with {chosen}")
            if r[metric] > best_score:
                best_score, best = r[metric], chosen
    tune_seconds = time.perf_counter() - t0
    if progress:
        progress(f"{label}: test with {best}")
    out = evaluate_recommender(build(best), split, stage="test", k=k, item_vectors=item_vectors, keep_topk=keep_topk)
    out.update(params=best, valid=valid, tune_seconds=tune_seconds)
    return out


def run_peer(
    name: str,
    split: LeaveOneOut,
    full: Dataset | None = None,
    *,
    quick: bool = False,
    item_vectors: np.ndarray | None = None,
    progress: Progress | None = None,
    keep_topk: bool = False,
    override: dict[str, list[Any]] | None = None,
) -> dict[str, Any]:
    """Tune one named peer on validation and score it on test (see :func:`tune_and_test`); ``override``
    replaces axes of its grid (:func:`override_grid`)."""
    spec = PEERS[name]
    grid = spec.quick_grid if quick and spec.quick_grid is not None else spec.grid
    if override:
        grid = override_grid(grid, override)
    extra: dict[str, Any] = {}
    if spec.needs_full:
        if full is None:
            raise ValueError(f"peer {name} needs the full dataset")
        extra["counted_on"] = full
        extra["name"] = name

    def build(params: dict[str, Any]) -> Recommender:
        return spec.build(**params, **extra)

    return tune_and_test(
        build,
        grid,
        split,
        item_vectors=item_vectors,
        progress=progress,
        label=name,
        keep_topk=keep_topk,
        early_stopping=spec.early_stopping,
    )


def run_engine(
    split: LeaveOneOut,
    *,
    settings: Settings | None = None,
    item_vectors: np.ndarray | None = None,
    progress: Progress | None = None,
    keep_topk: bool = False,
) -> dict[str, Any]:
    """The engine's default pipeline, fitted on ``train_full`` and scored on test (no validation grid:
    the engine tunes its own fusion and ranker inside ``fit``)."""
    model = default_recommender(settings)
    if progress:
        progress("engine: test")
    out = evaluate_recommender(model, split, stage="test", item_vectors=item_vectors, keep_topk=keep_topk)
    out.update(tune_seconds=0.0, params={})
    return out
