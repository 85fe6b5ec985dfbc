"""Report rendering: only our sections of docs/benchmarks.md change; the HTML page has its charts."""

from __future__ import annotations

from pathlib import Path

from shopsense.evaluation.report import html_report, recommendation_section, search_section, update_markdown

RESULTS = {
    "environment": {"machine": "2 cores", "versions": {"numpy": "2"}, "command": "make bench"},
    "recommendation": {
        "beauty": {
            "info": {"users": 3, "items": 4, "interactions": 9, "test_users": 3, "date": "today", "commit": "abc1234"},
            "models": {
                "pop": {
                    "hr@10": 0.5,
                    "ndcg@10": 0.25,
                    "coverage@10": 0.1,
                    "fit_seconds": 0.01,
                    "params": {},
                    "slices": {"users_hist<=5": {"ndcg@10": 0.25, "n": 3}},
                },
            },
        }
    },
    "search": {
        "homedepot": {
            "info": {"products": 10, "queries": 2, "date": "today", "commit": "def5678"},
            "models": {"bm25": {"ndcg@10": 0.4, "recall@100": 0.8, "mrr": 0.5, "latency_p50_ms": 1.0}},
        }
    },
}


def test_sections_render_the_numbers() -> None:
    rec = recommendation_section(RESULTS)
    assert rec.startswith("## Recommendation") and "### beauty" in rec
    assert "| pop | 0.5000 | 0.2500 |" in rec
    assert "0.2500 (3)" in rec
    assert "Run today at commit abc1234." in rec  # each table names the code it measured
    s = search_section(RESULTS)
    assert "| bm25 | 0.4000 | 0.8000 | 0.5000 |" in s
    assert "Run today at commit def5678." in s


def test_update_markdown_keeps_other_sections(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Ingest\n\nfast\n\n## Recommendation\n\nold numbers\n\n## Serving\n\nslow\n")
    update_markdown(doc, {"Recommendation": recommendation_section(RESULTS), "Search": search_section(RESULTS)})
    text = doc.read_text()
    assert "old numbers" not in text
    assert (
        text.index("## Ingest") < text.index("## Recommendation") < text.index("## Serving") < text.index("## Search")
    )
    assert "fast" in text and "slow" in text
    update_markdown(doc, {"Search": search_section(RESULTS)})  # idempotent
    assert doc.read_text().count("## Search") == 1


def test_html_report_writes_charts(tmp_path: Path) -> None:
    page = html_report(RESULTS, tmp_path)
    assert (tmp_path / "rec_beauty.png").stat().st_size > 0
    assert (tmp_path / "slices_beauty.png").exists() and (tmp_path / "search_homedepot.png").exists()
    assert "rec_beauty.png" in page.read_text()


def test_update_markdown_leaves_hand_sections_with_a_longer_heading(tmp_path: Path) -> None:
    # docs/benchmarks.md keeps hand-written summaries under "## Recommendation quality vs peers" and
    # "## Search quality" above the generated "## Recommendation" and "## Search"
    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        "# Benchmarks\n\n## Recommendation quality vs peers\n\nsummary\n\n## Search quality\n\nhand\n\n"
        "## Recommendation\n\nold rec\n\n## Search\n\nold search\n"
    )
    update_markdown(doc, {"Recommendation": recommendation_section(RESULTS), "Search": search_section(RESULTS)})
    text = doc.read_text()
    assert "summary" in text and "hand" in text
    assert "old rec" not in text and "old search" not in text
    assert text.count("## Recommendation\n") == 1 and text.count("## Search\n") == 1
