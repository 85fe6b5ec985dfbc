"""``shopsense experiment start|list|report|stop``: the CLI side of ``/experiments``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from shopsense import columns as C
from shopsense.cli.main import app
from tests.cli.test_versions_cli import _complete, _home

runner = CliRunner()


def test_start_list_report_stop(tmp_path: Path) -> None:
    base, store = _home(tmp_path)
    _complete(store, tmp_path / "home", "v1")
    _complete(store, tmp_path / "home", "v2")
    r = runner.invoke(
        app,
        [
            *base,
            "experiment",
            "start",
            "price-test",
            "--arm",
            "control=v1",
            "--arm",
            "treatment=v2",
            "--split",
            "70,30",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "experiment price-test started (ab on recommend): control=v1 (70), treatment=v2 (30)" in r.output
    r = runner.invoke(app, [*base, "experiment", "list", "--json"])
    [listed] = [json.loads(line) for line in r.output.splitlines()]
    assert listed["status"] == "running" and [a["weight"] for a in listed["arms"]] == [70.0, 30.0]
    assert "salt" not in listed
    store.log_impressions(
        pd.DataFrame(
            {
                C.REQUEST_ID: ["r1", "r2"],
                C.USER: ["u1", "u2"],
                C.ITEM: ["a", "b"],
                C.POSITION: [0, 0],
                C.SURFACE: ["recommend"] * 2,
                C.TIMESTAMP: [1e10, 1e10],
                C.EXPERIMENT: ["price-test"] * 2,
                C.ARM: ["control", "treatment"],
            }
        )
    )
    r = runner.invoke(app, [*base, "experiment", "report", "price-test", "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["arms"]["control"]["users"] == 1 and rep["arms"]["treatment"]["impressions"] == 1
    assert rep["comparison"]["control"] == "control" and "ctr" in rep["comparison"]["arms"]["treatment"]
    r = runner.invoke(app, [*base, "experiment", "report", "price-test"])
    assert r.exit_code == 0 and "sample ratio" in r.output and "treatment vs control" in r.output
    r = runner.invoke(app, [*base, "experiment", "stop", "price-test"])
    assert r.exit_code == 0 and "stopped" in r.output
    r = runner.invoke(app, [*base, "experiment", "list"])
    assert "price-test  stopped" in r.output


def test_refusals_exit_2_with_one_line(tmp_path: Path) -> None:
    base, store = _home(tmp_path)
    _complete(store, tmp_path / "home", "v1")
    store.register_version("v2", status="training")
    for args, why in (
        (["--arm", "control=v1", "--arm", "treatment=v9"], "unknown model version 'v9'"),
        (["--arm", "control=v1", "--arm", "treatment=v2"], "'v2' is training, not complete"),
        (["--arm", "control=v1", "--arm", "treatment=v1", "--surface", "home"], "unknown surface 'home'"),
        (["--arm", "control=v1"], "at least two arms"),
    ):
        r = runner.invoke(app, [*base, "experiment", "start", "x", *args])
        assert r.exit_code == 2, r.output
        assert why in r.output and len(r.output.strip().splitlines()) == 1, r.output
    r = runner.invoke(app, [*base, "experiment", "stop", "x"])
    assert r.exit_code == 2 and "no experiment named 'x'" in r.output
