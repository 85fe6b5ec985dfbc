"""Settings chosen on one half of the judged queries and scored on the other (a cross-fitted choice).

A setting picked by looking at the queries it is then scored on looks better than it will on new
queries. Here the judged queries are split in two halves by a stable hash of their text (sha256:
the same on every run and machine, unlike Python's salted ``hash``); each half chooses the best
entry of a grid from its own queries and judgements only, and that choice is scored on the other
half, both ways round. The mean of the two held-out scores is the honest number; a grid entry (such
as today's default) can be scored the same way next to it.

>>> result = choose_on_halves(grid, evaluate, queries, qrels, default=grid[0])
>>> result.heldout_mean, [h.setting for h in result.halves]
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import pandas as pd

__all__ = ["CrossFitChoice", "HalfChoice", "choose", "choose_on_halves", "fold_of", "split_queries"]

S = TypeVar("S")
#: ``evaluate(settings, queries, qrels)`` -> one score per setting (higher is better), computed from
#: these queries and judgements only
Evaluate = Callable[[Sequence[S], pd.DataFrame, pd.DataFrame], Sequence[float]]


def fold_of(text: str, folds: int = 2) -> int:
    """The fold (0..folds-1) of a query: sha256 of its UTF-8 text, stable across runs and machines."""
    if folds < 1:
        raise ValueError(f"folds must be at least 1, got {folds}")
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") % folds


def split_queries(
    queries: pd.DataFrame, qrels: pd.DataFrame, *, folds: int = 2, text: str = "query"
) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """``(queries, qrels)`` of each fold; a query's judgements (by ``query_id``) go with it."""
    fold = np.array([fold_of(str(t), folds) for t in queries[text]], dtype=np.int64)
    qid = queries["query_id"].astype(str)
    judged_qid = qrels["query_id"].astype(str)
    out = []
    for f in range(folds):
        q = queries[fold == f]
        out.append((q, qrels[judged_qid.isin(set(qid[fold == f]))]))
    return out


@dataclass(frozen=True)
class HalfChoice(Generic[S]):
    """The setting one half chose and how it scored on the other half."""

    chosen_on: int  # the half whose queries chose it
    setting: S
    train_score: float  # on the half that chose it
    heldout_score: float  # on the other half
    default_heldout_score: float | None = None  # the default, scored on the same other half


@dataclass(frozen=True)
class CrossFitChoice(Generic[S]):
    """Both ways round: ``halves[h]`` was chosen on half h and scored on half 1 - h."""

    halves: tuple[HalfChoice[S], HalfChoice[S]]
    train_scores: tuple[np.ndarray, np.ndarray]  # every grid entry's score on each choosing half

    @property
    def heldout_mean(self) -> float:
        """Mean of the two held-out scores (each half scored by the setting the other half chose)."""
        return float(np.mean([h.heldout_score for h in self.halves]))

    @property
    def default_heldout_mean(self) -> float | None:
        scores = [h.default_heldout_score for h in self.halves if h.default_heldout_score is not None]
        return float(np.mean(scores)) if len(scores) == len(self.halves) else None

    @property
    def agree(self) -> bool:
        """Whether both halves chose the same setting."""
        return bool(self.halves[0].setting == self.halves[1].setting)


def choose(grid: Sequence[S], evaluate: Evaluate, queries: pd.DataFrame, qrels: pd.DataFrame) -> tuple[int, np.ndarray]:
    """Position of the best grid entry on these queries (the first of equals: put the default first)
    and every entry's score."""
    if not len(grid):
        raise ValueError("the grid is empty")
    scores = np.asarray(evaluate(grid, queries, qrels), dtype=np.float64)
    if scores.shape != (len(grid),):
        raise ValueError(f"evaluate returned {scores.shape} scores for {len(grid)} settings")
    return int(np.argmax(np.where(np.isnan(scores), -np.inf, scores))), scores


def choose_on_halves(
    grid: Sequence[S],
    evaluate: Evaluate,
    queries: pd.DataFrame,
    qrels: pd.DataFrame,
    *,
    default: S | None = None,
    text: str = "query",
) -> CrossFitChoice[S]:
    """Choose on each half by :func:`choose` (that half's queries and judgements only), score the choice
    (and ``default``, when given) on the other half."""
    halves = split_queries(queries, qrels, folds=2, text=text)
    picks = [choose(grid, evaluate, *halves[h]) for h in (0, 1)]
    out = []
    for h, (best, scores) in enumerate(picks):
        settings = [grid[best]] + ([default] if default is not None else [])
        held = np.asarray(evaluate(settings, *halves[1 - h]), dtype=np.float64)
        out.append(
            HalfChoice(
                chosen_on=h,
                setting=grid[best],
                train_score=float(scores[best]),
                heldout_score=float(held[0]),
                default_heldout_score=float(held[1]) if default is not None else None,
            )
        )
    return CrossFitChoice(halves=(out[0], out[1]), train_scores=(picks[0][1], picks[1][1]))
