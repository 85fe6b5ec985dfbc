"""The long-tail pass of the fusion (``tune_for_tail``) on small synthetic held-out shortlists."""

from __future__ import annotations

import numpy as np

from shopsense.ranking.pipeline import TAIL_BIAS, heldout_ndcg, shortlist, tune_for_tail, tune_fusion


def _case(seed: int = 0, n_users: int = 400, n_items: int = 80):
    """Two sources: 'head' finds popular targets, 'rare' finds long-tail targets; every user has seen
    a few items (excluded: -inf in every source), as in the engine's held-out stage."""
    rng = np.random.default_rng(seed)
    tail_item = np.arange(n_items) >= 60  # the 20 rarest items
    targets = np.where(rng.random(n_users) < 0.3, rng.integers(60, n_items, n_users), rng.integers(0, 60, n_users))
    head = rng.normal(size=(n_users, n_items)).astype(np.float32)
    rare = rng.normal(size=(n_users, n_items)).astype(np.float32)
    rows = np.arange(n_users)
    head[rows, targets] += np.where(tail_item[targets], 0.3, 2.5)
    rare[rows, targets] += np.where(tail_item[targets], 2.5, 0.8)
    seen = rng.integers(0, n_items, (n_users, 3))
    seen = np.where(seen == targets[:, None], (seen + 1) % n_items, seen)
    for m in (head, rare):
        m[rows[:, None], seen] = -np.inf
    z, local = shortlist(
        {"head": head, "rare": rare}, targets, 20, {TAIL_BIAS: tail_item.astype(np.float32)}, tail_item
    )
    return z, local, tail_item[targets]


def test_tail_pass_lifts_the_tail_and_keeps_the_floor():
    z, local, tail = _case()
    fusion, _ = tune_fusion({"head": z["head"], "rare": z["rare"]}, local)
    overall0 = heldout_ndcg(fusion.weights, z, local)
    tuned, metrics = tune_for_tail(fusion.weights, z, local, tail, 0.03)
    assert metrics["heldout_tail_ndcg@10"] > metrics["heldout_tail_ndcg@10_before"] + 0.02
    # the reported numbers are what a plain evaluation of the returned weights gives (the pass updates
    # its weighted sum incrementally and holds -inf cells at a finite value: no drift, no nan)
    assert abs(heldout_ndcg(tuned.weights, z, local) - metrics["heldout_ndcg@10_fusion_tail_tuned"]) < 1e-6
    tail_rows = {n: v[tail] for n, v in z.items()}
    assert abs(heldout_ndcg(tuned.weights, tail_rows, local[tail]) - metrics["heldout_tail_ndcg@10"]) < 1e-6
    assert metrics["heldout_ndcg@10_fusion_tail_tuned"] >= 0.97 * overall0 - 1e-9


def test_tail_pass_with_zero_tolerance_gives_up_nothing():
    z, local, tail = _case(seed=1)
    fusion, _ = tune_fusion({"head": z["head"], "rare": z["rare"]}, local)
    overall0 = heldout_ndcg(fusion.weights, z, local)
    tuned, metrics = tune_for_tail(fusion.weights, z, local, tail, 0.0)
    assert heldout_ndcg(tuned.weights, z, local) >= overall0 - 1e-9
    assert metrics["heldout_tail_ndcg@10"] >= metrics["heldout_tail_ndcg@10_before"]


def test_more_tradeoffs_never_end_lower_on_the_tail():
    """The pass keeps the best of its trade-off searches, so adding trade-offs cannot lose tail NDCG."""
    z, local, tail = _case(seed=2)
    fusion, _ = tune_fusion({"head": z["head"], "rare": z["rare"]}, local)
    _, one = tune_for_tail(fusion.weights, z, local, tail, 0.03, tradeoffs=(4.0,))
    _, many = tune_for_tail(fusion.weights, z, local, tail, 0.03)
    assert many["heldout_tail_ndcg@10"] >= one["heldout_tail_ndcg@10"] - 1e-9
