"""Train/validation/test splits: leave-one-out on each user's sequence, and a global time cut."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.data.dataset import Dataset


@dataclass
class LeaveOneOut:
    """Last interaction of each user = test, second-to-last = validation, the rest = training.

    ``valid`` and ``test`` are frames of (``user_idx``, ``item_idx``); ``train`` (for choosing
    settings on ``valid``) and ``train_full`` (train + validation target, for the final fit that is
    scored on ``test``) are Datasets sharing the original id maps.
    Users with 2 interactions have no validation target; users with 1 are training-only.
    """

    train: Dataset
    train_full: Dataset
    valid: pd.DataFrame
    test: pd.DataFrame


def leave_one_out(ds: Dataset) -> LeaveOneOut:
    """Split every user's chronological sequence (see :class:`LeaveOneOut`)."""
    inter = ds.interactions
    u = inter[C.USER_IDX].to_numpy()
    # position from the end inside each user's chronology: 0 = last
    rank_from_end = inter.groupby(C.USER_IDX, sort=False).cumcount(ascending=False).to_numpy()
    count = np.bincount(u, minlength=ds.n_users)[u]
    is_test = (rank_from_end == 0) & (count >= 2)
    is_valid = (rank_from_end == 1) & (count >= 3)
    test = inter.loc[is_test, [C.USER_IDX, C.ITEM_IDX]].reset_index(drop=True)
    valid = inter.loc[is_valid, [C.USER_IDX, C.ITEM_IDX]].reset_index(drop=True)
    return LeaveOneOut(
        train=ds.with_interactions(inter[~is_test & ~is_valid]),
        train_full=ds.with_interactions(inter[~is_test]),
        valid=valid,
        test=test,
    )


def temporal_split(ds: Dataset, *, test_fraction: float = 0.2) -> tuple[Dataset, Dataset]:
    """Split all interactions at one moment: the last ``test_fraction`` of time-ordered events are test."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    inter = ds.interactions
    cut = int(round(len(inter) * (1 - test_fraction)))
    return ds.with_interactions(inter.iloc[:cut]), ds.with_interactions(inter.iloc[cut:])


def next_after_cut(ds: Dataset, *, test_fraction: float = 0.2, new_items_only: bool = False) -> LeaveOneOut:
    """A time-based split in :class:`LeaveOneOut`'s shape, for a shop's own log: everything before one
    moment (the last ``test_fraction`` of events begins there) is ``train_full``, and each user with
    events before it is scored on their first item event after it (``test``). The same, one step
    earlier inside ``train_full``, gives ``train`` and ``valid``. Nothing after a cut is trained on.
    ``new_items_only``: the first item after the cut that the user had no event on before it (on a
    funnel log the first event after a cut is mostly a view of something already seen)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    inter = ds.interactions.sort_values(C.TIMESTAMP, kind="stable")
    before, test = _first_after(inter, test_fraction, new_items_only)
    train, valid = _first_after(before, test_fraction, new_items_only)
    return LeaveOneOut(
        train=ds.with_interactions(train),
        train_full=ds.with_interactions(before),
        valid=valid,
        test=test,
    )


def purchases_after_cut(ds: Dataset, *, test_fraction: float = 0.2) -> tuple[Dataset, pd.DataFrame]:
    """A time split for a funnel log: (everything before the moment the last ``test_fraction`` of events
    begins, each shopper's first purchase after it with its ``timestamp``), for shoppers with events
    before the cut. Their events between the cut and the purchase are history a live shop would have
    read, not training data."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    inter = ds.interactions.sort_values(C.TIMESTAMP, kind="stable")
    t = inter[C.TIMESTAMP].to_numpy()
    cut = _cut_moment(t, test_fraction) if len(t) else 0.0
    before = inter[t < cut]
    later = inter[(t >= cut) & (inter[C.EVENT_TYPE] == C.PURCHASE).to_numpy()]
    later = later[later[C.USER_IDX].isin(before[C.USER_IDX].unique())]
    first = later.drop_duplicates(C.USER_IDX, keep="first")
    targets = first[[C.USER_IDX, C.ITEM_IDX, C.TIMESTAMP]].reset_index(drop=True)
    return ds.with_interactions(before), targets


def _first_after(inter: pd.DataFrame, fraction: float, new_only: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(events before the cut, each returning user's first (user, item) after it, with ``new_only`` the
    first item the user had no event on before the cut) for time-sorted ``inter``."""
    if not len(inter):
        return inter, pd.DataFrame({C.USER_IDX: [], C.ITEM_IDX: []}, dtype=np.int64)
    t = inter[C.TIMESTAMP].to_numpy()
    early = t < _cut_moment(t, fraction)
    before = inter[early]
    later = inter[~early]
    later = later[later[C.USER_IDX].isin(before[C.USER_IDX].unique())]
    if new_only:
        seen = pd.MultiIndex.from_frame(before[[C.USER_IDX, C.ITEM_IDX]])
        later = later[~pd.MultiIndex.from_frame(later[[C.USER_IDX, C.ITEM_IDX]]).isin(seen)]
    first = later.drop_duplicates(C.USER_IDX, keep="first")
    return before, first[[C.USER_IDX, C.ITEM_IDX]].reset_index(drop=True)


def _cut_moment(t: np.ndarray, fraction: float) -> float:
    """The moment the last ``fraction`` of the time-sorted, non-empty timestamps ``t`` begins."""
    return t[min(int(len(t) * (1 - fraction)), len(t) - 1)]
