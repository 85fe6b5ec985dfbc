"""The embedding cache: vectors of product and query texts per encoder model, keyed by a hash of the
text (product texts) or a salted key (queries, see :mod:`shopsense.store.users`), so a text is
encoded once per model across trainings and processes. A mixin of the knowledge store."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from shopsense.store import tables as T
from shopsense.store.errors import guarded


@guarded  # driver errors leave these methods as StoreError / StoreBusyError (store/errors.py)
class EmbeddingRows:
    """Mixin of the knowledge store: the embedding cache."""

    engine: Engine

    _executemany: Callable[[Any, str, Sequence[tuple]], int]  # the store's batched insert

    def get_embeddings(self, model_id: str, text_hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors for the given text hashes (missing ones are absent from the result)."""
        e = T.embeddings
        found: dict[str, np.ndarray] = {}
        hashes = list(dict.fromkeys(text_hashes))
        with self.engine.connect() as c:
            for i in range(0, len(hashes), 500):
                chunk = hashes[i : i + 500]
                q = select(e.c.text_hash, e.c.vector).where(e.c.model_id == model_id, e.c.text_hash.in_(chunk))
                for h, blob in c.execute(q):
                    found[h] = np.frombuffer(bytes(blob), dtype="<f4")
        return found

    def put_embeddings(self, model_id: str, text_hashes: Sequence[str], vectors: np.ndarray) -> int:
        vectors = np.ascontiguousarray(vectors, dtype="<f4")
        rows = [(model_id, h, int(v.shape[0]), v.tobytes()) for h, v in zip(text_hashes, vectors, strict=True)]
        sql = (
            "INSERT INTO embeddings (model_id, text_hash, dim, vector) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (model_id, text_hash) DO NOTHING"
        )
        with self.engine.begin() as c:
            return self._executemany(c, sql, rows)
