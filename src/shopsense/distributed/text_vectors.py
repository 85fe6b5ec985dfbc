"""Product text vectors encoded on the executors (``mapInPandas``), with the local trainer's encoder
and cache keys, so the content source trains on Spark as it does locally.

The driver holds the catalog (catalog-sized, as :class:`~shopsense.distributed.snapshot.SparkSnapshot`
keeps it) and the store's embedding cache: it looks up which product texts the cache lacks for the
settings' encoder (the key is the encoder's ``model_id`` and the text's hash, the ones
:func:`~shopsense.features.embeddings.embed_products` uses), sends only those texts to the executors,
where each task loads the encoder once and encodes its partition in batches on one thread, and writes
the vectors that come back into the cache. The catalog's vectors are then read from the cache exactly
as the local trainer reads them: both trainers' content sources see the same vectors (a test).

What crosses to the driver is one vector per new product text: catalog-sized, never events.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shopsense.config import Settings
from shopsense.features.embeddings import embed_products
from shopsense.features.product_text import product_texts, text_hash
from shopsense.store import KnowledgeStore

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: texts per executor task (one model load each): large enough that loading is a small share
TEXTS_PER_TASK = 2000


def encode_on_executors(
    spark: SparkSession, texts: dict[str, str], encoder_config: dict[str, Any], partitions: int | None = None
) -> dict[str, np.ndarray]:
    """``{hash: text}`` -> ``{hash: vector}``, encoded by the executors with the encoder of
    ``encoder_config`` (an :class:`~shopsense.config.EncoderConfig` as a dict)."""
    if not texts:
        return {}
    n = partitions or max(1, min(spark.sparkContext.defaultParallelism * 4, -(-len(texts) // TEXTS_PER_TASK)))
    frame = spark.createDataFrame(pd.DataFrame({"hash": list(texts), "text": list(texts.values())}))

    def encode(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        # runs on an executor: one encoder per task, one thread (a task has one core)
        from threadpoolctl import threadpool_limits

        from shopsense.config import EncoderConfig
        from shopsense.features.text import TextEncoder

        threadpool_limits(1)  # ONNX Runtime runs on one thread already; BLAS and OpenMP pools too
        encoder = TextEncoder(EncoderConfig(**encoder_config))
        if encoder.backend == "sentence-transformers":
            import torch

            torch.set_num_threads(1)
        for batch in batches:
            vectors = encoder.encode(batch["text"].tolist())
            yield pd.DataFrame({"hash": batch["hash"].to_numpy(), "vector": list(vectors.astype(np.float32))})

    encoded = frame.repartition(n).mapInPandas(encode, "hash string, vector array<float>")  # type: ignore[arg-type]
    out: pd.DataFrame = encoded.toPandas()
    return {h: np.asarray(v, dtype=np.float32) for h, v in zip(out["hash"], out["vector"], strict=True)}


def product_vectors_on_spark(
    spark: SparkSession, products: pd.DataFrame, settings: Settings, store: KnowledgeStore
) -> tuple[np.ndarray | None, dict[str, int]]:
    """The catalog's text vectors (None when it has no real text, as locally), the missing ones encoded
    on the executors and cached in ``store``; with counts of texts found in the cache and encoded."""
    from shopsense.features.text import TextEncoder
    from shopsense.training import has_text

    if not has_text(products, settings.search.bm25.language):
        return None, {"texts": 0, "cached": 0, "encoded": 0}
    encoder = TextEncoder(settings.encoder)
    texts = {text_hash(t): t for t in product_texts(products, settings.encoder.template)}
    cached = store.get_embeddings(encoder.model_id, list(texts))
    todo = {h: t for h, t in texts.items() if h not in cached}
    new = encode_on_executors(spark, todo, settings.encoder.model_dump())
    missing = set(todo) - set(new)
    if missing:  # an executor that lost rows must not leave the driver to encode them unseen
        raise RuntimeError(f"the executors returned no vector for {len(missing)} product text(s)")
    if new:
        store.put_embeddings(encoder.model_id, list(new), np.stack(list(new.values())))
    counts = {"texts": len(texts), "cached": len(cached), "encoded": len(new)}
    # every vector is in the cache now: this reads them in catalog order, as the local trainer does
    return embed_products(products, encoder, store), counts
