"""A tiny catalog with obvious answers: two topics, users who stay inside one topic, in order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shopsense import columns as C
from shopsense.data.dataset import Dataset

TOPIC_A = ["a0", "a1", "a2", "a3", "a4"]
TOPIC_B = ["b0", "b1", "b2", "b3", "b4"]


def make_dataset() -> Dataset:
    rows = []
    t = 1_700_000_000.0
    for u in range(24):
        topic = TOPIC_A if u % 2 == 0 else TOPIC_B
        start = u % 3
        for step, item in enumerate(topic[start:] + topic[:start]):
            rows.append((f"u{u}", item, C.PURCHASE if step == 2 else C.VIEW, t + 3600 * step + u))
    events = pd.DataFrame(rows, columns=[C.USER, C.ITEM, C.EVENT_TYPE, C.TIMESTAMP])
    products = pd.DataFrame(
        {
            C.ITEM: TOPIC_A + TOPIC_B + ["cold_a"],
            C.TITLE: [f"alpha gadget {i}" for i in range(5)]
            + [f"beta tool {i}" for i in range(5)]
            + ["alpha gadget new"],
            C.CATEGORY: ["Gadgets > Alpha"] * 5 + ["Tools > Beta"] * 5 + ["Gadgets > Alpha"],
        }
    )
    return Dataset.from_frames(events, products)


def topic_vectors(ds: Dataset) -> np.ndarray:
    """Fake text vectors: one axis per topic plus a little per-item noise (L2-normalised)."""
    rng = np.random.default_rng(0)
    v = np.zeros((ds.n_items, 8), np.float32)
    for i, ext in enumerate(ds.items.external_ids):
        v[i, 0 if str(ext).startswith("a") or ext == "cold_a" else 1] = 1.0
    v[:, 2:] = 0.1 * rng.standard_normal((ds.n_items, 6))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def tiny() -> Dataset:
    return make_dataset()


@pytest.fixture(scope="module")
def tiny_vectors(tiny: Dataset) -> np.ndarray:
    return topic_vectors(tiny)
