from __future__ import annotations

import numpy as np
import pandas as pd

from shopsense.features.embeddings import embed_products
from shopsense.features.text import TextEncoder
from shopsense.store import KnowledgeStore


class CountingEncoder:
    """Wraps the real encoder and records every text it is asked to encode."""

    def __init__(self, inner: TextEncoder) -> None:
        self.inner = inner
        self.config = inner.config
        self.calls: list[list[str]] = []

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(self, texts, **kw):  # noqa: ANN001, ANN201
        self.calls.append(list(texts))
        return self.inner.encode(texts, **kw)


def _catalog() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ["k1", "m1", "m2", "c1"],
            "title": ["Electric kettle", "Coffee mug", "Coffee mug", "USB cable"],
            "brand": ["Acme", "Mugsy", "Mugsy", None],
        }
    )


def test_cache_encodes_only_changed_text(sqlite_store: KnowledgeStore, minilm: TextEncoder) -> None:
    enc = CountingEncoder(minilm)
    cat = _catalog()
    first = embed_products(cat, enc, sqlite_store)
    assert first.shape == (4, 384)
    assert len(enc.calls) == 1 and len(enc.calls[0]) == 3  # the two identical mugs encode once
    np.testing.assert_allclose(first[1], first[2])

    again = embed_products(cat, enc, sqlite_store)
    assert len(enc.calls) == 1  # nothing changed: all from the cache
    np.testing.assert_allclose(again, first, atol=1e-6)

    changed = cat.copy()
    changed.loc[3, "title"] = "USB-C cable, braided"
    third = embed_products(changed, enc, sqlite_store)
    assert enc.calls[-1] == ["USB-C cable, braided"]  # only the changed product re-encodes
    np.testing.assert_allclose(third[:3], first[:3], atol=1e-6)
    assert float(third[3] @ first[3]) < 0.999


def test_without_store_encodes_everything_once(minilm: TextEncoder) -> None:
    enc = CountingEncoder(minilm)
    v = embed_products(_catalog(), enc)
    assert v.shape == (4, 384) and sum(len(c) for c in enc.calls) == 3


def test_other_model_id_does_not_share_cache(sqlite_store: KnowledgeStore, minilm: TextEncoder) -> None:
    enc = CountingEncoder(minilm)
    embed_products(_catalog(), enc, sqlite_store)
    assert sqlite_store.get_embeddings("some-other-model", ["x"]) == {}
