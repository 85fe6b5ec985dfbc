"""Settings are strict, typed and name the bad field."""

from __future__ import annotations

import pytest

from shopsense.config import EventWeights, Settings, load_settings
from shopsense.exceptions import ConfigError


def test_defaults_and_store_url(tmp_path) -> None:
    s = load_settings(home=tmp_path)
    assert s.store_url == f"sqlite:///{tmp_path / 'shopsense.db'}"
    assert load_settings(store="postgresql://x@h/db").store_url == "postgresql://x@h/db"


def test_toml_round_trip(tmp_path) -> None:
    f = tmp_path / "s.toml"
    f.write_text("[event_weights]\npurchase = 12\n[encoder]\nbatch_size = 8\n")
    s = load_settings(f)
    assert s.event_weights.purchase == 12 and s.encoder.batch_size == 8
    again = Settings(**s.model_dump())
    assert again == s


@pytest.mark.parametrize(
    ("text", "field"),
    [("[event_weights]\npurchase = -1\n", "event_weights.purchase"), ("typo = 1\n", "typo"), ("x = [", "TOML")],
)
def test_bad_values_name_the_field(tmp_path, text, field) -> None:
    f = tmp_path / "s.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_settings(f)


def test_event_weights() -> None:
    w = EventWeights()
    assert w.of("purchase") > w.of("view")
    with pytest.raises(ConfigError, match="valid: view"):
        w.of("like")


def test_env(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SHOPSENSE_STORE", "sqlite:///x.db")
    assert load_settings().store_url == "sqlite:///x.db"
