"""The knowledge store contract, run on SQLite and on PostgreSQL with the same tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shopsense import columns as C
from shopsense.exceptions import StoreError, UnknownStoreError
from shopsense.store import KnowledgeStore, open_store


def _products() -> pd.DataFrame:
    return pd.DataFrame(
        {
            C.ITEM: ["a", "b", "c"],
            C.TITLE: ["Apple", "Banana", "Cherry"],
            C.PRICE: [1.5, None, 3.0],
            C.TAGS: [["fruit", "red"], None, []],
            C.ATTRIBUTES: [{"origin": "NZ"}, None, None],
            C.AVAILABLE: [True, False, True],
        }
    )


def _events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            C.USER: ["u1", "u1", "u2", "u1", "u1"],
            C.ITEM: ["a", "b", "a", None, "b"],
            C.EVENT_TYPE: ["view", "purchase", "view", "search", "purchase"],
            C.TIMESTAMP: [10.0, 20.0, 10.0, 30.0, 40.0],
            C.QUERY: [None, None, None, "red fruit", None],
        }
    )


def test_products_round_trip(store: KnowledgeStore) -> None:
    assert store.upsert_products(_products()) == 3
    got = store.products()
    assert got[C.ITEM].tolist() == ["a", "b", "c"]
    assert got[C.TAGS].tolist() == [["fruit", "red"], [], []]
    assert got[C.ATTRIBUTES].iloc[0] == {"origin": "NZ"}
    assert got[C.AVAILABLE].tolist() == [True, False, True]
    assert np.isnan(got[C.PRICE].iloc[1])
    assert store.get_product("zzz") is None


def test_upsert_is_idempotent_and_updates_changes(store: KnowledgeStore) -> None:
    store.upsert_products(_products())
    before = store.products()
    assert store.upsert_products(_products()) == 0  # unchanged rows are not rewritten
    pd.testing.assert_frame_equal(store.products(), before)
    changed = _products()
    changed.loc[1, C.TITLE] = "Plantain"
    assert store.upsert_products(changed) == 1
    after = store.products()
    assert after.loc[1, C.TITLE] == "Plantain"
    assert after.loc[1, C.CREATED_AT] == before.loc[1, C.CREATED_AT]  # created_at is kept


def test_events_dedupe_and_order(store: KnowledgeStore) -> None:
    assert store.add_events(_events()) == 5
    assert store.add_events(_events()) == 0  # the same events again change nothing
    repeat = _events().iloc[[1]].assign(**{C.TIMESTAMP: 99.0})  # a repeat purchase later is a new event
    assert store.add_events(repeat) == 1
    ev = store.events(user_id="u1")
    assert ev[C.TIMESTAMP].tolist() == [10.0, 20.0, 30.0, 40.0, 99.0]
    assert store.stats()["events_by_type"]["purchase"] == 3
    assert store.stats()["users"] == 2


def test_event_id_identity(store: KnowledgeStore) -> None:
    e = _events().iloc[:2].assign(**{C.EVENT_ID: ["e1", "e2"]})
    assert store.add_events(e) == 2
    # same ids, other timestamps: still the same events
    assert store.add_events(e.assign(**{C.TIMESTAMP: [1.0, 2.0]})) == 0


def test_ties_keep_arrival_order(store: KnowledgeStore) -> None:
    e = pd.DataFrame({C.USER: ["u"] * 3, C.ITEM: ["z", "y", "x"], C.EVENT_TYPE: ["view"] * 3, C.TIMESTAMP: [5.0] * 3})
    store.add_events(e)
    assert store.events(user_id="u")[C.ITEM].tolist() == ["z", "y", "x"]
    assert store.events(user_id="u", limit=2, newest_first=True)[C.ITEM].tolist() == ["x", "y"]
    assert store.recent_event_columns("u", limit=2)[C.ITEM] == ["y", "x"]


def test_recent_queries_are_distinct_newest_kept(store: KnowledgeStore) -> None:
    e = pd.DataFrame(
        {
            C.USER: ["u1", "u2", "u1", "u3", "u2", "u3"],
            C.ITEM: [None, None, None, None, None, "a"],
            C.EVENT_TYPE: ["search"] * 5 + ["view"],
            C.TIMESTAMP: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            C.QUERY: ["lamp", "kettle", "lamp", "", "drill", None],
        }
    )
    store.add_events(e)
    # oldest first, each query once at its latest search, empty queries and other events left out
    assert store.recent_queries(10) == ["kettle", "lamp", "drill"]
    assert store.recent_queries(2) == ["lamp", "drill"]
    assert store.recent_queries(0) == []


def test_transaction_rolls_back(store: KnowledgeStore) -> None:
    with pytest.raises(RuntimeError), store.transaction() as conn:
        store.upsert_products(_products(), conn=conn)
        store.add_events(_events(), conn=conn)
        raise RuntimeError("boom")
    assert store.stats()["products"] == 0
    assert store.stats()["events"] == 0


def test_delete_user(store: KnowledgeStore) -> None:
    store.add_events(_events())
    store.log_impressions(
        pd.DataFrame(
            {
                C.REQUEST_ID: ["r1"],
                C.USER: ["u1"],
                C.ITEM: ["a"],
                C.POSITION: [0],
                C.SURFACE: ["recommend"],
                C.TIMESTAMP: [1.0],
            }
        )
    )
    out = store.delete_user("u1")
    assert out == {"events": 4, "impressions": 1, "users": 1, "links": 0, "query_vectors": 0}
    assert store.events()[C.USER].unique().tolist() == ["u2"]


def test_impression_rows_are_written_as_given(store: KnowledgeStore) -> None:
    rows = [
        ("r9", "u1", "a", 0, 1.5, "ease", "recommend", "v1", None, 2.0),
        ("r9", None, "b", 1, None, None, "search", None, "red", 2.0),
    ]
    assert store.log_impression_rows(rows) == 2
    got = store.impressions("r9")
    assert got[C.ITEM].tolist() == ["a", "b"] and got[C.SCORE].tolist()[0] == 1.5 and got[C.QUERY].tolist()[1] == "red"
    with pytest.raises(ValueError, match="impression rows need"):
        store.log_impression_rows([("r9", "u1")])
    assert len(store.impressions("r9")) == 2  # nothing half-written
    store.log_impression_rows(
        [("r10", "u1", x, i, None, None, "recommend", "v1", None, 3.0) for i, x in enumerate("cde")]
    )
    assert store.impressions(latest=2)[C.ITEM].tolist() == ["d", "e"]  # the last logged, in logged order
    assert store.impressions(latest=100)[C.ITEM].tolist() == list("abcde")


def test_model_versions(store: KnowledgeStore) -> None:
    store.register_version("v1", status="complete", path="/m/v1", metrics={"ndcg@10": 0.1})
    store.register_version("v2", status="training")
    store.activate_version("v1")
    assert store.active_version() == "v1"
    with pytest.raises(StoreError, match="training"):
        store.activate_version("v2")
    with pytest.raises(StoreError, match="unknown"):
        store.activate_version("v9")
    store.register_version("v2", status="complete", path="/m/v2")
    store.activate_version("v2")
    v = store.versions().set_index("version")
    assert v.loc["v2", "active"] and not v.loc["v1", "active"]
    assert v.loc["v1", "metrics"] == {"ndcg@10": 0.1}


def test_embedding_cache(store: KnowledgeStore) -> None:
    vec = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert store.put_embeddings("m", ["h1", "h2"], vec) == 2
    got = store.get_embeddings("m", ["h2", "h3"])
    assert list(got) == ["h2"]
    np.testing.assert_array_equal(got["h2"], vec[1])
    assert store.get_embeddings("other-model", ["h1"]) == {}


def test_unknown_scheme() -> None:
    with pytest.raises(UnknownStoreError, match="Unknown store: 'redis'"):
        open_store("redis://localhost")


def test_missing_embedded_store_without_create(tmp_path) -> None:
    with pytest.raises(StoreError, match="shopsense init"):
        open_store(f"sqlite:///{tmp_path / 'nope.db'}", create=False)


def test_known_items_in_lists_of_any_length(store: KnowledgeStore) -> None:
    ids = [f"p{i}" for i in range(600)]
    store.upsert_products(pd.DataFrame({C.ITEM: ids[::2], C.TITLE: "t"}))
    for n in (0, 1, 3, 8, 513, 600):
        assert store.known_items(ids[:n]) == set(ids[:n:2])
    assert store.known_items(["p1", "p0", "p0"]) == {"p0"}


def test_a_shoppers_latest_events_come_from_one_covering_index(tmp_path) -> None:
    """SQLite answers the per-request read from the index alone; a store made with the narrow
    index before gets the covering one in its place when opened."""
    import sqlite3

    path = tmp_path / "kb.db"
    s = open_store(f"sqlite:///{path}")
    s.add_events(
        pd.DataFrame(
            {
                C.USER: ["u1", "u1", "u2"],
                C.ITEM: ["a", None, "b"],
                C.EVENT_TYPE: [C.VIEW, C.SEARCH, C.VIEW],
                C.QUERY: [None, "red kettle", None],
                C.TIMESTAMP: [1.0, 2.0, 3.0],
            }
        )
    )
    assert s.recent_event_columns("u1", 50)[C.ITEM] == ["a", None]
    sql, args = next(
        (c.sql, c.args({"user": "u1", "n": 50})) for k, c in s.statements._cache.items() if k[0] == "events"
    )
    s.close()
    db = sqlite3.connect(path)
    plan = " ".join(str(r) for r in db.execute(f"EXPLAIN QUERY PLAN {sql}", args))
    assert "COVERING INDEX ix_events_user_recent" in plan and "TEMP B-TREE" not in plan
    db.execute("DROP INDEX ix_events_user_recent")  # as stores were made before
    db.execute("CREATE INDEX ix_events_user_ts ON events (user_id, timestamp)")
    db.execute("DELETE FROM store_meta WHERE key = 'schema_version'")  # made before schema versions
    db.commit()
    db.close()
    s = open_store(f"sqlite:///{path}")
    names = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "ix_events_user_recent" in names and "ix_events_user_ts" not in names
    assert s.recent_event_columns("u1", 50)[C.QUERY] == [None, "red kettle"]
    s.close()
