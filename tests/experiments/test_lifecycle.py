"""Starting, stopping and listing experiments in the store (SQLite and PostgreSQL), refusals with
the reason, arms pinning their versions, and stores from before experiments upgraded on open."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from shopsense import columns as C
from shopsense import experiments
from shopsense.exceptions import ExperimentError, UnknownExperimentError, UnknownVersionError, VersionError
from shopsense.store import KnowledgeStore, open_store
from shopsense.versions import served_versions


def _versions(store: KnowledgeStore) -> None:
    store.register_version("v1", status="complete")
    store.register_version("v2", status="complete")
    store.register_version("v3", status="training")
    store.register_version("v4", status="failed")
    store.activate_version("v1")


def test_start_list_stop_round_trip(store: KnowledgeStore, tmp_path: Path) -> None:
    _versions(store)
    exp = experiments.start(
        store, tmp_path, "new-ranker", ["control=v1", "treatment=v2"], split="90,10", surface="both"
    )
    assert [(a.name, a.version, a.weight) for a in exp.arms] == [("control", "v1", 90.0), ("treatment", "v2", 10.0)]
    assert exp.status == "running" and exp.mode == "ab" and len(exp.salt) == 32
    assert "search" in exp.surfaces and "for_you" in exp.surfaces and "similar" not in exp.surfaces
    [listed] = experiments.list_experiments(store)
    assert listed == exp  # what the store gives back is what was started, salt included
    assert [e.name for e in experiments.running(store)] == ["new-ranker"]
    stopped = experiments.stop(store, "new-ranker")
    assert stopped.status == "stopped" and stopped.stopped_at is not None
    assert experiments.running(store) == []
    with pytest.raises(ExperimentError, match="stopped already"):
        experiments.stop(store, "new-ranker")
    with pytest.raises(UnknownExperimentError, match="no experiment named 'nope'"):
        experiments.stop(store, "nope")
    with pytest.raises(ExperimentError, match="exists already"):  # names are never reused
        experiments.start(store, tmp_path, "new-ranker", ["a=v1", "b=v2"])


def test_start_is_refused_on_unknown_or_incomplete_versions(store: KnowledgeStore, tmp_path: Path) -> None:
    _versions(store)
    with pytest.raises(UnknownVersionError, match="unknown model version 'v9'"):
        experiments.start(store, tmp_path, "x", ["control=v1", "treatment=v9"])
    with pytest.raises(VersionError, match="'v3' is training, not complete"):
        experiments.start(store, tmp_path, "x", ["control=v1", "treatment=v3"])
    with pytest.raises(VersionError, match="'v4' is failed, not complete"):
        experiments.start(store, tmp_path, "x", ["control=v4", "treatment=v1"])
    # a complete record whose files are gone
    store.register_version("v5", status="complete", path="models/v5")
    with pytest.raises(VersionError, match="no artifacts"):
        experiments.start(store, tmp_path, "x", ["control=v1", "treatment=v5"])
    assert experiments.list_experiments(store) == []  # nothing recorded by a refusal


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"arms": ["control=v1"]}, "at least two arms"),
        ({"arms": ["control"]}, "NAME=VERSION"),
        ({"arms": ["a=v1", "a=v2"]}, "repeat"),
        ({"split": "50,x"}, "not a list of numbers"),
        ({"split": "50,50,0"}, "3 weights for 2 arms"),
        ({"split": "100,0"}, "positive"),
        ({"surface": "similar"}, "catalog, not a model version"),
        ({"surface": "home"}, "valid: recommend, search, both, all"),
        ({"mode": "bandit"}, "valid: ab, interleave"),
        ({"arms": ["a=v1", "b=v2", "c=v1"], "mode": "interleave"}, "exactly two"),
        ({"name": "no spaces"}, "name 'no spaces' is not valid"),
    ],
)
def test_invalid_inputs_are_refused_naming_the_problem(
    sqlite_store: KnowledgeStore, tmp_path: Path, kwargs, why
) -> None:
    _versions(sqlite_store)
    args = {"name": "x", "arms": ["control=v1", "treatment=v2"], **kwargs}
    name, arms = args.pop("name"), args.pop("arms")
    with pytest.raises(ExperimentError, match=why):
        experiments.start(sqlite_store, tmp_path, name, arms, **args)


def test_one_experiment_per_surface(sqlite_store: KnowledgeStore, tmp_path: Path) -> None:
    _versions(sqlite_store)
    experiments.start(sqlite_store, tmp_path, "a", ["c=v1", "t=v2"], surface="buy_again")
    with pytest.raises(ExperimentError, match="'a' already runs on buy_again"):
        experiments.start(sqlite_store, tmp_path, "b", ["c=v1", "t=v2"], surface="recommend")
    experiments.start(sqlite_store, tmp_path, "b", ["c=v1", "t=v2"], surface="search", mode="interleave")
    assert {e.name for e in experiments.running(sqlite_store)} == {"a", "b"}


def test_arms_pin_their_versions_against_a_new_activation(store: KnowledgeStore, tmp_path: Path) -> None:
    _versions(store)
    experiments.start(store, tmp_path, "pin", ["control=v1", "treatment=v2"])
    assert [v.version for v in served_versions(store, tmp_path)] == ["v1", "v2"]
    # a training completes and activates its version: the default moves, the arms keep theirs
    store.register_version("v6", status="complete")
    store.activate_version("v6")
    assert [v.version for v in served_versions(store, tmp_path)] == ["v6", "v1", "v2"]
    experiments.stop(store, "pin")
    assert [v.version for v in served_versions(store, tmp_path)] == ["v6"]


def test_impressions_record_experiment_and_arm(store: KnowledgeStore) -> None:
    rows = [
        ("r1", "u1", "a", 0, 1.0, "ease", "recommend", "v2", None, 5.0, "exp", "treatment"),
        ("r2", "u2", "b", 0, 1.0, "ease", "recommend", "v1", None, 5.0),  # outside any experiment
    ]
    assert store.log_impression_rows(rows) == 2
    got = store.experiment_impressions("exp")
    assert got[C.REQUEST_ID].tolist() == ["r1"] and got[C.ARM].tolist() == ["treatment"]
    assert store.impressions("r2")[C.EXPERIMENT].isna().all()
    frame = pd.DataFrame(
        {C.REQUEST_ID: ["r3"], C.ITEM: ["c"], C.POSITION: [0], C.SURFACE: ["search"], C.TIMESTAMP: [1.0]}
    )
    store.log_impressions(frame.assign(**{C.EXPERIMENT: "exp", C.ARM: "control"}))
    assert store.experiment_impressions("exp")[C.ARM].tolist() == ["treatment", "control"]


def test_a_store_from_before_experiments_is_upgraded_on_open(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    open_store(f"sqlite:///{db}").close()
    con = sqlite3.connect(db)  # back to the tables as earlier versions created them
    con.execute("DROP TABLE experiments")
    con.execute("ALTER TABLE impressions DROP COLUMN experiment")
    con.execute("ALTER TABLE impressions DROP COLUMN arm")
    con.execute("ALTER TABLE impressions DROP COLUMN ranked_position")
    con.execute("DELETE FROM store_meta WHERE key = 'schema_version'")  # made before schema versions
    con.execute(
        "INSERT INTO impressions (request_id, item_id, position, surface, timestamp) VALUES ('r0', 'a', 0, 'search', 1)"
    )
    con.commit()
    con.close()
    for create in (False, True):  # reading commands open stores without creating tables
        store = open_store(f"sqlite:///{db}", create=create)
        assert store.experiment_records() == []
        assert store.impressions("r0")[C.ARM].isna().all()
        store.close()
    store = open_store(f"sqlite:///{db}")
    store.log_impression_rows([("r1", "u1", "a", 0, 1.0, None, "search", None, None, 2.0, "e", "a")])
    assert store.experiment_impressions("e")[C.ARM].tolist() == ["a"]
    store.log_impression_rows([("r2", "u1", "a", 0, 1.0, None, "search", None, None, 3.0, None, None, 4)])
    assert store.impressions("r2")[C.RANKED_POSITION].tolist() == [4]  # an INTEGER column, added on open
    store.close()
