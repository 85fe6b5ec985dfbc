"""The protocol against the literature: most-popular on Amazon Beauty (S3-Rec split), full ranking.

Published PopRec (S3-Rec paper, counted over all interactions as its code does): HR@10 0.0152,
NDCG@10 0.0068. Counted on the training part only: 0.0136 / 0.0061 with the reference code's tie order.
"""

from __future__ import annotations

import numpy as np
import pytest

from shopsense import columns as C
from shopsense.data.dataset import Dataset
from shopsense.data.splits import leave_one_out
from shopsense.evaluation.peers.popular import MostPopular
from shopsense.evaluation.protocol import evaluate_recommender

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def beauty(shared_data):
    from shopsense.data.public import load_dataset

    d = load_dataset("beauty", shared_data)
    ds = Dataset.from_frames(d.events, d.products)
    return ds, leave_one_out(ds)


def test_popularity_over_all_interactions_is_the_published_poprec(beauty) -> None:
    ds, split = beauty
    assert len(split.test) == 22_363 and ds.n_items == 12_101
    r = evaluate_recommender(MostPopular(counted_on=ds), split, k=(10,), mask_repeated=False)  # as published
    assert round(r["hr@10"], 4) == 0.0152
    assert round(r["ndcg@10"], 4) == 0.0068


def test_popularity_from_the_training_part(beauty) -> None:
    _, split = beauty
    r = evaluate_recommender(MostPopular(), split, k=(10,), mask_repeated=False)  # as the reference masks
    # our deterministic tie order (lower item index first) lands 3 hits under the reference's tie order
    assert r["hr@10"] == pytest.approx(0.0136, abs=0.0002)
    assert round(r["ndcg@10"], 4) == 0.0061


def test_reference_tie_order_gives_exactly_0136_0061(beauty) -> None:
    """The same split and masks, ranked with the S3-Rec evaluation idiom (argpartition over the original
    item ids, then a reversed argsort): exactly the training-part numbers quoted in BENCHMARKS.md."""
    ds, split = beauty
    train = split.train_full
    orig = np.array([int(x) for x in ds.items.external_ids])  # S3-Rec item ids, 1..12101
    pop = np.zeros(orig.max() + 1, dtype=np.float32)
    pop[orig] = train.item_popularity()
    history = train.user_item_matrix(weighted=False, binary=True)
    users = split.test[C.USER_IDX].to_numpy()
    targets = orig[split.test[C.ITEM_IDX].to_numpy()]
    hits, ndcg = [], []
    for s in range(0, len(users), 4096):
        u, t = users[s : s + 4096], targets[s : s + 4096]
        rating = np.tile(pop, (len(u), 1))
        h = history[u]
        rows = np.repeat(np.arange(len(u)), np.diff(h.indptr))
        cols = orig[h.indices]
        keep = cols != t[rows]  # the target is never masked
        rating[rows[keep], cols[keep]] = 0
        ind = np.argpartition(rating, -20)[:, -20:]
        part = rating[np.arange(len(u))[:, None], ind]
        order = np.argsort(part)[:, ::-1]
        top10 = ind[np.arange(len(u))[:, None], order][:, :10]
        hit = top10 == t[:, None]
        rank = np.where(hit.any(axis=1), hit.argmax(axis=1), 99)
        hits.append(rank < 10)
        ndcg.append(np.where(rank < 10, 1 / np.log2(rank + 2.0), 0.0))
    # argpartition's order among tied scores is numpy's implementation detail: numpy 2.4 breaks the ties
    # among the 20 kept items differently from the release the reference ran on (HR 0.01350 here, two
    # users of 22,363 away), so the tie-sensitive HR is checked to within three users
    assert float(np.concatenate(hits).mean()) == pytest.approx(0.0136, abs=0.00015)
    assert round(float(np.concatenate(ndcg).mean()), 4) == 0.0061
