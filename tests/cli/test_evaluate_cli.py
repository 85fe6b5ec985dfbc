"""``shopsense evaluate recommend|search --json`` on tiny files in CSV and JSONL, and on malformed ones."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from shopsense.cli.main import app

runner = CliRunner()

PRODUCTS = pd.DataFrame(
    {
        "item_id": ["a", "b", "c", "d", "e", "f"],
        "title": [
            "red cordless drill",
            "blue garden hose",
            "steel claw hammer",
            "white ceiling paint",
            "brass door hinge",
            "led light bulb",
        ],
    }
)
# 5 users, 3-4 events each, one second apart
SEQ = {"u1": "abca", "u2": "bcd", "u3": "acde", "u4": "bdf", "u5": "cae"}
EVENTS = pd.DataFrame(
    [(u, i, "purchase", 1_700_000_000 + 10 * n + j) for n, (u, s) in enumerate(SEQ.items()) for j, i in enumerate(s)],
    columns=["user_id", "item_id", "event_type", "timestamp"],
)


def _write(df: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".jsonl":
        df.to_json(path, orient="records", lines=True)
    else:
        df.to_csv(path, index=False, sep="\t" if path.suffix == ".tsv" else ",")
    return path


@pytest.mark.parametrize("ext", [".csv", ".jsonl"])
def test_evaluate_recommend_json(tmp_path: Path, ext: str) -> None:
    p = _write(PRODUCTS, tmp_path / f"products{ext}")
    e = _write(EVENTS, tmp_path / f"events{ext}")
    args = ["evaluate", "recommend", "--products", str(p), "--events", str(e), "--json", "--peers", "pop"]
    r = runner.invoke(app, [*args, "--no-engine"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    for key in ("ndcg@10", "hr@10", "ndcg@20", "hr@20", "coverage@10", "pop"):
        assert key in out
    pop = out["pop"]
    # 6 items < 10: every target is in every top-10 list except u1's, whose target a is also in its
    # history (a b c) and masked with it (protocol 2: a miss for every model, counted)
    assert pop["hr@10"] == pytest.approx(4 / 5)
    assert pop["n_users"] == 5 and pop["repeated_targets"] == 1 and pop["protocol"] == 2
    assert 0 < pop["ndcg@10"] <= 1
    assert set(pop["slices"]) >= {"users_hist<=5", "targets_pop<=5"}
    assert out["engine_available"] is False and out["ndcg@10"] is None


@pytest.mark.slow
def test_evaluate_recommend_engine_json(tmp_path: Path) -> None:
    """The engine's own pipeline (tuned on validation, refitted, scored on test) on files it has never seen."""
    pytest.importorskip("shopsense.training")
    p = _write(PRODUCTS, tmp_path / "products.csv")
    e = _write(EVENTS, tmp_path / "events.jsonl")
    r = runner.invoke(app, ["evaluate", "recommend", "--products", str(p), "--events", str(e), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["engine_available"] is True
    assert out["hr@10"] == pytest.approx(4 / 5)  # 6 items: every target is in a full list but u1's repeated one
    for key in ("ndcg@10", "ndcg@20", "hr@20", "coverage@10"):
        assert 0 < out[key] <= 1


def test_evaluate_recommend_malformed_events(tmp_path: Path) -> None:
    p = _write(PRODUCTS, tmp_path / "products.csv")
    bad = tmp_path / "events.csv"
    bad.write_text("user_id,item_id,event_type,timestamp\nu1,a,purchase,not-a-time\nu1,b,teleport,1\n")
    r = runner.invoke(app, ["evaluate", "recommend", "--products", str(p), "--events", str(bad), "--json"])
    assert r.exit_code == 2
    assert "events.csv" in r.stderr and "timestamp" in r.stderr


def test_evaluate_recommend_unknown_peer(tmp_path: Path) -> None:
    p = _write(PRODUCTS, tmp_path / "products.csv")
    e = _write(EVENTS, tmp_path / "events.csv")
    r = runner.invoke(app, ["evaluate", "recommend", "--products", str(p), "--events", str(e), "--peers", "magic"])
    assert r.exit_code == 2 and "valid: all" in r.stderr


QUERIES = pd.DataFrame({"query_id": ["1", "2", "3"], "query": ["cordless drill", "garden hose", "door hinge brass"]})
QRELS = pd.DataFrame(
    {
        "query_id": ["1", "1", "2", "3"],
        "item_id": ["a", "c", "b", "e"],
        "relevance": [3.0, 1.0, 3.0, 2.67],
    }
)


@pytest.mark.parametrize("ext", [".csv", ".jsonl"])
def test_evaluate_search_json_bm25(tmp_path: Path, ext: str) -> None:
    p = _write(PRODUCTS, tmp_path / f"products{ext}")
    q = _write(QUERIES, tmp_path / f"queries{ext}")
    j = _write(QRELS, tmp_path / f"qrels{ext}")
    args = ["evaluate", "search", "--products", str(p), "--queries", str(q), "--qrels", str(j), "--json"]
    r = runner.invoke(app, [*args, "--peers", "bm25", "--no-engine"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    for key in ("ndcg@10", "recall@100", "mrr", "latency_p50_ms", "latency_p99_ms", "bm25"):
        assert key in out
    # each query's best product shares its words: BM25 ranks it first
    assert out["bm25"]["ndcg@10"] == pytest.approx(1.0)
    assert out["bm25"]["mrr"] == pytest.approx(1.0)
    assert out["bm25"]["n_queries"] == 3
    assert out["engine_available"] is False and out["ndcg@10"] is None


def test_evaluate_search_malformed_qrels(tmp_path: Path) -> None:
    p = _write(PRODUCTS, tmp_path / "products.csv")
    q = _write(QUERIES, tmp_path / "queries.csv")
    bad = tmp_path / "qrels.csv"
    bad.write_text("query_id,product,grade\n1,a,3\n")
    r = runner.invoke(
        app, ["evaluate", "search", "--products", str(p), "--queries", str(q), "--qrels", str(bad), "--peers", "bm25"]
    )
    assert r.exit_code == 2
    assert "item_id" in r.stderr and "relevance" in r.stderr
