"""The public datasets load with the published sizes (realdata: reads ../shared/data)."""

from __future__ import annotations

import pytest

from shopsense import columns as C
from shopsense.data.public import load_dataset
from shopsense.exceptions import DatasetNotFoundError

pytestmark = pytest.mark.realdata


@pytest.mark.parametrize(
    ("name", "n_items", "n_events", "n_users"),
    [
        ("scientific", 4385, 59427, 8442),
        ("videogames", 16859, 440264, 50546),
        ("beauty", 12101, 198502, 22363),
        ("movielens-100k", 1682, 100000, 943),
    ],
)
def test_sizes(shared_data, name, n_items, n_events, n_users) -> None:
    ds = load_dataset(name, shared_data)
    assert len(ds.products) == n_items
    assert len(ds.events) == n_events
    assert ds.events[C.USER].nunique() == n_users
    assert ds.events[C.ITEM].isin(ds.products[C.ITEM]).all()


def test_scientific_text_fields(shared_data) -> None:
    p = load_dataset("scientific", shared_data).products.set_index(C.ITEM)
    row = p.loc["B0000223SI"]
    assert row[C.TITLE].startswith("PORTER-CABLE 740000801")
    assert row[C.BRAND] == "PORTER-CABLE"
    assert row[C.CATEGORY].startswith("Industrial & Scientific")


def test_homedepot(shared_data) -> None:
    ds = load_dataset("homedepot", shared_data)
    assert len(ds.products) == 54667
    assert ds.queries is not None and len(ds.queries) == 8262
    assert ds.qrels is not None and len(ds.qrels) == 51907


def test_unknown_and_missing(tmp_path) -> None:
    with pytest.raises(ValueError, match="valid: scientific"):
        load_dataset("nope")
    with pytest.raises(DatasetNotFoundError, match="SHOPSENSE_DATA_DIR"):
        load_dataset("scientific", tmp_path)
