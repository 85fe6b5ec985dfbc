"""The time-based split a shop's own evaluation uses: nothing after a cut is trained on, and each
returning shopper is scored on their first item after it."""

from __future__ import annotations

import pandas as pd
import pytest

from shopsense import columns as C
from shopsense.data.dataset import Dataset
from shopsense.data.splits import next_after_cut, purchases_after_cut


def _log() -> Dataset:
    return Dataset.from_frames(pd.DataFrame(_rows()))


def _rows() -> list[dict]:
    rows = []
    for u in range(10):
        for j in range(10):  # user u's events at times u + 10 j: interleaved users, one global clock
            rows.append({C.USER: f"u{u}", C.ITEM: f"i{(u + j) % 7}", C.EVENT_TYPE: C.VIEW, C.TIMESTAMP: u + 10.0 * j})
    rows.append({C.USER: "late", C.ITEM: "i1", C.EVENT_TYPE: C.VIEW, C.TIMESTAMP: 1000.0})  # nothing before the cut
    return rows


def test_nothing_after_the_cut_is_trained_on_and_targets_are_each_users_first_after_it() -> None:
    ds = _log()
    split = next_after_cut(ds, test_fraction=0.2)
    t = ds.interactions[C.TIMESTAMP]
    cut = split.train_full.interactions[C.TIMESTAMP].max()
    assert (t > cut).sum() >= 0.2 * len(t) - 1  # the last fifth is held out
    late = ds.users.to_internal(["late"])[0]
    assert late not in set(split.test[C.USER_IDX])  # no history before the cut: not scored
    for row in split.test.itertuples():
        later = ds.interactions[(ds.interactions[C.USER_IDX] == row.user_idx) & (ds.interactions[C.TIMESTAMP] > cut)]
        assert later.iloc[0][C.ITEM_IDX] == row.item_idx  # the first one after the cut
    assert split.train.interactions[C.TIMESTAMP].max() < split.train_full.interactions[C.TIMESTAMP].max()
    assert len(split.valid) and len(split.test) == 10


def test_a_bad_fraction_is_refused() -> None:
    with pytest.raises(ValueError, match="test_fraction"):
        next_after_cut(_log(), test_fraction=1.0)


def test_new_items_only_skips_what_the_user_touched_before_the_cut() -> None:
    # after the cut each of five users views a new item
    extra = [{C.USER: f"u{u}", C.ITEM: f"new{u}", C.EVENT_TYPE: C.VIEW, C.TIMESTAMP: 200.0 + u} for u in range(5)]
    ds = Dataset.from_frames(pd.DataFrame(_rows() + extra))
    split = next_after_cut(ds, test_fraction=0.2, new_items_only=True)
    assert len(next_after_cut(ds, test_fraction=0.2).test) == 10  # everyone's first event after it: a repeat
    before = split.train_full.interactions
    cut = before[C.TIMESTAMP].max()
    assert len(split.test) == 5
    for row in split.test.itertuples():
        seen = set(before[before[C.USER_IDX] == row.user_idx][C.ITEM_IDX])
        assert row.item_idx not in seen
        later = ds.interactions[(ds.interactions[C.USER_IDX] == row.user_idx) & (ds.interactions[C.TIMESTAMP] > cut)]
        fresh = later[~later[C.ITEM_IDX].isin(seen)]
        assert fresh.iloc[0][C.ITEM_IDX] == row.item_idx  # the first new one


def test_purchases_after_cut_scores_each_shoppers_first_purchase_after_it() -> None:
    rows = [
        {C.USER: "a", C.ITEM: "x", C.EVENT_TYPE: C.VIEW, C.TIMESTAMP: 1.0},
        {C.USER: "b", C.ITEM: "y", C.EVENT_TYPE: C.VIEW, C.TIMESTAMP: 2.0},
        {C.USER: "c", C.ITEM: "y", C.EVENT_TYPE: C.PURCHASE, C.TIMESTAMP: 3.0},
        {C.USER: "a", C.ITEM: "x", C.EVENT_TYPE: C.VIEW, C.TIMESTAMP: 10.0},  # after the cut: history, not a target
        {C.USER: "a", C.ITEM: "x", C.EVENT_TYPE: C.PURCHASE, C.TIMESTAMP: 11.0},
        {C.USER: "a", C.ITEM: "z", C.EVENT_TYPE: C.PURCHASE, C.TIMESTAMP: 12.0},
        {C.USER: "new", C.ITEM: "z", C.EVENT_TYPE: C.PURCHASE, C.TIMESTAMP: 13.0},  # nothing before the cut
    ]
    ds = Dataset.from_frames(pd.DataFrame(rows))
    train, targets = purchases_after_cut(ds, test_fraction=0.5)
    assert train.interactions[C.TIMESTAMP].max() == 3.0
    assert list(ds.users.external_ids[targets[C.USER_IDX]]) == ["a"]
    assert list(ds.items.external_ids[targets[C.ITEM_IDX]]) == ["x"] and targets[C.TIMESTAMP].tolist() == [11.0]
