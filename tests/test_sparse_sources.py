"""``[engine] sources = "sparse"``: the one setting that makes both trainers build the same sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopsense.config import load_settings
from shopsense.engine_config import DENSE_PARTS, EngineConfig
from shopsense.exceptions import ConfigError


def test_sparse_turns_off_what_cannot_scale_out_and_round_trips():
    c = EngineConfig(sources="sparse", ease={"l2": 1.0}, als={"factors": 8})
    assert all(getattr(c, part, None) is None for part in DENSE_PARTS)
    assert c.covisit is not None and c.itemknn is not None and c.als is not None and c.als.factors == 8
    assert c.content is not None and c.sequential is not None  # Spark encodes the texts, launches PyTorch
    assert EngineConfig(sources="sparse", content=None).content is None  # and it can be turned off
    assert EngineConfig(**c.model_dump(mode="json")) == c
    assert EngineConfig().ease is not None  # "all" (the default) leaves them alone


def test_sparse_ranks_by_the_fusion():
    with pytest.raises(ValueError, match='set ranker = "fusion"'):
        EngineConfig(sources="sparse", ranker="lambdarank")


def test_the_setting_comes_from_the_toml_file_and_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    f = tmp_path / "shopsense.toml"
    f.write_text('[engine]\nsources = "sparse"\n\n[engine.als]\nfactors = 16\n', encoding="utf-8")
    s = load_settings(f, home=tmp_path)
    assert s.engine.sources == "sparse" and s.engine.ease is None and s.engine.als is not None
    monkeypatch.setenv("SHOPSENSE_ENGINE__SOURCES", "sparse")
    assert load_settings(home=tmp_path).engine.ease is None
    with pytest.raises(ConfigError, match="sources"):
        load_settings(home=tmp_path, engine={"sources": "dense"})
