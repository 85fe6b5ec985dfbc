"""The growth benchmark's report (benchmarks/scale_report.py): runs of different trainers at the same
size, saved to separate JSON files, are merged stage by stage, not one replacing the other."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from scale_report import SizeRun, Stage, StepResult, exponents, report_from_json  # noqa: E402


def _train(trainer: str, seconds: float) -> StepResult:
    stages = [
        Stage("read the store", seconds / 4, seconds / 4, 900.0),
        Stage("fit covisit", seconds / 2, seconds, 1500.0),
    ]
    return StepResult(f"train {trainer}", True, 0, seconds, seconds * 1.2, 1500.0, 1400.0, stages)


def _save(path: Path, runs: list[SizeRun], command: str) -> Path:
    head = {"command": command, "cpu": "test CPU", "cores": 2, "memory_gb": 24.0, "load_average_start": [0.1] * 3}
    path.write_text(json.dumps({**head, "started": "now", "minutes": 1.0, "sizes": [asdict(r) for r in runs]}))
    return path


def test_runs_of_one_size_from_two_files_are_merged(tmp_path: Path) -> None:
    local = SizeRun(3_000_000, 300_000, 100_000, steps={"train local-sparse": _train("local-sparse", 100.0)})
    local.serving["local-sparse"] = {
        "ready_s": 60.0,
        "worker_rss_mb_ready": [2500.0, 2600.0],
        "worker_rss_mb_peak": [2550.0, 2650.0],
        "rate": 200,
        "load": {"achieved_rps": 200.0, "p50_ms": 5.0, "p99_ms": 12.0, "statuses": {"200": 6000}, "errors": 0},
        "load_average": [1.0, 1.0, 1.0],
    }
    spark3 = SizeRun(3_000_000, 300_000, 100_000, steps={"train spark": _train("spark", 300.0)})
    spark10 = SizeRun(10_000_000, 1_000_000, 100_000, steps={"train spark": _train("spark", 900.0)})
    a = _save(tmp_path / "a.json", [local], "local run")
    b = _save(tmp_path / "b.json", [spark3, spark10], "spark run")

    text = report_from_json([a, b], executors=[4])

    three = text.split("### 3,000,000 events")[1].split("### 10,000,000 events")[0]
    assert "| stage | local-sparse | spark |" in three
    assert "| total (train) | 100.0 / 120.0 / 1,500 | 300.0 / 360.0 / 1,500 |" in three
    assert "local run + spark run" in text
    assert "| local-sparse | 60.0 | 2,500, 2,600; 2,550, 2,650 | 200 | 200.0 | 5.0 | 12.0 | 0 |" in three
    # spark's exponent comes from its two sizes: 300 -> 900 s over 3M -> 10M events
    ex = {(e["trainer"], e["stage"]): e for e in exponents([local, spark10])}
    assert ("spark", "total (train)") not in ex  # one size of spark only in these two
    merged = report_from_json([b, a], executors=[4])  # the order of the files does not lose a trainer
    assert "| stage | local-sparse | spark |" in merged.split("### 3,000,000 events")[1]


def test_the_cluster_estimate_keeps_the_serial_stages_whole() -> None:
    """Stages that do not spread over executors (the sequential model here) bound the cluster's time."""

    def run(events: int, scale: float) -> SizeRun:
        seq = Stage("fit sequential (all data)", 500.0 * scale, 500.0 * scale, 2000.0)
        cov = Stage("fit covisit (all data)", 100.0 * scale, 200.0 * scale, events / 1000.0)
        steps = {
            "train local-sparse": StepResult("train local-sparse", True, 0, 0.0, 0.0, 0.0, 0.0, [seq, cov]),
            "train spark": StepResult("train spark", True, 0, 0.0, 0.0, 0.0, 0.0, [seq, cov]),
        }
        return SizeRun(events, events // 10, 1000, steps=steps)

    from scale_report import estimate

    runs = [run(1_000_000, 1.0), run(10_000_000, 2.0)]
    text = estimate(runs, exponents(runs), mem_gb=24.0, executors=[4])
    # at 10M: local 1,000 + 200 s; cluster 1,000 s of the serial stage + 400 CPU s / (4 x 4 x 0.7)
    assert "at 10,000,000: local 1,200 s, cluster 1,036 s" in text
    # co-visitation's memory grows as events^1 (1,000 MB at 1M, 10,000 at 10M): 24 GB at 24.6M events
    assert (
        "'fit covisit (all data)' (10,000 MB at 10,000,000 events, growing as events^1.0) at about 24,576,000" in text
    )
