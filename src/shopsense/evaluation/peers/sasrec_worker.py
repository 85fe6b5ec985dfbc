"""Fit RecTools' SASRecModel and write top-k lists. Runs in its OWN virtualenv (RecTools needs numpy<2).

Standalone on purpose: it imports nothing from shopsense, so the engine's environment stays on numpy 2.
Usage: ``python sasrec_worker.py IN.npz OUT.npz``. IN holds ``user``, ``item`` (internal indices, one row
per interaction, chronological), ``k`` (list length) and ``params`` (JSON text: the ``SASRecModel``
arguments plus ``threads``, ``seed``, and for early stopping ``patience``, ``min_epochs`` and
``budget_seconds``), and optionally ``valid_user``, ``valid_item`` (one held-out item per validation user).

Without validation targets the model trains ``epochs`` epochs. With them it trains one epoch at a time
(``fit_partial``: the optimizer state carries on) up to ``epochs``, scores the validation targets after
each epoch with full ranking, every training item of the user masked (a repeated target too: protocol 2),
stops after ``patience`` epochs without a better NDCG@10 (not before ``min_epochs``: the first epochs sit on
a plateau near popularity before the model takes off, which stopped a run at epoch 5) or when the next
epoch would pass ``budget_seconds`` of training, and restores the weights of the best epoch before
writing the lists.

OUT holds ``users``, ``top`` (len(users) x k item indices, -1 padded; viewed items NOT filtered: the
caller masks them so the protocol is the caller's) and ``timings`` (JSON text: fit_seconds,
score_seconds, peak_memory_mb, versions; with validation also best_epochs, best_ndcg@10, curve (one
entry per epoch: epoch, ndcg@10, hr@10, train_seconds, valid_seconds), stopped (why) and epoch_seconds).
"""

from __future__ import annotations

import copy
import json
import resource
import sys
import time
from typing import Any


def _validation_scores(model: Any, dataset: Any, users: Any, targets: Any, k: int = 10) -> tuple[float, float]:
    """NDCG@k and HR@k of ``targets`` over ``users`` (missing users count as misses), every item of the
    user's training history masked (``filter_viewed``: a repeated target is masked too)."""
    import numpy as np
    from rectools import Columns

    reco = model.recommend(users=users, dataset=dataset, k=k, filter_viewed=True, on_unsupported_targets="ignore")
    row = np.searchsorted(users, reco[Columns.User].to_numpy())
    hit = reco[Columns.Item].to_numpy() == targets[row]
    rank = reco[Columns.Rank].to_numpy()[hit].astype(np.float64)  # 1-based
    n = len(users)
    return float((1.0 / np.log2(rank + 1.0)).sum() / n), float(len(rank) / n)


def main(src: str, dst: str) -> None:
    import numpy as np
    import pandas as pd
    import torch
    from rectools import Columns
    from rectools.dataset import Dataset
    from rectools.models import SASRecModel
    from rectools.models.nn.item_net import IdEmbeddingsItemNet

    data = np.load(src)
    params = json.loads(str(data["params"]))
    k = int(data["k"])
    torch.set_num_threads(int(params.pop("threads", 1)))
    seed = int(params.pop("seed", 0))
    patience = int(params.pop("patience", 3))
    min_epochs = int(params.pop("min_epochs", 0))
    budget = params.pop("budget_seconds", None)
    torch.manual_seed(seed)
    np.random.seed(seed)
    user, item = data["user"], data["item"]
    # the row position is the time: it keeps the chronology exactly, ties included
    frame = pd.DataFrame(
        {
            Columns.User: user,
            Columns.Item: item,
            Columns.Weight: np.ones(len(user), dtype=np.float32),
            Columns.Datetime: pd.to_datetime(np.arange(len(user)), unit="s"),
        }
    )
    dataset = Dataset.construct(frame)
    model = SASRecModel(item_net_block_types=(IdEmbeddingsItemNet,), deterministic=True, **params)
    extra: dict[str, Any] = {}
    t0 = time.perf_counter()
    if "valid_user" in data.files:
        order = np.argsort(data["valid_user"], kind="stable")
        v_users, v_items = data["valid_user"][order], data["valid_item"][order]
        curve: list[dict[str, Any]] = []
        best, best_state, since, stopped = -1.0, None, 0, "max_epochs"
        train_total = 0.0
        for epoch in range(1, int(params["epochs"]) + 1):
            e0 = time.perf_counter()
            model.fit_partial(dataset, min_epochs=1, max_epochs=1)
            e1 = time.perf_counter()
            ndcg, hr = _validation_scores(model, dataset, v_users, v_items)
            e2 = time.perf_counter()
            train_total += e1 - e0
            curve.append(
                {"epoch": epoch, "ndcg@10": ndcg, "hr@10": hr, "train_seconds": e1 - e0, "valid_seconds": e2 - e1}
            )
            print(json.dumps(curve[-1]), file=sys.stderr, flush=True)
            if ndcg > best:
                best, since = ndcg, 0
                best_state = copy.deepcopy(model.torch_model.state_dict())
            else:
                since += 1
            if since >= patience and epoch >= min_epochs:
                stopped = f"no better NDCG@10 in {patience} epochs"
                break
            if budget is not None and train_total + (e1 - e0) > float(budget):
                stopped = f"budget {float(budget):.0f}s"
                break
        if best_state is not None:
            model.torch_model.load_state_dict(best_state)
        best_epoch = max(curve, key=lambda c: c["ndcg@10"])["epoch"]
        extra = {
            "best_epochs": best_epoch,
            "best_ndcg@10": best,
            "curve": curve,
            "stopped": stopped,
            "epochs_run": len(curve),
            "epoch_seconds": train_total / len(curve),
            "patience": patience,
            "min_epochs": min_epochs,
            "budget_seconds": budget,
        }
    else:
        model.fit(dataset)
    t1 = time.perf_counter()
    users = np.unique(user)
    reco = model.recommend(users=users, dataset=dataset, k=k, filter_viewed=False, on_unsupported_targets="ignore")
    t2 = time.perf_counter()
    row = pd.Index(users).get_indexer(reco[Columns.User].to_numpy())
    rank = reco[Columns.Rank].to_numpy().astype(np.int64) - 1
    top = np.full((len(users), k), -1, dtype=np.int64)
    ok = (row >= 0) & (rank < k)
    top[row[ok], rank[ok]] = reco[Columns.Item].to_numpy().astype(np.int64)[ok]
    import rectools

    timings = {
        "fit_seconds": t1 - t0,
        "score_seconds": t2 - t1,
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "versions": {"rectools": rectools.__version__, "torch": torch.__version__, "numpy": np.__version__},
        "loss": model.loss,
        **extra,
    }
    np.savez(dst, users=users, top=top, timings=json.dumps(timings))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
