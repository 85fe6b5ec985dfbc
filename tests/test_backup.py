"""``shopsense backup`` / ``shopsense restore``: a round trip taken while a writer writes serves the same
lists from another folder; restore refuses what it should."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from shopsense import columns as C
from shopsense.backup import DATABASE, MANIFEST, backup
from shopsense.cli.main import app
from shopsense.config import Settings, load_settings
from shopsense.data.sample import SAMPLE_DIR
from shopsense.recommend import Recommender, RecommendRequest
from shopsense.search import load_or_build
from shopsense.store import KnowledgeStore, open_store
from shopsense.training import train
from shopsense.versions import served_folder
from tests.test_recommend import FAST

runner = CliRunner()
USERS = ["U001", "U042", "U259", "nobody"]
QUERIES = ["espresso machine", "wireless headphones", "non-stick frying pan"]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory):
    """The sample shop, trained, with its search index under the home."""
    home = tmp_path_factory.mktemp("shop") / "home"
    for kind in ("products", "events"):
        r = runner.invoke(app, ["--home", str(home), "ingest", kind, str(SAMPLE_DIR / f"{kind}.csv")])
        assert r.exit_code == 0, r.output
    settings = load_settings(home=home)
    store = open_store(settings.store_url)
    train(store, settings, config=FAST)
    load_or_build(store, settings)
    yield settings, store
    store.close()


@pytest.fixture
def backup_dir(shop, tmp_path: Path) -> Path:
    settings, store = shop
    backup(store, settings.home, tmp_path / "bk")
    return tmp_path / "bk"


def _lists(settings: Settings, store: KnowledgeStore) -> dict[str, list[str]]:
    rec = Recommender.from_store(store, settings)
    engine = load_or_build(store, settings)
    out = {f"rec {u}": [r.item_id for r in rec.recommend(RecommendRequest(u, 10))] for u in USERS}
    out |= {f"search {q}": engine.search(q, user_id="U042", k=10, store=store).items for q in QUERIES}
    return out


def _write_until(store_url: str, stop: threading.Event, written: list[int]) -> None:
    """A writer: events of its own shoppers and impressions, one small transaction after another."""
    store = open_store(store_url)
    n = 0
    while not stop.is_set():
        ev = pd.DataFrame({C.USER: [f"writer-{n}"], C.ITEM: ["P0001"], C.EVENT_TYPE: [C.VIEW], C.TIMESTAMP: [1e9 + n]})
        with store.transaction() as conn:  # an event and its impression: both in a snapshot or neither
            store.add_events(ev, conn)
            store.log_impression_rows(
                [(f"r{n}", f"writer-{n}", "P0001", 0, 1.0, "t", "recommend", None, None, 1e9)], conn
            )
        n += 1
        written.append(n)
    store.close()


def test_round_trip_while_a_writer_writes_serves_the_same_lists(shop, tmp_path: Path):
    settings, store = shop
    version = store.active_version()
    metrics = store.versions().set_index("version").loc[version, "metrics"]
    # recorded the way older versions did (absolute): the restored copy must not point back here
    store.register_version(version, status="complete", path=str(served_folder(store, settings.home)), metrics=metrics)
    stop, written = threading.Event(), [0]
    events_before = store.stats()["events"]
    writer = threading.Thread(target=_write_until, args=(store.url, stop, written))
    writer.start()
    try:
        while written[-1] < 20:  # the writer is under way before the backup starts
            time.sleep(0.01)
        r = runner.invoke(app, ["--home", str(settings.home), "backup", str(tmp_path / "bk"), "--json"])
        before_end = written[-1]
        while written[-1] < before_end + 20:  # and keeps writing after it
            time.sleep(0.01)
    finally:
        stop.set()
        writer.join()
    assert r.exit_code == 0, r.output
    manifest = json.loads(r.stdout.strip().splitlines()[-1])
    assert manifest["store"] == "sqlite" and manifest["versions"] == [store.active_version()]
    assert manifest["active_version"] == store.active_version() and manifest["folders"] == ["models", "search"]

    home2 = tmp_path / "elsewhere" / "home"
    r = runner.invoke(app, ["--home", str(home2), "restore", str(tmp_path / "bk")])
    assert r.exit_code == 0, r.output
    settings2 = load_settings(home=home2)
    store2 = open_store(settings2.store_url, create=False)
    # the restored version is found in the new home, by a path relative to it
    assert store2.active_version() == version
    assert store2.versions().set_index("version").loc[version, "path"] == f"models/{version}"
    assert served_folder(store2, settings2.home).is_relative_to(home2.resolve())
    # a consistent snapshot: every writer event has its impression, and some were written after it
    n_events = store2.stats()["events"] - events_before
    assert n_events == store2.stats()["impressions"] and 20 <= n_events < written[-1]
    assert _lists(settings2, store2) == _lists(settings, store)
    store2.close()


def test_restore_refuses_a_home_that_is_not_empty_unless_forced(shop, backup_dir: Path, tmp_path: Path):
    settings, store = shop
    home = tmp_path / "used"
    assert runner.invoke(app, ["--home", str(home), "init"]).exit_code == 0
    r = runner.invoke(app, ["--home", str(home), "restore", str(backup_dir)])
    assert r.exit_code == 2 and "is not empty" in r.output and "--force" in r.output
    assert open_store(f"sqlite:///{home / DATABASE}").stats()["products"] == 0  # untouched
    r = runner.invoke(app, ["--home", str(home), "restore", str(backup_dir), "--force"])
    assert r.exit_code == 0, r.output
    restored = open_store(f"sqlite:///{home / DATABASE}")
    assert restored.stats()["products"] == store.stats()["products"]
    assert restored.active_version() == store.active_version()
    restored.close()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / MANIFEST).unlink(), "not a shopsense backup"),
        (lambda d: _edit(d, format_version=99), "backup format 99"),
        (lambda d: _edit(d, versions=["../../etc"]), "list of version names"),
        (lambda d: shutil.rmtree(next((d / "models").iterdir())), "has no manifest.json"),
        (lambda d: (d / DATABASE).write_bytes(b"not a database" * 100), "not a shopsense database"),
    ],
)
def test_restore_validates_the_backup(backup_dir: Path, tmp_path: Path, damage, message):
    damage(backup_dir)
    r = runner.invoke(app, ["--home", str(tmp_path / "new"), "restore", str(backup_dir)])
    assert r.exit_code == 2 and message in r.output, r.output
    assert not (tmp_path / "new" / DATABASE).exists()


def _edit(folder: Path, **changes: object) -> None:
    m = json.loads((folder / MANIFEST).read_text())
    (folder / MANIFEST).write_text(json.dumps({**m, **changes}))


def test_backup_wants_a_new_or_empty_folder(shop, tmp_path: Path):
    settings, _ = shop
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    r = runner.invoke(app, ["--home", str(settings.home), "backup", str(tmp_path / "full")])
    assert r.exit_code == 2 and "not an empty folder" in r.output


@pytest.mark.postgres
def test_postgresql_backup_copies_the_models_and_says_how_to_dump(pg_store: KnowledgeStore, tmp_path: Path):
    home = tmp_path / "home"
    (home / "models" / "v1").mkdir(parents=True)
    (home / "models" / "v1" / "manifest.json").write_text("{}")
    pg_store.register_version("v1", status="complete", path="models/v1")
    m = backup(pg_store, home, tmp_path / "bk")
    assert m["database"] is None and m["versions"] == ["v1"] and "pg_dump" in m["guidance"]
    assert (tmp_path / "bk" / "models" / "v1" / "manifest.json").exists() and not (tmp_path / "bk" / DATABASE).exists()
    r = runner.invoke(app, ["--home", str(tmp_path / "h2"), "restore", str(tmp_path / "bk")])
    assert r.exit_code == 2 and "restore it into a postgresql store" in r.output
