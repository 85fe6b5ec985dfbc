"""Dataset: id maps, weighted matrix, chronological sequences, splits."""

from __future__ import annotations

import pandas as pd
import pytest

from shopsense import columns as C
from shopsense.config import EventWeights
from shopsense.data.dataset import Dataset
from shopsense.data.idmap import IdMap
from shopsense.data.splits import leave_one_out, temporal_split
from shopsense.exceptions import UnknownItemError


def _events() -> pd.DataFrame:
    # u1: a(view) b(purchase) c(view) d(click); u2: b(view) a(view); u3: c(view); u4 only searches
    return pd.DataFrame(
        {
            C.USER: ["u1", "u2", "u1", "u1", "u2", "u3", "u1", "u4"],
            C.ITEM: ["a", "b", "b", "c", "a", "c", "d", None],
            C.EVENT_TYPE: ["view", "view", "purchase", "view", "view", "view", "click", "search"],
            C.TIMESTAMP: [1.0, 1.0, 2.0, 3.0, 3.0, 4.0, 5.0, 6.0],
            C.QUERY: [None] * 7 + ["lamp"],
        }
    )


def _products() -> pd.DataFrame:
    return pd.DataFrame({C.ITEM: ["a", "b", "c", "d", "cold"], C.TITLE: ["A", "B", "C", "D", "Cold one"]})


def test_idmap_round_trip(tmp_path) -> None:
    m = IdMap.from_values(["x", "y", "x", "z"])
    assert len(m) == 3
    assert m.to_internal(["z", "x"]).tolist() == [2, 0]
    assert m.to_external([1]).tolist() == ["y"]
    with pytest.raises(UnknownItemError):
        m.to_internal(["nope"])
    assert m.to_internal(["nope", "y"], strict=False).tolist() == [-1, 1]
    m2 = m.extended(["w", "x"])
    assert m2.to_internal(["x", "w"]).tolist() == [0, 3]
    m.save(tmp_path / "ids.json")
    assert IdMap.load(tmp_path / "ids.json").external_ids.tolist() == ["x", "y", "z"]


def test_dataset_maps_catalog_and_weights() -> None:
    ds = Dataset.from_frames(_events(), _products(), EventWeights(view=1, purchase=10, click=3))
    assert ds.items.external_ids.tolist() == ["a", "b", "c", "d", "cold"]  # cold item has an index
    assert ds.n_users == 4  # u4 only searched, but is a user
    m = ds.user_item_matrix()
    u1 = ds.users.index_of("u1")
    assert m[u1].toarray().ravel().tolist() == [1.0, 10.0, 1.0, 3.0, 0.0]
    assert ds.user_item_matrix(binary=True).sum() == 7
    assert ds.queries is not None and ds.queries[C.QUERY].tolist() == ["lamp"]
    assert ds.products.loc[4, C.TITLE] == "Cold one"


def test_sequences_chronological_ties_keep_input_order() -> None:
    ds = Dataset.from_frames(_events(), _products())
    seq = ds.sequences()
    ext = {ds.users.external_ids[i]: ds.items.to_external(s).tolist() for i, s in enumerate(seq)}
    assert ext["u1"] == ["a", "b", "c", "d"]
    assert ext["u2"] == ["b", "a"]  # b and a: t=1 then t=3
    assert ext["u4"] == []
    tie = pd.DataFrame({C.USER: ["u"] * 3, C.ITEM: ["z", "y", "x"], C.EVENT_TYPE: ["view"] * 3, C.TIMESTAMP: [1.0] * 3})
    ds2 = Dataset.from_frames(tie)
    assert ds2.items.to_external(ds2.sequences()[0]).tolist() == ["z", "y", "x"]


def test_leave_one_out() -> None:
    ds = Dataset.from_frames(_events(), _products())
    split = leave_one_out(ds)
    u1, u2, u3 = ds.users.to_internal(["u1", "u2", "u3"])
    test = dict(zip(split.test[C.USER_IDX], split.test[C.ITEM_IDX], strict=True))
    valid = dict(zip(split.valid[C.USER_IDX], split.valid[C.ITEM_IDX], strict=True))
    assert ds.items.to_external([test[u1]]).tolist() == ["d"]
    assert ds.items.to_external([valid[u1]]).tolist() == ["c"]
    assert ds.items.to_external([test[u2]]).tolist() == ["a"] and u2 not in valid  # 2 events: no validation
    assert u3 not in test  # 1 event: training only
    train_u1 = split.train.interactions[split.train.interactions[C.USER_IDX] == u1]
    assert ds.items.to_external(train_u1[C.ITEM_IDX]).tolist() == ["a", "b"]
    full_u1 = split.train_full.interactions[split.train_full.interactions[C.USER_IDX] == u1]
    assert ds.items.to_external(full_u1[C.ITEM_IDX]).tolist() == ["a", "b", "c"]
    assert split.train.n_items == ds.n_items  # id maps are shared


def test_temporal_split() -> None:
    ds = Dataset.from_frames(_events(), _products())
    train, test = temporal_split(ds, test_fraction=0.25)
    assert len(train.interactions) + len(test.interactions) == len(ds.interactions)
    assert train.interactions[C.TIMESTAMP].max() <= test.interactions[C.TIMESTAMP].min()
    with pytest.raises(ValueError, match="test_fraction"):
        temporal_split(ds, test_fraction=1.5)


def test_from_store(sqlite_store) -> None:
    sqlite_store.upsert_products(_products())
    sqlite_store.add_events(_events())
    ds = Dataset.from_store(sqlite_store)
    assert ds.n_items == 5 and ds.n_users == 4
    pop = dict(zip(ds.items.external_ids, ds.item_popularity(), strict=True))
    assert pop == {"a": 2, "b": 2, "c": 2, "d": 1, "cold": 0}
