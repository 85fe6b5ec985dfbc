"""The sequential transformer trained through Spark's launcher for PyTorch (``TorchDistributor``).

Spark writes each shopper's training window (the last ``max_len + 1`` items, in time order, as the
local trainer cuts them) to Parquet files in the job's work folder; ``TorchDistributor`` starts
``processes`` training processes (barrier tasks on the executors, or processes on the driver's
machine with ``local_mode``), each reads its share of the files, and they train one model data
parallel: the same initial weights (the model's seed), each process a ``1/processes`` share of the
batch, gradients averaged over the processes (``torch.distributed`` with the gloo backend: CPUs)
before each step, and as many steps per epoch as the process with the fewest batches has. The first process saves the model in the model's own file
format, which the driver loads. Events never reach the driver; the windows reach the training
processes only.

With one process the training is the local trainer's: the windows come in the same order (the
shoppers' first events, as the local dataset numbers them) and the model is seeded the same. The
held-out stage and the refit on every window run as two launches, as the local trainer's two calls.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from shopsense import columns as C
from shopsense.data.export import SEQ
from shopsense.engine_config import SequentialConfig
from shopsense.models.sequential import SequentialModel

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from torch import nn

    from shopsense.distributed.snapshot import SparkSnapshot

#: Parquet files of windows per training process (each reads every processes-th file)
FILES_PER_PROCESS = 2


def write_windows(snap: SparkSnapshot, interactions: DataFrame, max_len: int, folder: Path, files: int) -> int:
    """Each shopper's last ``max_len + 1`` items (1-based ids, oldest first; shoppers with at least two),
    with the moment of their first event (the local dataset's user order), as ``files`` Parquet files.
    Returns the number of windows."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    newest_first = Window.partitionBy(C.USER).orderBy(F.col(C.TIMESTAMP).desc(), F.col(SEQ).desc())
    last = interactions.withColumn("_back", F.row_number().over(newest_first)).where(F.col("_back") <= max_len + 1)
    windows = (
        last.groupBy(C.USER)
        .agg(F.sort_array(F.collect_list(F.struct(C.TIMESTAMP, SEQ, C.ITEM_IDX))).alias("events"))
        .where(F.size("events") >= 2)
        .select(C.USER, F.transform("events", lambda e: e[C.ITEM_IDX] + 1).alias("items"))
    )
    first = snap.events.groupBy(C.USER).agg(F.min(F.struct(C.TIMESTAMP, SEQ)).alias("first"))
    out = windows.join(first, C.USER).select(
        F.col(f"first.{C.TIMESTAMP}").alias("first_ts"), F.col(f"first.{SEQ}").alias("first_seq"), "items"
    )
    out.repartition(files).write.mode("overwrite").parquet(str(folder))
    return int(out.count())


def fit_sequential(
    snap: SparkSnapshot,
    config: SequentialConfig,
    work: Path,
    *,
    interactions: DataFrame | None = None,
    item_vectors: np.ndarray | None = None,
    base: SequentialModel | None = None,
    epochs: int | None = None,
    processes: int = 1,
    local_mode: bool = False,
) -> tuple[SequentialModel, int]:
    """Train the sequential model on ``interactions`` (default: every one) with ``processes`` PyTorch
    processes launched by Spark. ``base``: continue from this model's weights (the refit) for
    ``epochs`` (default ``config.epochs``) instead of starting from ``item_vectors``. Returns the
    model and the number of shoppers' windows it learned from."""
    from pyspark.ml.torch.distributor import TorchDistributor

    work.mkdir(parents=True, exist_ok=True)
    windows = work / "windows"
    source = snap.interactions if interactions is None else interactions
    n = write_windows(snap, source, config.max_len, windows, max(1, processes * FILES_PER_PROCESS))
    start = vectors = None
    if base is not None:
        start = str(base.save(work / "base"))
    elif config.use_text and item_vectors is not None:
        vectors = str(work / "vectors.npy")
        np.save(vectors, np.asarray(item_vectors, np.float32), allow_pickle=False)
    out = work / "model"
    TorchDistributor(num_processes=processes, local_mode=local_mode, use_gpu=False).run(
        train_process,
        str(windows),
        snap.n_items,
        json.dumps(config.model_dump(mode="json")),
        vectors,
        start,
        str(out),
        config.epochs if epochs is None else epochs,
    )
    return SequentialModel.load(out), n


def train_process(
    windows: str, n_items: int, config: str, vectors: str | None, start: str | None, out: str, epochs: int
) -> None:
    """One training process (run by ``TorchDistributor``, which sets the rank and world size)."""
    import pandas as pd
    import pyarrow.parquet as pq
    import torch.distributed as dist

    dist.init_process_group("gloo")
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        files = sorted(str(f) for f in Path(windows).glob("*.parquet"))[rank::world]
        frame = (
            pq.read_table(files).to_pandas() if files else pd.DataFrame({"first_ts": [], "first_seq": [], "items": []})
        )
        frame = frame.sort_values(["first_ts", "first_seq"], kind="stable")
        seqs = [np.asarray(x, np.int64) for x in frame["items"]]
        cfg = SequentialConfig(**json.loads(config))
        if start is not None:
            model = SequentialModel.load(start)
        else:
            model = SequentialModel(cfg)
            model.n_items = n_items
            model._build(n_items, np.load(vectors, allow_pickle=False) if vectors else None)
            model.fitted = True
        config_as_set = model.config
        if world > 1:
            # each process a share of the batch: the steps and the samples per step stay the local
            # trainer's (with the whole batch each, an epoch had 1/world of the steps: less learned)
            model.config = config_as_set.model_copy(update={"batch_size": max(1, config_as_set.batch_size // world)})
            model.train_sequences(seqs, epochs, sync=AllReduce(world))
            model.config = config_as_set
        else:
            model.train_sequences(seqs, epochs)
        if rank == 0:
            model.save(out)
        dist.barrier()  # the model is written before any process reports success
    finally:
        dist.destroy_process_group()


class AllReduce:
    """:class:`~shopsense.models.sequential.GradientSync` over ``torch.distributed`` (every process calls
    each method in the same order)."""

    def __init__(self, world: int) -> None:
        self.world = world

    def steps(self, batches: int) -> int:
        return int(self._reduce(float(batches), "min"))

    def average_gradients(self, net: nn.Module) -> None:
        import torch
        import torch.distributed as dist

        params = [p for p in net.parameters() if p.requires_grad]
        for p in params:  # every process sends every parameter, in the same order
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in params])  # type: ignore[union-attr]  # one message a step
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for p in params:
            assert p.grad is not None
            p.grad.copy_(flat[offset : offset + p.numel()].view_as(p))
            offset += p.numel()

    def any(self, flag: bool) -> bool:
        return self._reduce(1.0 if flag else 0.0, "max") > 0

    @staticmethod
    def _reduce(value: float, op: str) -> float:
        import torch
        import torch.distributed as dist

        t = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MIN if op == "min" else dist.ReduceOp.MAX)
        return float(t.item())
