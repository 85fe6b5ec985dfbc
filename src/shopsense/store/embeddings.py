"""The embedding cache: vectors of product and query texts per encoder model, keyed by a hash of the
text (product texts) or a salted key (queries, see :mod:`shopsense.store.users`), so a text is
encoded once per model across trainings and processes. A mixin of the knowledge store (role
:class:`~shopsense.store.roles.EmbeddingCache`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import bindparam, select
from sqlalchemy.sql.elements import ClauseElement

from shopsense.store import tables as T
from shopsense.store.base import StoreBase
from shopsense.store.errors import guarded

_COLS = ("model_id", "text_hash", "dim", "vector")


@guarded  # driver errors leave these methods as StoreError / StoreBusyError (store/errors.py)
class EmbeddingRows(StoreBase):
    """Mixin of the knowledge store: the embedding cache."""

    def get_embeddings(self, model_id: str, text_hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors for the given text hashes (missing ones are absent from the result)."""
        e = T.embeddings
        found: dict[str, np.ndarray] = {}
        hashes = list(dict.fromkeys(text_hashes))
        with self.engine.connect() as c:
            if len(hashes) == 1:  # a request's new query: the compiled statement (~0.2 ms less per miss)
                rows = self.statements.fetch(c, "embedding", _one_embedding, {"model": model_id, "hash": hashes[0]})
                return {hashes[0]: np.frombuffer(bytes(rows[0][0]), dtype="<f4")} if rows else {}
            for i in range(0, len(hashes), 500):
                chunk = hashes[i : i + 500]
                q = select(e.c.text_hash, e.c.vector).where(e.c.model_id == model_id, e.c.text_hash.in_(chunk))
                for h, blob in c.execute(q):
                    found[h] = np.frombuffer(bytes(blob), dtype="<f4")
        return found

    def put_embeddings(self, model_id: str, text_hashes: Sequence[str], vectors: np.ndarray) -> int:
        """Cache vectors (one row of ``vectors`` per text hash); ones already cached are kept.
        Returns the number of vectors added."""
        vectors = np.ascontiguousarray(vectors, dtype="<f4")
        rows = [(model_id, h, int(v.shape[0]), v.tobytes()) for h, v in zip(text_hashes, vectors, strict=True)]
        with self.engine.begin() as c:
            return self.statements.insert_many(c, "put_embeddings", self._put_embeddings, _COLS, rows)

    def _put_embeddings(self) -> ClauseElement:
        ins = self.statements.insert("embeddings", _COLS)
        return ins.on_conflict_do_nothing(index_elements=["model_id", "text_hash"])


def _one_embedding() -> ClauseElement:
    e = T.embeddings
    return select(e.c.vector).where(e.c.model_id == bindparam("model"), e.c.text_hash == bindparam("hash"))
