"""``shopsense versions list|activate|rollback``: the CLI side of GET /models, POST
/models/{version}/activate and POST /models/rollback."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from shopsense.cli.main import app
from shopsense.store import KnowledgeStore, open_store
from shopsense.versions import write_manifest

runner = CliRunner()


def _home(tmp_path: Path) -> tuple[list[str], KnowledgeStore]:
    home = tmp_path / "home"
    store = open_store(f"sqlite:///{home / 'shopsense.db'}")
    return ["--home", str(home)], store


def _complete(store: KnowledgeStore, home: Path, version: str) -> None:
    folder = home / "models" / version
    folder.mkdir(parents=True)
    write_manifest(folder, version, last_event_ts=0.0, metrics={"n_items": 3})
    store.register_version(version, status="complete", path=f"models/{version}", metrics={"n_items": 3})
    store.activate_version(version)


def test_list_activate_and_rollback(tmp_path: Path) -> None:
    base, store = _home(tmp_path)
    r = runner.invoke(app, [*base, "versions", "list"])
    assert r.exit_code == 0 and "no model versions" in r.output
    _complete(store, tmp_path / "home", "v1")
    _complete(store, tmp_path / "home", "v2")
    store.register_version("v3", status="failed", metrics={"failure": "RuntimeError: boom"})

    r = runner.invoke(app, [*base, "versions", "list"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert [ln.split()[0] for ln in lines] == ["v1", "v2", "v3"]
    assert "served" in lines[1] and "served" not in lines[0] and "n_items=3" in lines[1]
    assert "failed" in lines[2] and "RuntimeError: boom" in lines[2]

    r = runner.invoke(app, [*base, "versions", "activate", "v1"])
    assert r.exit_code == 0 and "version v1 is active" in r.output and store.active_version() == "v1"
    r = runner.invoke(app, [*base, "versions", "rollback"])
    assert r.exit_code == 0 and "version v2 is active" in r.output and store.active_version() == "v2"

    r = runner.invoke(app, [*base, "versions", "list", "--json"])
    rows = [json.loads(line) for line in r.output.splitlines()]
    assert [(x["version"], x["active"], x["served"]) for x in rows] == [
        ("v1", False, False),
        ("v2", True, True),
        ("v3", False, False),
    ]
    assert "path" not in rows[0] and rows[1]["activated_at"] > rows[0]["created_at"]


def test_errors_exit_2_with_a_message(tmp_path: Path) -> None:
    base, store = _home(tmp_path)
    r = runner.invoke(app, [*base, "versions", "rollback"])
    assert r.exit_code == 2 and "no earlier model version to roll back to: no version is complete" in r.output
    _complete(store, tmp_path / "home", "v1")
    r = runner.invoke(app, [*base, "versions", "rollback"])
    assert r.exit_code == 2 and "no other version was served before this one" in r.output
    r = runner.invoke(app, [*base, "versions", "activate", "nope"])
    assert r.exit_code == 2 and "unknown model version 'nope'" in r.output
    store.register_version("v2", status="training")
    r = runner.invoke(app, [*base, "versions", "activate", "v2"])
    assert r.exit_code == 2 and "is training, not complete" in r.output
    assert store.active_version() == "v1"
