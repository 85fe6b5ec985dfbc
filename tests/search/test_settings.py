"""Search settings in the settings file (``[search]``) and the environment (``SHOPSENSE_SEARCH__*``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from shopsense.config import SearchConfig, load_settings
from shopsense.exceptions import ConfigError
from shopsense.search import build_from_store, load_or_build
from shopsense.store import KnowledgeStore


def _toml(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "shopsense.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_toml_settings_change_search(tmp_path: Path, sqlite_store: KnowledgeStore, products: pd.DataFrame) -> None:
    sqlite_store.upsert_products(products)
    default = build_from_store(sqlite_store, load_settings(home=tmp_path / "a"), semantic=False)
    assert default.search("ryobi drill xyzzy").did_you_mean == "ryobi drill"
    assert default.search("fridge").items == []  # no synonyms by default
    syn = tmp_path / "synonyms.txt"
    syn.write_text("fridge, refrigerator\n", encoding="utf-8")
    toml = _toml(
        tmp_path,
        f"""
[search]
did_you_mean_min_results = 0
lexical_candidates = 2

[search.bm25]
synonyms_path = "{syn.as_posix()}"
""",
    )
    settings = load_settings(toml, home=tmp_path / "b")
    assert settings.search.did_you_mean_min_results == 0 and settings.search.bm25.synonyms_path == syn.as_posix()
    engine = build_from_store(sqlite_store, settings, semantic=False)
    assert engine.search("ryobi drill xyzzy").did_you_mean is None
    assert set(engine.search("fridge").items) == {"p4", "p5"}
    assert engine.search("ryobi").total == 2  # lexical_candidates caps the candidates


def test_query_time_settings_apply_to_a_saved_index(
    tmp_path: Path, sqlite_store: KnowledgeStore, products: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite_store.upsert_products(products)
    home = tmp_path / "home"
    built = build_from_store(sqlite_store, load_settings(home=home), semantic=False)
    built.save(home / "search")
    monkeypatch.setenv("SHOPSENSE_SEARCH__SPELLING", "false")
    monkeypatch.setenv("SHOPSENSE_SEARCH__DID_YOU_MEAN_MIN_RESULTS", "0")
    settings = load_settings(home=home)
    assert settings.search.spelling is False
    engine = load_or_build(sqlite_store, settings)
    assert engine.config.did_you_mean_min_results == 0 and not engine.config.spelling
    res = engine.search("whirpool microwve")
    assert res.did_you_mean is None and res.showing_results_for is None  # no correction any more
    assert built.search("whirpool microwve").did_you_mean == "whirlpool microwave"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[search]\npersonal_weight = -1\n", "search.personal_weight"),
        ("[search]\ndid_you_mean_min_result = 3\n", "search.did_you_mean_min_result"),
        ("[search.bm25]\nb = 2\n", "search.bm25.b"),
    ],
)
def test_bad_search_settings_name_the_field(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_settings(_toml(tmp_path, text))


def test_search_config_round_trips() -> None:
    cfg = SearchConfig(collaborative_weight=0.7, did_you_mean_min_results=5)
    assert SearchConfig(**cfg.model_dump()) == cfg
