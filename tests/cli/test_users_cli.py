"""``shopsense users ...`` and pseudonyms at every entry: file ingest, HTTP and the CLI store one id."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from shopsense import columns as C
from shopsense.cli.main import app
from shopsense.config import load_settings
from shopsense.service.app import create_app
from shopsense.service.keys import create_key
from shopsense.store import open_store
from tests.service.conftest import fake_loader

runner = CliRunner()

PRODUCTS = "item_id,title\nA,Apple\nB,Banana\n"
ALICE = "alice.distinctive@example.com"
EVENTS = (
    "user_id,item_id,event_type,timestamp,query\n"
    f" {ALICE} ,A,view,1700000000,\n"  # surrounding spaces: the one id rule removes them
    f"{ALICE},,search,1700000001,zyzzyva for alice\n"
    "bob,B,view,1700000002,\n"
    "a/b,B,view,1700000003,\n"
)


def _kb(tmp_path: Path, toml: str) -> tuple[list[str], str]:
    cfg = tmp_path / "shopsense.toml"
    cfg.write_text(toml, encoding="utf-8")
    home = tmp_path / "kb"
    (tmp_path / "p.csv").write_text(PRODUCTS, encoding="utf-8")
    (tmp_path / "e.csv").write_text(EVENTS, encoding="utf-8")
    base = ["--home", str(home), "--config", str(cfg)]
    for kind, f in (("products", "p.csv"), ("events", "e.csv")):
        r = runner.invoke(app, [*base, "ingest", kind, str(tmp_path / f)])
        assert r.exit_code == 0, r.output
    return base, f"sqlite:///{home / 'shopsense.db'}"


def test_file_ingested_users_are_pseudonymised_and_deleted(tmp_path: Path) -> None:
    base, url = _kb(tmp_path, '[privacy]\npseudonym_secret = "s3cret"\n')
    store = open_store(url)
    stored = set(store.events()[C.USER])
    assert len(stored) == 3 and all(u.startswith("u_") for u in stored)  # no raw id reached the store
    assert ALICE not in stored and "bob" not in stored
    # the service maps the same raw id to the same stored id: it finds and deletes the file's events
    settings = load_settings(tmp_path / "shopsense.toml", home=tmp_path / "kb")
    admin = {"X-API-Key": create_key(store, ["admin"])[1]}
    with TestClient(create_app(settings, loader=fake_loader(store, settings), block_on_load=True)) as c:
        exported = c.get(f"/users/{quote(ALICE)}/export", headers=admin).json()
        assert [e[C.EVENT_TYPE] for e in exported["events"]] == ["view", "search"]
        assert exported["given_id"] == ALICE and exported[C.USER].startswith("u_")
        r = c.delete(f"/users/{quote(' ' + ALICE, safe='')}", headers=admin)
        assert r.status_code == 200 and r.json()["deleted"]["events"] == 2, r.text
    assert len(set(store.events()[C.USER])) == 2
    # and the CLI: by id, and from a file (one id a line, blank lines skipped)
    r = runner.invoke(app, [*base, "users", "delete", "bob", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["deleted"]["events"] == 1
    (tmp_path / "ids.txt").write_text("a/b\n\nnobody\n", encoding="utf-8")
    r = runner.invoke(app, [*base, "users", "delete", "--from-file", str(tmp_path / "ids.txt")])
    assert r.exit_code == 0, r.output
    assert "deleted 2 shopper(s): events 1" in r.stdout
    assert store.events().empty and store.stats()["users"] == 0
    # nor do the database files hold them any more (secure_delete, WAL truncated)
    db = tmp_path / "kb" / "shopsense.db"
    raw = b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal")) if p.exists())
    for gone in [*stored, "zyzzyva for alice"]:
        assert gone.encode() not in raw, gone


def test_the_old_service_setting_still_pseudonymises(tmp_path: Path) -> None:
    _, url = _kb(tmp_path, '[service]\npseudonym_secret = "s3cret"\n')
    assert all(u.startswith("u_") for u in open_store(url).events()[C.USER])


def test_export_and_opt_out_from_the_cli(tmp_path: Path) -> None:
    base, url = _kb(tmp_path, "")
    r = runner.invoke(app, [*base, "users", "opt-out", ALICE])
    assert r.exit_code == 0 and "opted out" in r.stdout, r.output
    r = runner.invoke(app, [*base, "users", "export", f"  {ALICE}"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["given_id"] == data[C.USER] == ALICE and data[C.OPTED_OUT] is True
    assert [e[C.QUERY] for e in data["events"]] == [None, "zyzzyva for alice"]
    out = tmp_path / "exports" / "alice.json"
    assert runner.invoke(app, [*base, "users", "opt-in", ALICE]).exit_code == 0
    r = runner.invoke(app, [*base, "users", "export", ALICE, "--out", str(out)])
    assert r.exit_code == 0 and "2 events" in r.stdout, r.output
    assert json.loads(out.read_text(encoding="utf-8"))[C.OPTED_OUT] is False
    assert open_store(url).opted_out() == set()


def test_bad_ids_are_exit_2_with_the_line(tmp_path: Path) -> None:
    base, url = _kb(tmp_path, "")
    (tmp_path / "ids.txt").write_text("bob\nbad\x01id\n", encoding="utf-8")
    r = runner.invoke(app, [*base, "users", "delete", "--from-file", str(tmp_path / "ids.txt")])
    assert r.exit_code == 2 and "ids.txt:2" in r.stderr and "control character" in r.stderr
    assert runner.invoke(app, [*base, "users", "delete", "   "]).exit_code == 2
    assert runner.invoke(app, [*base, "users", "delete"]).exit_code == 2
    assert len(open_store(url).events()) == 4  # nothing was deleted


def test_link_from_the_cli_with_pseudonyms(tmp_path: Path) -> None:
    base, url = _kb(tmp_path, '[privacy]\npseudonym_secret = "s3cret"\n')
    r = runner.invoke(app, [*base, "users", "link", ALICE, "bob", "--json"])  # bob browsed anonymously
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {
        "user_id": ALICE,
        "anonymous_id": "bob",
        "events_moved": 1,
        "impressions_moved": 0,
        "already_linked": False,
        "opted_out": False,
    }
    store = open_store(url)
    assert len(set(store.events()[C.USER])) == 2  # alice (with bob's view) and a/b, all pseudonyms
    r = runner.invoke(app, [*base, "users", "link", ALICE, "bob"])
    assert r.exit_code == 0 and "linked before" in r.stdout, r.output
    data = json.loads(runner.invoke(app, [*base, "users", "export", ALICE]).stdout)
    (linked,) = data["linked_ids"]["anonymous_ids"]
    assert linked.startswith("u_") and "bob" not in linked  # stored ids only, as everywhere
    assert [e[C.ITEM] for e in data["events"]] == ["A", None, "B"]
    r = runner.invoke(app, [*base, "users", "link", ALICE, f" {ALICE}"])
    assert r.exit_code == 2 and "itself" in r.stderr
    r = runner.invoke(app, [*base, "users", "delete", ALICE, "--json"])
    assert json.loads(r.stdout)["deleted"] == {
        "events": 3,
        "impressions": 0,
        "users": 2,
        "links": 1,
        "query_vectors": 0,
    }
    assert len(store.events()) == 1
