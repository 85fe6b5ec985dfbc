"""The time-based split a shop's own evaluation uses: nothing after a cut is trained on, and each
returning shopper is scored on their first item after it."""

from __future__ import annotations

import pandas as pd
import pytest

from shopsense import columns as C
from shopsense.data.dataset import Dataset
from shopsense.data.splits import next_after_cut


def _log() -> Dataset:
    rows = []
    for u in range(10):
        for j in range(10):  # user u's events at times u + 10 j: interleaved users, one global clock
            rows.append({C.USER: f"u{u}", C.ITEM: f"i{(u + j) % 7}", C.EVENT_TYPE: C.VIEW, C.TIMESTAMP: u + 10.0 * j})
    rows.append({C.USER: "late", C.ITEM: "i1", C.EVENT_TYPE: C.VIEW, C.TIMESTAMP: 1000.0})  # nothing before the cut
    return Dataset.from_frames(pd.DataFrame(rows))


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
