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


def test_the_pseudonym_secret_moved_to_privacy_and_the_old_setting_still_works(tmp_path) -> None:
    assert load_settings().privacy.pseudonym_secret is None
    old = load_settings(service={"pseudonym_secret": "s3cret"})
    assert old.privacy.pseudonym_secret == "s3cret"
    assert Settings.model_validate_json(old.model_dump_json()).privacy.pseudonym_secret == "s3cret"  # workers
    assert load_settings(privacy={"pseudonym_secret": "s3cret"}).privacy.pseudonym_secret == "s3cret"
    with pytest.raises(ConfigError, match="keep only privacy.pseudonym_secret"):
        load_settings(service={"pseudonym_secret": "a"}, privacy={"pseudonym_secret": "b"})
    with pytest.raises(ConfigError, match="privacy.postgres_vacuum"):
        load_settings(privacy={"postgres_vacuum": "sometimes"})
