"""CTR and conversion of logged impressions, joined to later events by request id and item."""

from __future__ import annotations

import pandas as pd
import pytest

from shopsense.evaluation.online import label_impressions, online_metrics, online_report


def _impressions() -> pd.DataFrame:
    rows = [
        # request, user, item, position, source, model_version, timestamp
        ("r1", "u1", "a", 0, "als", "v1", 100.0),
        ("r1", "u1", "b", 1, "popular", "v1", 100.0),
        ("r2", "u2", "a", 0, "als", "v1", 200.0),
        ("r2", "u2", "c", 1, "als", "v1", 200.0),
        ("r3", "u3", "d", 0, "popular", "v2", 300.0),
    ]
    df = pd.DataFrame(
        rows, columns=["request_id", "user_id", "item_id", "position", "source", "model_version", "timestamp"]
    )
    return df.assign(surface="recommend", score=1.0, query=None)


def _events() -> pd.DataFrame:
    rows = [
        ("u1", "a", "click", 110.0, "r1"),
        ("u1", "a", "purchase", 120.0, "r1"),
        ("u2", "c", "click", 150.0, "r2"),  # before its impression: not an outcome
        ("u2", "c", "add_to_cart", 210.0, "r2"),
        ("u3", "d", "click", 310.0, "r9"),  # another request: no match
        ("u3", "d", "click", 320.0, None),
    ]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "timestamp", "request_id"])


def test_label_impressions() -> None:
    lab = label_impressions(_impressions(), _events())
    assert lab["click"].tolist() == [True, False, False, False, False]
    assert lab["purchase"].tolist() == [True, False, False, False, False]
    assert lab["add_to_cart"].tolist() == [False, False, False, True, False]


def test_ctr_and_conversion_per_model_version_and_source() -> None:
    v = online_metrics(_impressions(), _events(), ["model_version"]).set_index("model_version")
    assert v.loc["v1", "impressions"] == 4 and v.loc["v1", "requests"] == 2
    assert v.loc["v1", "ctr"] == pytest.approx(1 / 4)
    assert v.loc["v1", "conversion"] == pytest.approx(1 / 4)
    assert v.loc["v1", "add_to_cart_rate"] == pytest.approx(1 / 4)
    assert v.loc["v1", "request_ctr"] == pytest.approx(1 / 2)
    assert v.loc["v2", "ctr"] == 0.0
    s = online_metrics(_impressions(), _events(), ["source"]).set_index("source")
    assert s.loc["als", "impressions"] == 3 and s.loc["als", "clicks"] == 1
    assert s.loc["popular", "ctr"] == 0.0
    with pytest.raises(ValueError, match="cannot group"):
        online_metrics(_impressions(), _events(), ["colour"])


def test_online_report_reads_the_store(sqlite_store) -> None:
    sqlite_store.log_impressions(_impressions())
    ev = _events().assign(event_id=[f"e{i}" for i in range(6)])
    sqlite_store.add_events(ev)
    rep = online_report(sqlite_store)
    by_version = {r["model_version"]: r for r in rep["model_version"]}
    assert by_version["v1"]["clicks"] == 1 and by_version["v1"]["purchases"] == 1
    assert {r["source"] for r in rep["source"]} == {"als", "popular"}
