"""`shopsense ingest ...`: reports, exit codes, messages on stderr, options."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from shopsense.cli.main import app

runner = CliRunner()

PRODUCTS = "product_id,name,price\nA,Apple,1.5\nB,Banana,2\n"
EVENTS = "user_id,item_id,event_type,timestamp\nu1,A,view,1700000000\nu1,B,purchase,2023-11-14T22:13:20Z\n"


def _stats(home: str) -> dict:
    r = runner.invoke(app, ["--home", home, "stats", "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_ingest_products_events_and_users(tmp_path) -> None:
    home = str(tmp_path / "kb")
    (tmp_path / "p.csv").write_text(PRODUCTS, encoding="utf-8")
    (tmp_path / "e.csv").write_text(EVENTS, encoding="utf-8")
    (tmp_path / "u.txt").write_text('{"user_id": "u2", "attributes": {"vip": true}}\n', encoding="utf-8")
    r = runner.invoke(
        app,
        [
            "--home",
            home,
            "ingest",
            "products",
            str(tmp_path / "p.csv"),
            "--map",
            "product_id=item_id",
            "--map",
            "name=title",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "read 2, inserted 2" in r.stdout
    r = runner.invoke(app, ["--home", home, "ingest", "events", str(tmp_path / "e.csv"), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["inserted"] == 2
    r = runner.invoke(app, ["--home", home, "ingest", "users", str(tmp_path / "u.txt"), "--format", "jsonl"])
    assert r.exit_code == 0, r.output
    s = _stats(home)
    assert (s["products"], s["events"], s["users"]) == (2, 2, 2)


def test_bad_input_is_exit_2_with_file_line_column_on_stderr(tmp_path) -> None:
    home = str(tmp_path / "kb")
    (tmp_path / "e.csv").write_text(EVENTS + "u2,A,like,1700000000\n", encoding="utf-8")
    r = runner.invoke(app, ["--home", home, "ingest", "events", str(tmp_path / "e.csv")])
    assert r.exit_code == 2
    assert f"{tmp_path / 'e.csv'}:4 column 'event_type': unknown event type 'like'" in r.stderr
    assert _stats(home)["events"] == 0  # all or nothing


def test_skip_writes_rejects_and_succeeds(tmp_path) -> None:
    home = str(tmp_path / "kb")
    (tmp_path / "e.csv").write_text(EVENTS + "u2,A,like,1700000000\n", encoding="utf-8")
    rejects = tmp_path / "bad.jsonl"
    r = runner.invoke(
        app,
        ["--home", home, "ingest", "events", str(tmp_path / "e.csv"), "--on-error", "skip", "--rejects", str(rejects)],
    )
    assert r.exit_code == 0, r.output
    assert "rejected 1" in r.stdout
    assert json.loads(rejects.read_text(encoding="utf-8"))["line"] == 4
    assert _stats(home)["events"] == 2


def test_usage_errors_are_exit_2(tmp_path) -> None:
    home = str(tmp_path / "kb")
    (tmp_path / "e.csv").write_text(EVENTS, encoding="utf-8")
    cases = [
        (["ingest", "events", str(tmp_path / "missing.csv")], "no such file"),
        (["ingest", "events", str(tmp_path / "e.csv"), "--map", "foo=bar"], "'foo' not in the file"),
        (["ingest", "events", str(tmp_path / "e.csv"), "--map", "foo"], "SOURCE=TARGET"),
        (["ingest", "events", str(tmp_path / "e.csv"), "--on-error", "ignore"], "valid: fail, skip"),
        (["ingest", "events", str(tmp_path / "e.csv"), "--format", "xml"], "valid: csv"),
        (["ingest", "products", str(tmp_path / "e.csv")], "missing required product column(s) 'title'"),
    ]
    for args, message in cases:
        r = runner.invoke(app, ["--home", home, *args])
        assert r.exit_code == 2, (args, r.output)
        assert message in r.stderr, (args, r.stderr)
