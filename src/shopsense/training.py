"""Training: knowledge store -> Dataset -> engine -> a versioned artifact folder, written atomically.

``train`` writes ``<home>/models/<version>/`` as a :class:`shopsense.versions.Draft` (a temporary
folder, synced and renamed, only then recorded complete and activated), so a crash midway leaves the
served version untouched. ``incremental=True`` warm-starts from the served version: the sequential model
keeps its weights (remapped to the new item index) and is fine-tuned on the users with new events,
co-visitation, item-kNN and popularity are recounted, EASE keeps its matrix (new items have no
neighbours until the next full fit).

:func:`default_recommender` exposes the same engine to offline evaluation
(:class:`shopsense.evaluation.protocol.Recommender`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shopsense import columns as C
from shopsense.config import Settings, load_settings
from shopsense.data.dataset import Dataset
from shopsense.data.idmap import IdMap
from shopsense.exceptions import ShopsenseError
from shopsense.features.tokenize import Tokenizer, detect_language
from shopsense.images import ImageFusion, train_images, version_images
from shopsense.models.base import Histories
from shopsense.models.sequential import SequentialModel
from shopsense.ranking.outcomes import SEARCH
from shopsense.ranking.pipeline import Engine, EngineConfig
from shopsense.recommend import precomputed
from shopsense.store import KnowledgeStore
from shopsense.versions import Draft, encoder_folder, read_manifest, reap_abandoned, served_folder
from shopsense.versions.contents import ENCODER as ENCODER_FOLDER

Progress = Callable[[str], None]
log = logging.getLogger("shopsense.training")


# ---------------------------------------------------------------------------- text vectors
#: titles looked at to decide whether a catalog has text (a majority vote: a sample decides it)
TEXT_SAMPLE = 2000


def has_text(products: pd.DataFrame, language: str = "auto") -> bool:
    """True when most product titles are two words or more (not placeholder ids such as ASINs).

    Words are what the lexical tokenizer of the catalog's language finds (``language="auto"``:
    detected from the titles), not whitespace-separated runs: Chinese titles have no spaces.
    """
    if C.TITLE not in products.columns or not len(products):
        return False
    titles = products[C.TITLE].tolist()
    sample = titles[:: max(1, len(titles) // TEXT_SAMPLE)]
    if language == "auto":
        language = detect_language(sample)
    tokenizer = Tokenizer(language, stem=False, stop_words=False)
    words = [isinstance(t, str) and not t.startswith("item ") and len(tokenizer.tokenize(t)) >= 2 for t in sample]
    return sum(words) / len(sample) > 0.5


def product_vectors(
    products: pd.DataFrame,
    settings: Settings,
    store: KnowledgeStore | None = None,
    *,
    images: ImageFusion | None = None,
) -> np.ndarray | None:
    """Vectors of the catalog rows (None when the catalog has no real text): their text vectors, with
    their images fused in as ``images`` (a version's :class:`~shopsense.images.ImageFusion`) says."""
    if not has_text(products, settings.search.bm25.language):
        return None
    from shopsense.features.embeddings import embed_products
    from shopsense.features.text import TextEncoder

    text = embed_products(products, TextEncoder(settings.encoder), store)
    if images is None or images.weight <= 0:
        return text
    from shopsense.images import catalog_images, fuse_as

    try:
        found = catalog_images(products, settings, store, model=images.model)
    except Exception as e:  # new products still get their text (and a zero image part)
        log.warning("images of %d new products not encoded: %s", len(products), e)
        found = None
    return fuse_as(images, text, found)


# queries encoded ahead by `train` (the most recent distinct ones); older ones are encoded on first use
MAX_TRAIN_QUERIES = 100_000


def query_vectors(queries: pd.DataFrame | None, settings: Settings, store: KnowledgeStore) -> int:
    """Encode the shoppers' recent search queries into the store's embedding cache, so that serving
    (a request reads the user's last queries into their content profile) finds them there instead
    of running the text model per request. Returns how many distinct queries were looked at."""
    if queries is None or not len(queries):
        return 0
    from shopsense.features.text import TextEncoder

    recent = queries.sort_values(C.TIMESTAMP, kind="stable")[C.QUERY].dropna().astype(str)
    texts = list(dict.fromkeys(reversed(recent.to_numpy().tolist())))[:MAX_TRAIN_QUERIES]
    texts = [t for t in texts if t]
    if texts:  # only the ones the store does not hold yet are encoded
        TextEncoder(settings.encoder).use_store(store).encode_queries(texts)
    return len(texts)


# ---------------------------------------------------------------------------- offline protocol
class EngineRecommender:
    """The full engine behind the evaluation protocol: ``fit(train)``, ``recommend_batch(users, k, exclude)``."""

    name = "shopsense"

    def __init__(
        self,
        config: EngineConfig | None = None,
        settings: Settings | None = None,
        progress: Progress | None = None,
        item_vectors: np.ndarray | None = None,
    ):
        self.settings = settings or load_settings()
        self.config = config or self.settings.engine
        self.progress = progress
        self.item_vectors = item_vectors  # precomputed (benchmarks); otherwise encoded from the products
        self.engine: Engine | None = None
        self._hist: Histories | None = None
        self._vectors: tuple[int, np.ndarray | None] | None = None

    def _item_vectors(self, train: Dataset) -> np.ndarray | None:
        if self.item_vectors is not None:
            return self.item_vectors
        key = hash(tuple(train.items.external_ids[:50])) ^ train.n_items
        if self._vectors is None or self._vectors[0] != key:
            store = None
            if self.settings.store is not None or self.settings.home.exists():
                from shopsense.store import open_store

                store = open_store(self.settings.store_url)
            vectors = product_vectors(train.products, self.settings, store)
            if vectors is not None and self.settings.images.active:  # the pictures, as a training fuses them
                vectors, _ = train_images(
                    train, vectors, self.settings, store, None, self.progress or (lambda _m: None)
                )
            self._vectors = (key, vectors)
        return self._vectors[1]

    def fit(self, train: Dataset) -> EngineRecommender:
        self.engine = Engine(self.config).fit(train, self._item_vectors(train), progress=self.progress)
        self._hist = Histories.from_dataset(train)
        return self

    def recommend_batch(self, user_idx: np.ndarray, k: int, exclude: sp.csr_matrix) -> np.ndarray:
        if self.engine is None or self._hist is None:
            raise ShopsenseError("EngineRecommender is not fitted")
        return self.engine.rank(self._hist[np.asarray(user_idx)], k, exclude)[0]


def default_recommender(settings: Settings | None = None) -> EngineRecommender:
    """The full engine pipeline configured by ``settings.engine``, as an evaluation ``Recommender``."""
    return EngineRecommender(settings=settings)


# ---------------------------------------------------------------------------- training runs
@dataclass
class TrainResult:
    version: str
    path: Path
    metrics: dict[str, Any] = field(default_factory=dict)


def new_version() -> str:
    return time.strftime("v%Y%m%d-%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


def train(
    store: KnowledgeStore,
    settings: Settings,
    *,
    incremental: bool = False,
    config: EngineConfig | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Fit every model and the ranker on the store's data and publish a new active version."""
    say = progress or (lambda _m: None)
    t0 = time.perf_counter()
    say("reading events and products from the store")
    ds = Dataset.from_store(store, settings.event_weights)
    if not len(ds.interactions):
        raise ShopsenseError("no item events in the knowledge base: ingest events before training")
    version = new_version()
    Path(settings.models_dir).mkdir(parents=True, exist_ok=True)
    reaped = reap_abandoned(store, settings.home)  # trainings killed before: failed, temp folders gone
    if reaped:
        say(f"marked {len(reaped)} abandoned training(s) failed: {', '.join(reaped)}")
    draft = Draft.start(store, settings.home, version)
    try:
        settings, tuning = version_encoder(store, settings, ds, draft.folder, version, incremental=incremental, say=say)
        say(f"encoding {ds.n_items} product texts")
        vectors = product_vectors(ds.products, settings, store)
        if vectors is not None and ds.queries is not None:
            say(f"encoding the shoppers' search queries (at most {MAX_TRAIN_QUERIES:,}, new ones only)")
            query_vectors(ds.queries, settings, store)
        image_metrics = None
        # images join the text vectors (a catalog without text keeps none); an incremental training
        # keeps the served version's fusion, and fuses none when that one had none (the sequential
        # model's input width must not change under its warm start)
        keep = version_images(served_folder(store, settings.home)) if incremental else None
        if vectors is not None and (keep is not None or not incremental):
            vectors, image_metrics = train_images(ds, vectors, settings, store, draft.folder, say, keep=keep)
        version_search = None
        if encoder_folder(draft.folder) is not None:  # the home's search index holds another encoder's vectors
            say("building the version's search index with its text encoder")
            from shopsense.search import build_from_store

            version_search = build_from_store(store, settings, active_links=False)
        if incremental:
            engine, base = _warm_start(store, settings, ds, vectors, say)
        else:
            cfg = config or settings.engine
            outcomes = logged_outcomes(store, cfg.outcomes.max_requests) if cfg.outcomes is not None else None
            featurer = (
                _search_featurer(store, settings, outcomes, version_search, say)
                if cfg.outcomes is not None and cfg.outcomes.search
                else None
            )
            engine = Engine(cfg).fit(ds, vectors, progress=say, outcomes=outcomes, search_featurer=featurer)
            base = None
        if version_search is not None:
            version_search.save(draft.folder / "search")
        say(f"writing version {version}")
        engine.save(draft.folder / "engine")
        ds.items.save(draft.folder / "items.json")
        lists = precomputed.build(engine, store, settings, ds.items, ds.users.external_ids.tolist(), draft.folder, say)
        metrics = {k: v for k, v in engine.metrics.items() if k != "ranker_importance"}
        metrics.update(
            {
                "train_seconds": time.perf_counter() - t0,
                "n_users": ds.n_users,
                "n_items": ds.n_items,
                "n_interactions": len(ds.interactions),
                "incremental": incremental,
                "base_version": base,
                "encoder": tuning,
                "images": image_metrics,
                **lists,
            }
        )
        metrics = _json_metrics(metrics)
        final = draft.publish(last_event_ts=float(ds.interactions[C.TIMESTAMP].max()), metrics=metrics)
    except BaseException as e:
        draft.fail(e)
        raise
    say(f"version {version} is active")
    return TrainResult(version, final, metrics)


def version_encoder(
    store: KnowledgeStore,
    settings: Settings,
    ds: Dataset,
    folder: Path,
    version: str,
    *,
    incremental: bool,
    say: Progress,
) -> tuple[Settings, dict[str, Any] | None]:
    """The settings the new version encodes with, and what its text encoder is (None: the settings').

    A full training fine-tunes the encoder on the shop's signals into ``folder/encoder`` when
    ``settings.finetune`` allows and the log holds ``min_pairs`` pairs; an incremental one keeps the
    served version's tuned encoder (its item vectors must stay comparable with the new products')."""
    from shopsense.features.finetune import finetune, shop_pairs, tunable_source, tuned_model_id
    from shopsense.versions import encoder_settings

    target = folder / ENCODER_FOLDER
    if incremental:
        served = encoder_folder(served_folder(store, settings.home))
        if served is None:
            return settings, None
        shutil.copytree(served, target, copy_function=_link_or_copy)
        say(f"keeping the served version's text encoder ({tuned_model_id(target)})")
        return encoder_settings(settings, folder), {"model_id": tuned_model_id(target), "kept_from": str(served)}
    cfg = settings.finetune
    source = tunable_source(settings.encoder)
    if not cfg.enabled or source is None or not has_text(ds.products, settings.search.bm25.language):
        return settings, None
    pairs = shop_pairs(
        store.events(include_opted_out=False),
        ds.products,
        template=settings.encoder.template,
        max_pairs=cfg.max_pairs,
        together=cfg.product_pairs,
    )
    if len(pairs) < cfg.min_pairs:
        say(
            f"text encoder not fine-tuned: {len(pairs):,} pairs in the log, {cfg.min_pairs:,} needed ([finetune] min_pairs)"
        )
        return settings, None
    try:
        report = finetune(
            source,
            pairs,
            cfg,
            target,
            model_id=f"tuned:{version}",
            max_seq_length=settings.encoder.max_seq_length,
            progress=say,
        )
    except Exception as e:  # the version is still worth publishing with the settings' encoder
        shutil.rmtree(target, ignore_errors=True)
        say(f"text encoder not fine-tuned: {type(e).__name__}: {e}; the version keeps the settings' encoder")
        return settings, {"failed": f"{type(e).__name__}: {e}"}
    from shopsense.features.onnx_encoder import OWN_EXPORT
    from shopsense.features.text import ONNX_SUFFIX

    if settings.encoder.backend in ONNX_SUFFIX:
        (target / OWN_EXPORT).mkdir()  # the first encoding exports the tuned model into its own folder
    return encoder_settings(settings, folder), asdict(report)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)  # versions are immutable: the same bytes need not be stored twice
    except OSError:
        shutil.copy2(src, dst)


#: impressions read per list the outcome ranker may learn from (lists are at most 50 long in practice;
#: every surface's impressions are read, and the estimator of position bias reads them all)
ROWS_PER_LIST = 50


def logged_outcomes(store: KnowledgeStore, max_lists: int) -> pd.DataFrame | None:
    """The latest logged impressions (enough for ``max_lists`` lists) labelled with the clicks, carts
    and purchases that followed them (None when nothing was logged): what the ranker learns from
    outcomes with (:mod:`shopsense.ranking.outcomes`). A long log is never read whole."""
    from shopsense.data.outcomes import OUTCOMES, label_impressions

    impressions = store.impressions(latest=max_lists * ROWS_PER_LIST)
    if impressions.empty:
        return None
    since = float(pd.to_numeric(impressions[C.TIMESTAMP]).min())
    return label_impressions(impressions, store.events(event_types=list(OUTCOMES), since=since))


def _search_featurer(
    store: KnowledgeStore, settings: Settings, outcomes: pd.DataFrame | None, searcher: Any, say: Progress
) -> Any:
    """The search engine's features of logged search lists (:mod:`shopsense.ranking.joint`), when the
    log holds search lists: the version's own search engine when it has one, else the home's."""
    if outcomes is None or C.SURFACE not in outcomes.columns or not (outcomes[C.SURFACE] == SEARCH).any():
        return None
    if searcher is None:
        from shopsense.search import load_or_build

        say("loading the search index to describe the logged search lists")
        searcher = load_or_build(store, settings, active_links=False)
    return searcher.logged_features()


def _warm_start(
    store: KnowledgeStore, settings: Settings, ds: Dataset, vectors: np.ndarray | None, say: Progress
) -> tuple[Engine, str]:
    """Engine for ``ds`` from the served version: remap, recount cheap sources, fine-tune the sequence model."""
    folder = served_folder(store, settings.home)
    manifest = read_manifest(folder)
    old = Engine.load(folder / "engine")
    old_items = IdMap.load(folder / "items.json")
    since = manifest.last_event_ts
    remap = old_items.to_internal(ds.items.external_ids, strict=False)  # new index -> old index (-1 = new item)
    eng = Engine(old.config)
    eng.fusion = old.fusion
    eng.metrics = {"warm_started_from": manifest.version}
    say("recounting popularity, co-visitation and item-kNN")
    from shopsense.models.popular import PopularModel
    from shopsense.ranking.pipeline import item_side

    eng.n_items = ds.n_items
    eng.popular = PopularModel(old.config.popular).fit(ds)
    eng.side = item_side(ds, eng.popular, vectors)
    for name, m in old.models.items():
        if name in ("covisit", "itemknn", "content", "als"):
            if name == "content" and vectors is None:
                continue
            eng.models[name] = type(m)(m.config).fit(ds, item_vectors=vectors)
        elif name == "ease":
            eng.models[name] = _remap_item_item(m, remap, ds.n_items)
        elif name == "sequential":
            assert isinstance(m, SequentialModel)
            say("fine-tuning the sequential model on users with new events")
            eng.models[name] = m.warm_start(ds, remap, vectors, since)
    # the funnel's parts are learned from the whole log, like the counts above: refitted, not dropped
    # (an incremental version without them served no return items, buy_again or bought_together)
    if old.config.returns is not None:
        from shopsense.ranking.returns import ReturnScorer

        say("learning which of their own items shoppers come back to buy")
        eng.returns = ReturnScorer.fit(ds, old.config.returns, say)
    if old.complements is not None:
        from shopsense.models.complements import Complements
        from shopsense.ranking.return_features import category_codes

        eng.complements = Complements().fit(ds.interactions, ds.n_items, category_codes(ds.products)[0])
    eng.discovery_hit_rate = list(old.discovery_hit_rate)  # per list position, not per item: still holds
    eng.ranker = None  # the ranker's features changed scale: serve the fusion until the next full fit
    return eng, manifest.version


def _remap_item_item(m: Any, remap: np.ndarray, n_items: int) -> Any:
    old = m.sim.tocoo()
    new_of_old = np.full(m.n_items, -1, np.int64)
    known = remap >= 0
    new_of_old[remap[known]] = np.flatnonzero(known)
    keep = (new_of_old[old.row] >= 0) & (new_of_old[old.col] >= 0)
    m.sim = sp.csr_matrix(
        (old.data[keep], (new_of_old[old.row[keep]], new_of_old[old.col[keep]])), shape=(n_items, n_items)
    )
    m.n_items = n_items
    return m


def _json_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(metrics, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))
