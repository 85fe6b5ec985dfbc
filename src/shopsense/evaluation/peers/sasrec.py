"""RecTools ``SASRecModel`` as a peer, run in a virtualenv of its own (RecTools needs numpy<2).

:func:`ensure_rectools_venv` creates ``.venv-rectools`` (torch pinned to the CPU build 2.13.0).
:class:`SASRecPeer` writes the training sequences to an ``.npz`` file, runs ``sasrec_worker.py`` with that
environment's Python, and reads back each user's top list (viewed items included), from which it drops
the excluded items at ``recommend_batch`` time (the evaluation protocol's mask, whatever it is).

Early stopping: :meth:`SASRecPeer.set_validation` hands the validation targets to the next fit; the
worker then trains epoch by epoch up to ``epochs``, scores those targets after each epoch (full ranking,
every training item masked), stops after ``patience`` epochs without a better NDCG@10 (not before
``min_epochs``) or at ``budget_seconds`` of training, keeps the best epoch's weights, and reports the
epoch count and the curve (:meth:`SASRecPeer.chosen_params`, :meth:`SASRecPeer.validation_report`): the
test fit then trains that many epochs on the full training part.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from shopsense import columns as C
from shopsense.data.dataset import Dataset
from shopsense.exceptions import NotFittedError, ShopsenseError

WORKER = Path(__file__).with_name("sasrec_worker.py")
RECTOOLS_REQUIREMENTS = ("rectools[torch]==0.19.0", "numpy<2", "torch==2.13.0")


def rectools_python() -> Path:
    """The Python of the RecTools environment: ``SHOPSENSE_RECTOOLS_PYTHON`` or ``.venv-rectools`` in the cwd."""
    env = os.environ.get("SHOPSENSE_RECTOOLS_PYTHON")
    return Path(env) if env else Path.cwd() / ".venv-rectools" / "bin" / "python"


def ensure_rectools_venv(path: Path | str = ".venv-rectools", log: Any = None) -> Path:
    """Create the RecTools virtualenv if missing; returns its Python. Refuses a CUDA torch build."""
    py = Path(path) / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        pip = [str(py), "-m", "pip", "install", "-q"]
        # torch first and pinned: pip takes the CPU wheel from local disk instead of a multi-GB CUDA build
        subprocess.run([*pip, "torch==2.13.0"], check=True, stdout=log, stderr=log)
        subprocess.run([*pip, *RECTOOLS_REQUIREMENTS], check=True, stdout=log, stderr=log)
    check = (
        "import torch, numpy, rectools; assert torch.version.cuda is None, 'CUDA torch'; print(rectools.__version__)"
    )
    subprocess.run([str(py), "-c", check], check=True, stdout=subprocess.DEVNULL)
    return py


class SASRecPeer:
    """SASRec (Kang & McAuley 2018) as implemented by RecTools, trained on CPU."""

    name = "sasrec"

    def __init__(
        self,
        epochs: int = 10,
        n_factors: int = 64,
        n_blocks: int = 2,
        n_heads: int = 2,
        session_max_len: int = 50,
        dropout_rate: float = 0.2,
        loss: str = "softmax",
        n_negatives: int = 1,
        gbce_t: float = 0.2,
        lr: float = 0.001,
        batch_size: int = 128,
        seed: int = 0,
        threads: int | None = None,
        max_excluded: int = 200,
        patience: int = 3,
        min_epochs: int = 0,
        budget_seconds: float | None = None,
    ) -> None:
        self.params = dict(
            epochs=epochs,
            n_factors=n_factors,
            n_blocks=n_blocks,
            n_heads=n_heads,
            session_max_len=session_max_len,
            dropout_rate=dropout_rate,
            loss=loss,
            # sampled losses ("gBCE", "sampled_softmax", "BCE"): negatives per positive, gBCE's calibration
            n_negatives=n_negatives,
            gbce_t=gbce_t,
            lr=lr,
            batch_size=batch_size,
            seed=seed,
            # OMP_NUM_THREADS, else the cores this process may run on (a benchmark pinned to one core must
            # not run two threads)
            threads=threads or int(os.environ.get("OMP_NUM_THREADS") or 0) or len(os.sched_getaffinity(0)),
        )
        self.max_excluded = max_excluded
        self.patience = patience
        self.min_epochs = min_epochs
        self.budget_seconds = budget_seconds
        self.valid: tuple[np.ndarray, np.ndarray] | None = None
        self.lists: np.ndarray | None = None  # (n_users, K) per user index, -1 where none
        self.timings: dict[str, Any] = {}

    def set_validation(self, users: np.ndarray, items: np.ndarray) -> None:
        """Early-stop the next fit on these (user index, held-out item index) pairs."""
        self.valid = (np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64))

    def chosen_params(self) -> dict[str, Any]:
        """After an early-stopped fit: the settings the test fit should use (the best epoch count)."""
        best = self.timings.get("best_epochs")
        return {} if best is None else {"epochs": int(best)}

    def validation_report(self) -> dict[str, Any]:
        """After an early-stopped fit: best epoch, the per-epoch validation curve, why it stopped, budget."""
        keys = ("best_epochs", "best_ndcg@10", "curve", "stopped", "epochs_run", "epoch_seconds", "fit_seconds")
        if "curve" not in self.timings:
            return {}
        out = {key: self.timings[key] for key in keys if key in self.timings}
        out.update(
            max_epochs=self.params["epochs"],
            patience=self.patience,
            min_epochs=self.min_epochs,
            budget_seconds=self.budget_seconds,
        )
        return out

    def fit(self, train: Dataset, k: int = 20) -> Self:
        py = rectools_python()
        if not py.exists():
            raise ShopsenseError(f"RecTools environment not found at {py}: run benchmarks/run.py (it creates it)")
        inter = train.interactions
        user = inter[C.USER_IDX].to_numpy(dtype=np.int64)
        item = inter[C.ITEM_IDX].to_numpy(dtype=np.int64)
        longest = int(np.bincount(user).max()) if len(user) else 0
        # the worker does not filter viewed items (that would hide a repeated target): ask for enough extra
        width = k + min(longest, self.max_excluded)
        with tempfile.TemporaryDirectory(prefix="shopsense-sasrec-") as tmp:
            src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
            arrays: dict[str, Any] = dict(user=user, item=item, k=width)
            params = dict(self.params)
            if self.valid is not None:
                arrays.update(valid_user=self.valid[0], valid_item=self.valid[1])
                params.update(patience=self.patience, min_epochs=self.min_epochs, budget_seconds=self.budget_seconds)
            np.savez(src, **arrays, params=json.dumps(params))
            env = {**os.environ, "PYTHONWARNINGS": "ignore"}
            with subprocess.Popen(
                [str(py), str(WORKER), str(src), str(dst)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            ) as proc:
                assert proc.stderr is not None
                tail: list[str] = []
                for line in proc.stderr:  # the per-epoch validation lines are the progress log
                    if line.startswith('{"epoch"'):
                        print(f"sasrec: {line.rstrip()}", file=sys.stderr, flush=True)
                    tail = [*tail[-200:], line]
            if proc.returncode != 0:
                raise ShopsenseError("SASRec worker failed:\n" + "".join(tail)[-3000:])
            out = np.load(dst)
            users, top = out["users"], out["top"]
            self.timings = json.loads(str(out["timings"]))
        self.lists = np.full((train.n_users, width), -1, dtype=np.int64)
        self.lists[users] = top
        return self

    def recommend_batch(self, user_idx: np.ndarray, k: int, exclude: sp.csr_matrix) -> np.ndarray:
        if self.lists is None:
            raise NotFittedError(f"{self.name}: call fit() first")
        cand = self.lists[user_idx]
        rows = np.repeat(np.arange(len(user_idx)), np.diff(exclude.indptr))
        banned = sp.csr_matrix(
            (np.ones(len(rows), dtype=bool), (rows, exclude.indices)), shape=(len(user_idx), exclude.shape[1])
        )
        from shopsense.evaluation.metrics import relevance_at

        ok = (cand >= 0) & (relevance_at(cand, banned) == 0)
        pos = np.cumsum(ok, axis=1) - 1
        out = np.full((len(user_idx), k), -1, dtype=np.int64)
        r, c = np.nonzero(ok & (pos < k))
        out[r, pos[r, c]] = cand[r, c]
        return out
