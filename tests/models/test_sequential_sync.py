"""The sequential model's hooks for training in several processes (``GradientSync``), without Spark:
every process takes the agreed number of steps, averages its gradients before each one, and all stop
together (the real all-reduce runs in ``tests/distributed/test_equivalence.py``)."""

from __future__ import annotations

import numpy as np
import torch

from shopsense.data.dataset import Dataset
from shopsense.models.sequential import SequentialModel

CONFIG = {"dim": 16, "heads": 1, "layers": 1, "epochs": 3, "batch_size": 4, "dropout": 0.0}


class Recorder:
    """A one-process stand-in: this process may take ``allowed`` steps per epoch; ``stop_after`` epochs."""

    def __init__(self, allowed: int, stop_after: int | None = None) -> None:
        self.allowed, self.stop_after = allowed, stop_after
        self.asked: list[int] = []
        self.averaged = 0
        self.epochs = 0

    def steps(self, batches: int) -> int:
        self.asked.append(batches)
        return min(batches, self.allowed)

    def average_gradients(self, net: torch.nn.Module) -> None:
        assert all(p.grad is not None for p in net.parameters() if p.requires_grad)  # after backward
        self.averaged += 1

    def any(self, flag: bool) -> bool:
        self.epochs += 1
        return flag or (self.stop_after is not None and self.epochs >= self.stop_after)


def _model(tiny: Dataset) -> tuple[SequentialModel, list[np.ndarray]]:
    model = SequentialModel(CONFIG)
    model.n_items = tiny.n_items
    model._build(tiny.n_items, None)
    return model, [s + 1 for s in tiny.sequences() if len(s) >= 2]


def test_every_process_takes_the_agreed_steps_and_averages_before_each(tiny: Dataset):
    model, seqs = _model(tiny)
    sync = Recorder(allowed=2)
    model.train_sequences(seqs, 3, sync=sync)
    assert len(sync.asked) == 3 and all(n > 2 for n in sync.asked)  # this process had more batches
    assert sync.averaged == 3 * 2  # but took the agreed 2 steps per epoch, each averaged
    assert len(model.history) == 3


def test_processes_stop_together_when_any_one_is_out_of_time(tiny: Dataset):
    model, seqs = _model(tiny)
    sync = Recorder(allowed=100, stop_after=1)  # another process ran out of time after the first epoch
    model.train_sequences(seqs, 5, sync=sync)
    assert len(model.history) == 1


def test_without_a_sync_the_training_is_unchanged(tiny: Dataset):
    a, seqs = _model(tiny)
    b, _ = _model(tiny)
    a.train_sequences(seqs, 2)
    b.train_sequences(seqs, 2, sync=Recorder(allowed=10_000))  # allows every batch: the same steps
    np.testing.assert_allclose(a.item_table(), b.item_table(), rtol=1e-6, atol=1e-6)
