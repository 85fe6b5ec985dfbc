"""Anonymous shoppers merged into users (issue 15, point 3): the merge, its idempotence, opt-out,
export and deletion following the link, and old stores upgraded."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from shopsense import columns as C
from shopsense.exceptions import LinkError
from shopsense.store import KnowledgeStore, open_store

ANON = "shopper-0123456789abcdef"


def _events(user: str, items: list[str], t0: float = 100.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            C.USER: [user] * len(items),
            C.ITEM: items,
            C.EVENT_TYPE: [C.VIEW] * len(items),
            C.TIMESTAMP: [t0 + n for n in range(len(items))],
            C.SESSION: ["s-anon"] * len(items),
        }
    )


def _shown(user: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            C.REQUEST_ID: ["r-1"],
            C.USER: [user],
            C.ITEM: ["a"],
            C.POSITION: [0],
            C.SURFACE: ["recommend"],
            C.TIMESTAMP: [99.0],
        }
    )


def test_a_link_merges_the_anonymous_events_into_the_user(store: KnowledgeStore) -> None:
    store.add_events(_events("alice", ["x"], t0=10.0))
    store.add_events(_events(ANON, ["a", "b"]))
    store.log_impressions(_shown(ANON))
    done = store.link_user("alice", ANON)
    assert (done.events, done.impressions, done.new, done.opted_out) == (2, 1, True, False)
    # the per-request read of every list sees them as the user's
    assert store.recent_event_columns("alice", 10)[C.ITEM] == ["x", "a", "b"]
    assert store.recent_event_columns(ANON, 10)[C.ITEM] == []
    assert store.impressions()[C.USER].tolist() == ["alice"]
    assert store.linked_ids("alice") == [ANON] and store.linked_ids(ANON) == []
    # again: nothing new to move, one link; what the anonymous id did since moves at the next link
    again = store.link_user("alice", ANON)
    assert (again.events, again.new) == (0, False)
    store.add_events(_events(ANON, ["c"], t0=200.0))
    assert store.link_user("alice", ANON).events == 1
    assert store.recent_event_columns("alice", 10)[C.ITEM] == ["x", "a", "b", "c"]
    assert store.linked_ids("alice") == [ANON]
    # a replay of a moved event (a journal, a client retrying) is still recognised as stored
    assert store.add_events(_events(ANON, ["a"])) == 0


def test_a_user_not_seen_before_can_be_linked_into(store: KnowledgeStore) -> None:
    store.add_events(_events(ANON, ["a"]))
    assert store.link_user("new-account", ANON).events == 1
    assert store.export_user("new-account")["known"]


def test_self_links_and_circles_are_refused(store: KnowledgeStore) -> None:
    store.add_events(_events(ANON, ["a"]))
    with pytest.raises(LinkError, match="to itself"):
        store.link_user(ANON, ANON)
    store.link_user("alice", ANON)
    store.link_user("family", "alice")  # an account merged into another: links of links
    for user, anon in (("alice", "family"), (ANON, "family"), (ANON, "alice")):
        with pytest.raises(LinkError, match="other way round"):
            store.link_user(user, anon)
    assert store.linked_ids("family") == ["alice", ANON]
    assert store.recent_event_columns("family", 10)[C.ITEM] == ["a"]


def test_an_opt_out_on_either_id_holds_after_the_link(store: KnowledgeStore) -> None:
    store.add_events(_events(ANON, ["a"]))
    store.set_opted_out("alice")
    assert store.link_user("alice", ANON).opted_out is True
    assert store.opted_out() == {"alice"}
    assert store.recent_event_columns("alice", 10)[C.ITEM] == []  # still not personal
    # an anonymous shopper who opted out stays opted out as the user they log in as
    store.add_events(_events("anon-2", ["b"]))
    store.set_opted_out("anon-2")
    assert store.link_user("bob", "anon-2").opted_out is True
    assert store.opted_out(["bob"]) == {"bob"}


def test_export_and_deletion_cover_the_merged_ids(store: KnowledgeStore) -> None:
    store.add_events(_events("alice", ["x"], t0=10.0))
    store.add_events(_events(ANON, ["a"]))
    store.add_events(_events("bob", ["b"]))
    store.link_user("alice", ANON)
    store.add_events(_events(ANON, ["late"], t0=300.0))  # browsed on under the cookie after the link
    store.log_impressions(_shown(ANON))
    out = store.export_user("alice")
    assert out["linked_ids"]["anonymous_ids"] == [ANON]
    assert [(e[C.USER], e[C.ITEM]) for e in out["events"]] == [("alice", "x"), ("alice", "a"), (ANON, "late")]
    assert [i[C.USER] for i in out["impressions"]] == [ANON]
    d = store.delete_users(["alice"])
    assert d.counts == {"events": 3, "impressions": 1, "users": 2, "links": 1, "query_vectors": 0}
    assert store.events()[C.USER].tolist() == ["bob"]
    assert store.linked_ids("alice") == [] and store.export_user(ANON)["known"] is False
    # deleting an anonymous id itself takes its link too
    store.add_events(_events("anon-3", ["c"]))
    store.link_user("bob", "anon-3")
    assert store.delete_users(["anon-3"]).counts["links"] == 1
    assert store.linked_ids("bob") == [] and store.events()[C.ITEM].tolist() == ["b", "c"]


def test_a_store_from_before_gets_the_links_table(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    open_store(f"sqlite:///{db}").close()
    con = sqlite3.connect(db)  # back to the tables as earlier versions created them
    con.execute("DROP TABLE user_links")
    con.execute("DELETE FROM store_meta WHERE key = 'schema_version'")  # made before schema versions
    con.commit()
    con.close()
    store = open_store(f"sqlite:///{db}", create=False)  # reading commands open without creating
    store.add_events(_events(ANON, ["a"]))
    assert store.link_user("alice", ANON).events == 1
    assert store.delete_users(["alice"]).counts["links"] == 1
    store.close()
