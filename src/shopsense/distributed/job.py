"""``shopsense train --engine spark``: the engine's sparse sources trained on Spark, published as the
same versioned artifact folder the local trainer writes, so ``shopsense serve`` loads it unchanged.

The job reads a Parquet snapshot (written by :func:`shopsense.data.export.export_parquet` into a
work folder inside the version's temporary folder when training from the store; ``snapshot=``
names an existing one, which must be on a path every executor reads) and
never collects events onto the driver: the driver receives per-item sums, neighbour lists and
factors (catalog-sized), and for tuning the fusion at most ``ranker_users`` short histories.

Which sources, and why: the Spark trainer builds what ``[engine] sources = "sparse"`` names and
refuses any other setting, so the local and the Spark trainer always build the same sources and
compare source by source. Popularity and trend, co-visitation, item-kNN and ALS (when on) are
computed on Spark; the product text vectors of the content profile are encoded on the executors
(:mod:`shopsense.distributed.text_vectors`, same encoder and cache keys as the local trainer); the
fusion weights are tuned on the driver as the local trainer tunes them, on a held-out split made on
Spark; the sequential transformer is trained by PyTorch processes that Spark's ``TorchDistributor``
launches on the executors (:mod:`shopsense.distributed.sequential`: data parallel, the windows
written by Spark). Left out, by that one setting, in both trainers: EASE (a dense item x item
inverse), the return scorer, the LambdaRank ranker and the ranker learned from logged outcomes. The
"bought together" table (``Complements``), which the local trainer builds whatever the sources, is
counted on Spark too.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shopsense import columns as C
from shopsense.config import Settings
from shopsense.data.export import export_parquet
from shopsense.distributed.als import fit_als
from shopsense.distributed.complements import fit_complements
from shopsense.distributed.covisit import fit_covisit
from shopsense.distributed.heldout import hold_out, tune
from shopsense.distributed.item_knn import fit_item_knn
from shopsense.distributed.popular import fit_popular
from shopsense.distributed.sequential import fit_sequential
from shopsense.distributed.session import spark_session
from shopsense.distributed.snapshot import SparkSnapshot, first_row
from shopsense.distributed.text_vectors import product_vectors_on_spark
from shopsense.engine_config import EngineConfig
from shopsense.exceptions import ConfigError, ShopsenseError
from shopsense.models import MODELS
from shopsense.models.base import Model
from shopsense.ranking.pipeline import Engine, item_side
from shopsense.recommend import precomputed
from shopsense.store import KnowledgeStore
from shopsense.training import TrainResult, _json_metrics, new_version
from shopsense.versions import Draft, reap_abandoned

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

Progress = Callable[[str], None]
#: the sources the Spark job fits, in the engine's order
FITTERS: dict[str, Callable[..., Model]] = {"itemknn": fit_item_knn, "covisit": fit_covisit, "als": fit_als}
WORK_FOLDER = "spark-work"


def check_config(config: EngineConfig) -> None:
    """A ConfigError unless ``config`` asks for what the Spark trainer builds (see the module docstring)."""
    if config.sources != "sparse":
        raise ConfigError(
            "the Spark trainer builds the sparse sources only (item-kNN, co-visitation, ALS, popularity): set "
            '[engine] sources = "sparse" (or SHOPSENSE_ENGINE__SOURCES=sparse), which the local trainer '
            "honours too, so both build the same sources"
        )


def train_on_spark(
    store: KnowledgeStore,
    settings: Settings,
    *,
    master: str | None = None,
    conf: Mapping[str, str] | None = None,
    snapshot: str | Path | None = None,
    read: str = "parquet",
    spark: SparkSession | None = None,
    progress: Progress | None = None,
    torch_processes: int = 1,
) -> TrainResult:
    """Train the sparse sources on Spark and publish a new active version (see the module docstring).

    ``read``: ``parquet`` (``snapshot``, or the store exported now) or ``jdbc`` (PostgreSQL read by
    the executors, :mod:`shopsense.distributed.jdbc`). ``spark``: a running session to use (left
    running); otherwise one is started on ``master`` with ``conf`` and stopped at the end.
    ``torch_processes``: PyTorch processes training the sequential model together (each needs a
    task slot of its own on the executors)."""
    if torch_processes < 1:
        raise ConfigError(f"torch_processes must be at least 1, got {torch_processes}")
    if read not in ("parquet", "jdbc"):
        raise ConfigError(f"read must be parquet or jdbc, got {read!r}")
    if read == "jdbc":
        from shopsense.distributed.jdbc import jdbc_conf, jdbc_source

        if snapshot is not None:
            raise ConfigError("--snapshot is read with --read parquet; --read jdbc reads the store itself")
        jdbc_source(store.url)  # a store that is not PostgreSQL: refused before anything starts
        conf = jdbc_conf(conf) if spark is None else conf
    config = settings.engine
    check_config(config)
    say = progress or (lambda _m: None)
    t0 = time.perf_counter()
    version = new_version()
    home = Path(settings.home)
    home.mkdir(parents=True, exist_ok=True)
    reaped = reap_abandoned(store, home)
    if reaped:
        say(f"marked {len(reaped)} abandoned training(s) failed: {', '.join(reaped)}")
    own_session = spark is None
    draft = Draft.start(store, home, version)
    # inside the version's temporary folder: on the path the servers read (a cluster's executors see
    # it too), removed before the rename, and reaped with the folder when a training dies hard
    work = draft.folder / WORK_FOLDER
    session: SparkSession | None = None
    try:
        if snapshot is None and read == "parquet":
            say("exporting products and events to Parquet")
            snapshot = work / "snapshot"
            export_parquet(store, snapshot)
        say(f"starting Spark on {master or 'local[2]'}" if own_session else "using the running Spark session")
        session = spark or spark_session(master, conf)
        from pyspark.sql import functions as F

        metrics: dict[str, Any] = {
            "trainer": "spark",
            "spark_version": session.version,
            "spark_master": session.sparkContext.master,
            "spark_driver_memory": session.sparkContext.getConf().get("spark.driver.memory", "1g (Spark's default)"),
        }
        if read == "jdbc":
            from shopsense.distributed.jdbc import from_postgres

            say("reading the events from PostgreSQL over JDBC")
            snap = from_postgres(session, store, settings.event_weights)
        else:
            assert snapshot is not None
            snap = SparkSnapshot.from_parquet(session, snapshot, settings.event_weights)
        counts = first_row(snap.interactions.agg(F.max(C.TIMESTAMP).alias("last"), F.count(F.lit(1)).alias("n")))
        n_interactions = int(counts["n"])
        if not n_interactions:
            raise ShopsenseError("no item events in the knowledge base: ingest events before training")
        n_users = snap.events.select(C.USER).distinct().count()  # every shopper with events, as the local count
        vectors = None
        if settings.images.active:  # the local trainer fuses them; the content sources then differ
            say("product images are not fused by the Spark trainer: its item vectors are the texts' alone")
            metrics["images"] = "not used by the Spark trainer"
        if config.content is not None:
            say("encoding product texts on the executors")
            vectors, metrics["text_vectors"] = product_vectors_on_spark(session, snap.catalog.products, settings, store)
        engine, seconds = fit_engine(snap, config, work, say, item_vectors=vectors, torch_processes=torch_processes)
        # for the precomputed lists: shopper ids reach the driver, never their events (each history is
        # read from the store, as a request reads it)
        users = [r[0] for r in snap.events.select(C.USER).distinct().orderBy(C.USER).toLocalIterator()]
        shutil.rmtree(work, ignore_errors=True)  # the snapshot (when exported here) is read no more
        say(f"writing version {version}")
        engine.save(draft.folder / "engine")
        snap.items.save(draft.folder / "items.json")
        metrics.update({k: v for k, v in engine.metrics.items()})
        metrics.update(precomputed.build(engine, store, settings, snap.items, users, draft.folder, say))
        metrics.update(
            {
                "fit_seconds_by_source": seconds,
                "train_seconds": time.perf_counter() - t0,
                "n_users": n_users,
                "n_items": snap.n_items,
                "n_interactions": n_interactions,
                "incremental": False,
                "base_version": None,
            }
        )
        metrics = _json_metrics(metrics)
        final = draft.publish(last_event_ts=float(counts["last"]), metrics=metrics)
    except BaseException as e:
        draft.fail(e)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if own_session and session is not None:
            session.stop()
    say(f"version {version} is active")
    return TrainResult(version, final, metrics)


def fit_engine(
    snap: SparkSnapshot,
    config: EngineConfig,
    work: Path,
    say: Progress = lambda _m: None,
    item_vectors: np.ndarray | None = None,
    torch_processes: int = 1,
) -> tuple[Engine, dict[str, float]]:
    """The engine of the snapshot: popularity, the held-out stage (sources fitted on the split, the
    fusion tuned), then the sources refitted on all interactions. Returns it and seconds per stage.
    With ``item_vectors`` (the catalog's text vectors) and ``config.content``, the content profile
    is a source too (it reads no interactions: the same model in both stages, as locally). The
    sequential model continues from its held-out weights for ``refit_epochs``, as locally."""
    seconds: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        out = fn()
        seconds[name] = round(time.perf_counter() - t, 3)
        return out

    say("popularity and trend")
    popular = timed("popular", lambda: fit_popular(snap, config.popular))
    names = [n for n in FITTERS if getattr(config, n) is not None]
    say(f"holding out up to {config.ranker_users} users' last interaction")
    held = timed("heldout_split", lambda: hold_out(snap, config, work))
    inner: dict[str, Model] = {}
    for name in names:
        say(f"fitting {name} on the held-out split")
        inner[name] = timed(f"{name}_heldout", partial(_fit, name, snap, config, work, held.inner))
    sequential, seq_config = None, config.sequential
    if seq_config is not None:
        say(f"training the sequential model on the held-out split ({torch_processes} PyTorch process(es))")
        sequential, _ = timed(
            "sequential_heldout",
            lambda: fit_sequential(
                snap,
                seq_config,
                work / "sequential-heldout",
                interactions=held.inner,
                item_vectors=item_vectors,
                processes=torch_processes,
            ),
        )
        inner["sequential"] = sequential
    content = None
    if config.content is not None and item_vectors is not None:  # last, as in the local engine's order
        content = MODELS["content"](config.content).fit(snap.catalog, item_vectors=item_vectors)
        inner["content"] = content
    say(f"tuning the fusion weights on {len(held.targets)} held-out users")
    engine, tuned = timed("tuning", lambda: tune(inner, held, config, snap.n_items))
    engine.metrics.update(tuned)
    engine.popular = popular
    # the ranker's text-similarity features only with the content source, as Engine.fit decides
    engine.side = item_side(snap.catalog, popular, item_vectors if content is not None else None)
    say("products bought together")
    engine.complements = timed("complements", lambda: fit_complements(snap, work / "complements"))
    for name in names:
        say(f"fitting {name} on all interactions")
        engine.models[name] = timed(name, partial(_fit, name, snap, config, work, None))
    if sequential is not None and seq_config is not None and config.refit_epochs > 0:
        say("training the sequential model on every window")
        engine.models["sequential"], windows = timed(
            "sequential",
            lambda: fit_sequential(
                snap,
                seq_config,
                work / "sequential",
                base=sequential,
                epochs=config.refit_epochs,
                processes=torch_processes,
            ),
        )
        engine.metrics["sequential_windows"] = windows
    if content is not None:
        engine.models["content"] = content
    return engine, seconds


def _fit(name: str, snap: SparkSnapshot, config: EngineConfig, work: Path, interactions: DataFrame | None) -> Model:
    model: Model = FITTERS[name](snap, getattr(config, name), work / name, interactions=interactions)
    return model
