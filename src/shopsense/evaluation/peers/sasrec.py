"""RecTools ``SASRecModel`` as a peer, run in a virtualenv of its own (RecTools needs numpy<2).

:func:`ensure_rectools_venv` creates ``.venv-rectools`` (torch pinned to the CPU build 2.13.0).
:class:`SASRecPeer` writes the training sequences to an ``.npz`` file, runs ``sasrec_worker.py`` with that
environment's Python, and reads back each user's top list (viewed items included), from which it drops
the excluded items at ``recommend_batch`` time so the protocol's "never mask the target" holds.
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
        lr: float = 0.001,
        batch_size: int = 128,
        seed: int = 0,
        threads: int | None = None,
        max_excluded: int = 200,
    ) -> None:
        self.params = dict(
            epochs=epochs,
            n_factors=n_factors,
            n_blocks=n_blocks,
            n_heads=n_heads,
            session_max_len=session_max_len,
            dropout_rate=dropout_rate,
            lr=lr,
            batch_size=batch_size,
            seed=seed,
            # the cores this process may run on (a benchmark pinned to one core must not run two threads)
            threads=threads or len(os.sched_getaffinity(0)),
        )
        self.max_excluded = max_excluded
        self.lists: np.ndarray | None = None  # (n_users, K) per user index, -1 where none
        self.timings: dict[str, Any] = {}

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
            np.savez(src, user=user, item=item, k=width, params=json.dumps(self.params))
            env = {**os.environ, "PYTHONWARNINGS": "ignore"}
            done = subprocess.run([str(py), str(WORKER), str(src), str(dst)], capture_output=True, text=True, env=env)
            if done.returncode != 0:
                raise ShopsenseError(f"SASRec worker failed:\n{done.stderr[-3000:]}")
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
