"""``shopsense train --engine``: the options of the Spark trainer, checked before anything starts."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from shopsense.cli.main import app


def _train(tmp_path: Path, *args: str, env: dict[str, str] | None = None):
    runner = CliRunner()
    assert runner.invoke(app, ["--home", str(tmp_path), "init"]).exit_code == 0
    return runner.invoke(app, ["--home", str(tmp_path), "train", *args], env=env)


def test_an_unknown_engine_lists_the_valid_ones(tmp_path: Path):
    r = _train(tmp_path, "--engine", "flink")
    assert r.exit_code != 0 and "valid engines: local, spark" in r.output


def test_spark_options_need_the_spark_engine(tmp_path: Path):
    r = _train(tmp_path, "--master", "local[2]")
    assert r.exit_code != 0 and "--engine spark" in r.output
    r = _train(tmp_path, "--engine", "spark", "--incremental")
    assert r.exit_code != 0 and "--incremental is for the local trainer" in r.output


def test_the_spark_trainer_asks_for_the_sparse_sources_before_starting(tmp_path: Path):
    r = _train(tmp_path, "--engine", "spark", env={"SHOPSENSE_ENGINE__SOURCES": "all"})
    assert r.exit_code != 0 and 'sources = "sparse"' in r.output


def test_a_conf_pair_needs_an_equals_sign(tmp_path: Path):
    r = _train(
        tmp_path, "--engine", "spark", "--conf", "spark.driver.memory", env={"SHOPSENSE_ENGINE__SOURCES": "sparse"}
    )
    assert r.exit_code != 0 and "expected KEY=VALUE" in r.output


def test_reading_over_jdbc_needs_a_postgresql_store(tmp_path: Path):
    r = _train(tmp_path, "--engine", "spark", "--read", "jdbc", env={"SHOPSENSE_ENGINE__SOURCES": "sparse"})
    assert r.exit_code == 2 and "--read jdbc reads PostgreSQL; this store is sqlite" in r.output
    r = _train(tmp_path, "--read", "jdbc")
    assert r.exit_code != 0 and "--engine spark" in r.output
    r = _train(tmp_path, "--engine", "spark", "--read", "odbc", env={"SHOPSENSE_ENGINE__SOURCES": "sparse"})
    assert r.exit_code == 2 and "parquet or jdbc" in r.output
