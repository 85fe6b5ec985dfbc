"""The ``[engine]`` and ``[online]`` settings sections: read from a TOML file and ``SHOPSENSE_...``
variables, and used by training, the CLI, evaluation and the online recommender."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shopsense.cli.main import app
from shopsense.config import Settings, load_settings, settings_json
from shopsense.engine_config import EngineConfig, OnlineConfig
from shopsense.exceptions import ConfigError

TOML = """
[engine]
ranker = "lambdarank"
per_source = 10
refit_epochs = 0
ease = false
itemknn = false
content = false

[engine.sequential]
dim = 16
heads = 1
layers = 1
epochs = 2

[engine.ranker_config]
rounds = 5
min_data_in_leaf = 1

[online]
diversity = 0.25
"""


def test_toml_sets_the_engine_and_online_sections(tmp_path: Path):
    path = tmp_path / "shop.toml"
    path.write_text(TOML + "cold_slot = false\n\n[engine.als]\nfactors = 8\n", encoding="utf-8")
    s = load_settings(path)
    assert s.engine.ranker == "lambdarank" and s.engine.ranker_config.rounds == 5
    assert s.engine.als is not None and s.engine.als.factors == 8  # off by default, on with a table
    assert s.engine.ease is None and s.engine.content is None  # `false`: TOML has no null
    # a partial table keeps the engine's own defaults for the keys it does not name
    assert s.engine.sequential is not None and s.engine.sequential.dim == 16
    assert s.engine.sequential.max_seconds == EngineConfig().sequential.max_seconds == 240.0  # type: ignore[union-attr]
    assert s.online.diversity == 0.25 and s.online.cold_slot is None
    assert Settings.model_validate_json(settings_json(s)) == s  # handed to workers and trainers intact


def test_defaults_are_the_configs_own():
    s = load_settings()
    assert s.engine == EngineConfig() and s.online == OnlineConfig()


def test_environment_variables_set_engine_and_online_knobs(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SHOPSENSE_ENGINE__ALS__FACTORS", "12")
    monkeypatch.setenv("SHOPSENSE_ENGINE__COVISIT__WINDOW", "7")
    monkeypatch.setenv("SHOPSENSE_ONLINE__COLD_SLOT", "4")
    monkeypatch.setenv("SHOPSENSE_ONLINE__DIVERSITY", "0.5")
    s = load_settings()
    assert s.engine.als is not None and s.engine.als.factors == 12
    assert s.engine.covisit is not None and s.engine.covisit.window == 7
    assert s.engine.covisit.recency_decay == 0.8  # the engine's default, not CoVisitConfig's 0.7
    assert s.online.cold_slot == 4 and s.online.diversity == 0.5


def test_a_bad_knob_names_its_field(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text('[engine]\nranker = "magic"\n\n[online]\ndiversty = 0.2\n', encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_settings(path)
    assert "engine.ranker" in str(e.value) and "online.diversty" in str(e.value)


def test_evaluation_builds_the_engine_from_the_settings(monkeypatch: pytest.MonkeyPatch):
    from shopsense.training import EngineRecommender, default_recommender

    monkeypatch.setenv("SHOPSENSE_ENGINE__RANKER", "lambdarank")
    assert default_recommender(load_settings()).config.ranker == "lambdarank"
    assert EngineRecommender().config.ranker == "lambdarank"  # settings from the environment
    assert EngineRecommender(EngineConfig(per_source=3)).config.per_source == 3  # an explicit config wins


def test_cli_trains_and_serves_with_the_toml_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`shopsense --config F train` fits the engine the file and the variables describe; the
    recommender of that version runs with the file's [online] section."""
    from shopsense.ranking.pipeline import Engine
    from shopsense.recommend import Recommender
    from shopsense.store import open_store
    from tests.test_recommend import _events, _products

    _products().assign(title=lambda d: d["item_id"]).to_csv(tmp_path / "p.csv", index=False)  # no text: no encoder
    _events().to_csv(tmp_path / "e.csv", index=False)
    (tmp_path / "shop.toml").write_text(TOML, encoding="utf-8")
    monkeypatch.setenv("SHOPSENSE_ENGINE__ALS__FACTORS", "4")
    monkeypatch.setenv("SHOPSENSE_ENGINE__ALS__ITERATIONS", "2")
    monkeypatch.setenv("SHOPSENSE_ONLINE__COLD_SLOT", "5")
    cli = ["--home", str(tmp_path / "home"), "--config", str(tmp_path / "shop.toml")]
    runner = CliRunner()
    assert runner.invoke(app, [*cli, "ingest", "products", str(tmp_path / "p.csv")]).exit_code == 0
    assert runner.invoke(app, [*cli, "ingest", "events", str(tmp_path / "e.csv")]).exit_code == 0
    r = runner.invoke(app, [*cli, "train", "--json"])
    assert r.exit_code == 0, r.output
    folder = Path(json.loads(r.stdout.strip().splitlines()[-1])["path"])
    engine = Engine.load(folder / "engine")
    assert engine.config.ranker == "lambdarank" and engine.ranker is not None  # from the file
    assert engine.config.als is not None and engine.config.als.factors == 4  # from the environment
    assert sorted(engine.models) == ["als", "covisit", "sequential"]
    r = runner.invoke(app, [*cli, "recommend", "u0", "-k", "2", "--json"])
    assert r.exit_code == 0, r.output
    settings = load_settings(tmp_path / "shop.toml", home=tmp_path / "home")
    store = open_store(settings.store_url, create=False)
    try:
        online = Recommender.from_store(store, settings).config
    finally:
        store.close()
    assert online.diversity == 0.25 and online.cold_slot == 5


def test_a_servers_trainer_trains_with_the_servers_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """POST /train starts `training_jobs.main` in a new process: it must use the settings the server
    handed over (its --config file included), not only the environment."""
    from shopsense import training
    from shopsense.config import SETTINGS_JSON_ENV
    from shopsense.service import training_jobs
    from shopsense.store import open_store

    server = load_settings(home=tmp_path, engine={"ranker": "lambdarank"}, online={"diversity": 0.4})
    open_store(server.store_url).close()
    monkeypatch.setenv(SETTINGS_JSON_ENV, settings_json(server))
    seen: list[Settings] = []

    def fake_train(store, settings, **kwargs):
        seen.append(settings)
        return training.TrainResult("v1", tmp_path, {})

    monkeypatch.setattr(training, "train", fake_train)
    monkeypatch.setattr("sys.argv", ["trainer"])
    training_jobs.main()
    assert seen[0].engine.ranker == "lambdarank" and seen[0].online.diversity == 0.4
