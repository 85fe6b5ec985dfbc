"""A trained :class:`~shopsense.ranking.pipeline.Engine` on disk: ``engine.json`` (its settings,
sources, fusion weights, metrics and which optional parts it has) and one folder per part.

The version folder (:mod:`shopsense.versions`) holds it under ``engine/``; the server reads it with
:func:`load_into`, and search reads only the joint ranker with :func:`load_search_ranking`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shopsense.artifacts import read_params
from shopsense.engine_config import EngineConfig
from shopsense.models import MODELS
from shopsense.models.complements import Complements
from shopsense.models.popular import PopularModel
from shopsense.ranking import candidates as cand
from shopsense.ranking.ranker import LambdaRanker, WeightedFusion
from shopsense.ranking.returns import ReturnScorer

if TYPE_CHECKING:
    from shopsense.ranking.pipeline import Engine

#: layout of a saved engine (engine.json + one folder per model); raise it when that changes
ENGINE_FORMAT = 1
RETRAIN = "retrain with `shopsense train`"


def save(engine: Engine, folder: Path) -> Path:
    """Write every part of a fitted ``engine`` and ``engine.json`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    assert engine.popular is not None and engine.side is not None
    engine.popular.save(folder / "popular")
    for name, m in engine.models.items():
        m.save(folder / name)
    np.save(folder / "side_brand.npy", engine.side.brand)
    if engine.ranker is not None:
        engine.ranker.save(folder)
    if engine.search_ranker is not None:
        (folder / "search_ranker").mkdir(exist_ok=True)
        engine.search_ranker.save(folder / "search_ranker")
    if engine.returns is not None:
        engine.returns.save(folder / "returns")
    if engine.complements is not None:
        engine.complements.save(folder / "complements")
    meta = {
        "format_version": ENGINE_FORMAT,
        "config": engine.config.model_dump(mode="json"),
        "sources": list(engine.models),
        "fusion_weights": engine.fusion.weights,
        "metrics": _jsonable(engine.metrics),
        "n_items": engine.n_items,
        "has_ranker": engine.ranker is not None,
        "has_search_ranker": engine.search_ranker is not None,
        "has_returns": engine.returns is not None,
        "has_complements": engine.complements is not None,
        "discovery_hit_rate": engine.discovery_hit_rate,
    }
    (folder / "engine.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return folder


def load_into(engine: Engine, folder: Path) -> Engine:
    """Fill a new ``engine`` from a folder written by :func:`save`; IncompatibleFormatError (retrain)
    for another format."""
    meta = _meta(folder)
    engine.config = EngineConfig(**meta["config"])
    engine.n_items = int(meta["n_items"])
    engine.popular = PopularModel.load(folder / "popular")
    engine.models = {name: MODELS[name].load(folder / name) for name in meta["sources"]}
    content = engine.models.get("content")
    engine.side = _saved_side(folder, engine.popular, getattr(content, "vectors", None))
    engine.fusion = WeightedFusion(meta["fusion_weights"])
    engine.ranker = LambdaRanker.load(folder) if meta["has_ranker"] else None
    engine.search_ranker = LambdaRanker.load(folder / "search_ranker") if meta.get("has_search_ranker") else None
    engine.metrics = meta.get("metrics", {})
    engine.returns = ReturnScorer.load(folder / "returns") if meta.get("has_returns") else None
    engine.complements = Complements.load(folder / "complements") if meta.get("has_complements") else None
    engine.discovery_hit_rate = [float(x) for x in meta.get("discovery_hit_rate", [])]
    return engine


def load_search_ranking(folder: Path) -> tuple[LambdaRanker, cand.ItemSide] | None:
    """The joint ranker search serves and the item data it reads, without loading the sources (None
    when the engine has no search ranker)."""
    meta = _meta(folder)
    if not meta.get("has_search_ranker"):
        return None
    content = MODELS["content"].load(folder / "content") if "content" in meta["sources"] else None
    side = _saved_side(folder, PopularModel.load(folder / "popular"), getattr(content, "vectors", None))
    return LambdaRanker.load(folder / "search_ranker"), side


def _meta(folder: Path) -> dict[str, Any]:
    return read_params(folder / "engine.json", what=f"engine at {folder}", format_version=ENGINE_FORMAT, remedy=RETRAIN)


def _saved_side(folder: Path, popular: PopularModel, vectors: np.ndarray | None) -> cand.ItemSide:
    """The item data a saved engine's features read (see :func:`shopsense.ranking.pipeline.item_side`)."""
    return cand.ItemSide(
        popularity=popular.counts,
        trend=popular.trend,
        category=popular.category,
        brand=np.load(folder / "side_brand.npy"),
        vectors=vectors,
    )


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x
