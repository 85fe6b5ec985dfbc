"""`shopsense ingest ...`: reports, exit codes, messages on stderr, options."""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
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


def _bad_files(folder: Path) -> dict[str, Path]:
    """Files that are not rows: a folder, corrupt and truncated gzip, corrupt and truncated Parquet."""
    rows = "".join(f"I{i},Title number {i}\n" for i in range(20_000))
    gz = gzip.compress(("item_id,title\n" + rows).encode())
    jl = gzip.compress("".join(f'{{"item_id": "I{i}", "title": "t"}}\n' for i in range(5_000)).encode())
    pq.write_table(pa.table({"item_id": [f"I{i}" for i in range(20_000)], "title": ["t"] * 20_000}), folder / "ok.pq")
    parquet = bytearray((folder / "ok.pq").read_bytes())
    parquet[len(parquet) // 3 : len(parquet) // 3 + 500] = bytes(range(250)) * 2
    files = {
        "folder.csv": None,
        "garbage.csv.gz": b"\x1f\x8b\x08\x00" + bytes(range(256)),
        "header-only-readable.csv.gz": gz[: len(gz) * 2 // 3],  # fails after batches were written
        "truncated.jsonl.gz": jl[: len(jl) // 2],
        "garbage.parquet": b"PAR1" + bytes(300) + b"PAR1",
        "corrupt.parquet": bytes(parquet),
    }
    out = {}
    for name, data in files.items():
        p = folder / name
        if data is None:
            p.mkdir()
        else:
            p.write_bytes(data)
        out[name] = p
    return out


def _one_line_naming(r: Any, path: Path) -> None:
    assert r.exit_code == 2, (path, r.output, r.exception)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "Traceback" not in r.output, (path, r.stderr)


def test_files_that_are_not_rows_are_exit_2_with_one_line(tmp_path: Path) -> None:
    home = str(tmp_path / "kb")
    (tmp_path / "e.csv").write_text(EVENTS, encoding="utf-8")
    (tmp_path / "p.csv").write_text(PRODUCTS.replace("product_id,name", "item_id,title"), encoding="utf-8")
    assert runner.invoke(app, ["--home", home, "ingest", "products", str(tmp_path / "p.csv")]).exit_code == 0
    before = _stats(home)
    small_batches = tmp_path / "small.toml"
    small_batches.write_text("[ingest]\nbatch_rows = 1000\n", encoding="utf-8")
    for path in _bad_files(tmp_path).values():
        for kind in ("products", "events"):
            r = runner.invoke(app, ["--home", home, "--config", str(small_batches), "ingest", kind, str(path)])
            _one_line_naming(r, path)
        r = runner.invoke(app, ["evaluate", "recommend", "--products", str(path), "--events", str(tmp_path / "e.csv")])
        _one_line_naming(r, path)
        q = ["--products", str(tmp_path / "p.csv"), "--queries", str(path), "--qrels", str(path)]
        _one_line_naming(runner.invoke(app, ["evaluate", "search", *q]), path)
    assert _stats(home) == before


def test_unreadable_config_and_synonyms_files_are_exit_2(tmp_path: Path) -> None:
    (tmp_path / "conf.toml").mkdir()
    _one_line_naming(runner.invoke(app, ["--config", str(tmp_path / "conf.toml"), "stats"]), tmp_path / "conf.toml")
    home = str(tmp_path / "kb")
    (tmp_path / "p.csv").write_text(PRODUCTS.replace("product_id,name", "item_id,title"), encoding="utf-8")
    assert runner.invoke(app, ["--home", home, "ingest", "products", str(tmp_path / "p.csv")]).exit_code == 0
    (tmp_path / "syn.txt").write_bytes("fridge, refrigerator\n".encode("utf-16"))
    (tmp_path / "syn.json").write_text('[["fridge", "refrigerator"]', encoding="utf-8")
    for syn in (tmp_path / "syn.txt", tmp_path / "syn.json"):
        r = runner.invoke(app, ["--home", home, "search-index", "--lexical-only", "--synonyms", str(syn)])
        _one_line_naming(r, syn)


def test_a_locked_store_is_exit_2_with_one_line(tmp_path: Path) -> None:
    home = tmp_path / "kb"
    (tmp_path / "e.csv").write_text(EVENTS, encoding="utf-8")
    assert runner.invoke(app, ["--home", str(home), "init"]).exit_code == 0
    holder = sqlite3.connect(home / "shopsense.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process in the middle of a write
    try:
        r = runner.invoke(
            app,
            ["--home", str(home), "ingest", "events", str(tmp_path / "e.csv")],
            env={"SHOPSENSE_STORE_TIMEOUT_S": "0.1"},
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert r.exit_code == 2, (r.output, r.exception)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "is busy (database is locked) after waiting 0.1 s" in lines[0], r.stderr
