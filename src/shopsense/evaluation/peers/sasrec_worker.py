"""Fit RecTools' SASRecModel and write top-k lists. Runs in its OWN virtualenv (RecTools needs numpy<2).

Standalone on purpose: it imports nothing from shopsense, so the engine's environment stays on numpy 2.
Usage: ``python sasrec_worker.py IN.npz OUT.npz``. IN holds ``user``, ``item`` (internal indices, one row
per interaction, chronological), ``k`` (list length) and ``params`` (JSON text). OUT holds ``users``,
``top`` (len(users) x k item indices, -1 padded; viewed items NOT filtered: the caller masks them so the
target is never removed) and ``timings`` (JSON text: fit_seconds, score_seconds, peak_memory_mb, versions).
"""

from __future__ import annotations

import json
import resource
import sys
import time


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
    torch.set_num_threads(int(params.pop("threads", 2)))
    seed = int(params.pop("seed", 0))
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
    t0 = time.perf_counter()
    model = SASRecModel(item_net_block_types=(IdEmbeddingsItemNet,), deterministic=True, **params)
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
    }
    np.savez(dst, users=users, top=top, timings=json.dumps(timings))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
