"""The purchase funnel's events: ``favorite`` and ``remove_from_cart`` (issue 15, point 0), from a
file and over HTTP, in the stats, and in what training reads."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from shopsense import columns as C
from shopsense.config import EventWeights, load_settings
from shopsense.data.dataset import Dataset
from shopsense.data.history import history_of
from shopsense.data.ingest import ingest_events
from shopsense.exceptions import SchemaError
from shopsense.store import KnowledgeStore


def _csv(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id,event_type,timestamp\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_funnel_events_are_ingested_counted_and_weighted(sqlite_store: KnowledgeStore, tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        [
            "u1,p1,view,1700000000",
            "u1,p1,favorite,1700000010",
            "u1,p1,add_to_cart,1700000020",
            "u1,p1,remove_from_cart,1700000030",
            "u1,p2,FAVORITE,1700000040",
        ],
    )
    assert ingest_events(sqlite_store, path).inserted == 5
    by_type = sqlite_store.stats()["events_by_type"]
    assert by_type[C.FAVORITE] == 2 and by_type[C.REMOVE_FROM_CART] == 1
    ds = Dataset.from_store(sqlite_store)
    # a removal says what the cart holds, not interest: it trains nothing; a favourite weighs 3
    assert ds.interactions[C.EVENT_TYPE].tolist() == [C.VIEW, C.FAVORITE, C.ADD_TO_CART, C.FAVORITE]
    assert ds.interactions[C.WEIGHT].tolist() == [1.0, 3.0, 4.0, 3.0]
    h = history_of(sqlite_store.recent_event_columns("u1", 10), EventWeights().as_dict())
    assert h.types.tolist() == [C.VIEW, C.FAVORITE, C.ADD_TO_CART, C.FAVORITE]


def test_an_unknown_event_type_names_the_new_ones(sqlite_store: KnowledgeStore, tmp_path: Path) -> None:
    with pytest.raises(SchemaError) as e:
        ingest_events(sqlite_store, _csv(tmp_path, ["u1,p1,wishlist,1700000000"]))
    assert "favorite" in str(e.value.errors[0]) and "remove_from_cart" in str(e.value.errors[0])


def test_the_weights_are_settings(tmp_path: Path) -> None:
    toml = tmp_path / "shop.toml"
    toml.write_text("[event_weights]\nfavorite = 5.0\nremove_from_cart = 0.5\n", encoding="utf-8")
    weights = load_settings(toml, home=tmp_path / "home").event_weights
    assert weights.of(C.FAVORITE) == 5.0 and weights.of(C.REMOVE_FROM_CART) == 0.5
    assert pd.Series(EventWeights().as_dict())[[C.FAVORITE, C.REMOVE_FROM_CART]].tolist() == [3.0, 0.0]
