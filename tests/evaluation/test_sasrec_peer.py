"""SASRecPeer end to end in the RecTools virtualenv: early stopping on validation, the protocol's contract.

Skipped where the environment is absent (CI does not create it; ``benchmarks/run.py --peers sasrec`` does).
"""

from __future__ import annotations

import numpy as np
import pytest

from shopsense import columns as C
from shopsense.evaluation.peers.sasrec import SASRecPeer, rectools_python
from shopsense.evaluation.protocol import evaluate_recommender

from .test_peers import _split

pytestmark = pytest.mark.skipif(not rectools_python().exists(), reason="no RecTools environment (.venv-rectools)")


def _small(**kw) -> SASRecPeer:  # type: ignore[no-untyped-def]
    return SASRecPeer(n_factors=8, n_heads=1, n_blocks=1, session_max_len=5, batch_size=16, threads=1, **kw)


def test_early_stopping_reports_the_curve_and_keeps_the_best_epoch() -> None:
    split = _split()
    model = _small(epochs=4, patience=1, min_epochs=3)
    model.set_validation(split.valid[C.USER_IDX].to_numpy(), split.valid[C.ITEM_IDX].to_numpy())
    r = evaluate_recommender(model, split, stage="valid", k=(10,), strict=True)
    rep = model.validation_report()
    curve = rep["curve"]
    assert 3 <= len(curve) <= 4 and [c["epoch"] for c in curve] == list(range(1, len(curve) + 1))
    best = max(curve, key=lambda c: c["ndcg@10"])
    assert rep["best_epochs"] == best["epoch"] and model.chosen_params() == {"epochs": best["epoch"]}
    assert (
        rep["max_epochs"] == 4
        and rep["patience"] == 1
        and rep["min_epochs"] == 3
        and model.timings["loss"] == "softmax"
    )
    # the worker's own validation score (history masked) is the protocol's, for the restored best epoch
    assert r["ndcg@10"] == pytest.approx(best["ndcg@10"], abs=1e-9)


def test_plain_fit_honours_the_protocol() -> None:
    split = _split()
    model = _small(epochs=2)
    r = evaluate_recommender(model, split, k=(3, 5), keep_topk=True, strict=True)  # raises on an excluded item
    assert r["topk"].shape == (40, 5) and "curve" not in model.timings and model.validation_report() == {}
    assert np.all(r["topk"][:, 0] >= 0)
