"""The feedback loop: impressions carry request_id and model version; later events quoting the
request_id join to them (CTR and conversion per version, as the dashboard shows)."""

from __future__ import annotations

from shopsense.evaluation.online import label_impressions
from tests.service.conftest import Env


def test_request_id_join(env: Env) -> None:
    c = env.client
    rec = c.get("/recommend?user_id=u1&k=3", headers=env.h("read")).json()
    srch = c.get("/search?q=coffee&user_id=u1", headers=env.h("read")).json()
    rid, shown = rec["request_id"], [h["item_id"] for h in rec["items"]]
    assert rec["model_version"] == "v1" and shown == ["p1", "p2", "p3"]
    events = [
        {"user_id": "u1", "item_id": shown[1], "event_type": "click", "request_id": rid},
        {"user_id": "u1", "item_id": shown[1], "event_type": "purchase", "request_id": rid},
        {"user_id": "u1", "item_id": "p5", "event_type": "click", "request_id": srch["request_id"]},
        {"user_id": "u1", "item_id": "p6", "event_type": "click"},  # not from a list: joins nothing
    ]
    assert c.post("/events", json=events, headers=env.h("write")).json()["stored"] == 4
    state = env.client.app.state.shopsense
    state.impressions.flush()
    imp = env.store.impressions(rid)
    assert list(imp["item_id"]) == shown and list(imp["position"]) == [0, 1, 2]
    assert set(imp["model_version"]) == {"v1"} and set(imp["surface"]) == {"recommend"}
    labelled = label_impressions(env.store.impressions(), env.store.events())
    clicked = labelled[labelled["click"]][["request_id", "item_id"]].values.tolist()
    assert clicked == [[rid, "p2"], [srch["request_id"], "p5"]]
    assert labelled[labelled["purchase"]]["item_id"].tolist() == ["p2"]
    dash = c.get("/dashboard/data", headers=env.h("read")).json()
    per = {(r["model_version"], r["surface"]): r for r in dash["online"]["model_version+surface"]}
    assert per[("v1", "recommend")]["impressions"] == 3 and per[("v1", "recommend")]["ctr"] == 1 / 3
    assert per[("v1", "recommend")]["conversion"] == 1 / 3
    assert per[("v1", "search")]["clicks"] == 1
    assert {r["source"] for r in dash["online"]["source"]} == {"popular", "search"}
    assert dash["stats"]["products"] == 6 and dash["models"]["served_version"] == "v1"


def test_the_position_swap_slice_records_where_each_item_was_ranked(settings) -> None:
    """With every response in the slice, the first item trades places with one of the top 10; the
    impressions say where each was ranked, and responses outside the slice record nothing."""
    from tests.service.conftest import make_env

    swapping = settings.model_copy(update={"service": settings.service.model_copy(update={"position_swap_share": 1.0})})
    for env in make_env(swapping):
        ranked = ["p1", "p2", "p3"]  # the fake engine's list
        rec = env.client.get("/recommend?user_id=u1&k=3", headers=env.h("read")).json()
        shown = [h["item_id"] for h in rec["items"]]
        assert sorted(shown) == ranked and shown[0] != "p1"  # the first item always moves in the slice
        env.client.app.state.shopsense.impressions.flush()
        imp = env.store.impressions(rec["request_id"])
        assert [ranked[p] for p in imp["ranked_position"]] == imp["item_id"].tolist() == shown
    for env in make_env(settings):  # the tests' default: no slice
        rec = env.client.get("/recommend?user_id=u1&k=3", headers=env.h("read")).json()
        env.client.app.state.shopsense.impressions.flush()
        assert env.store.impressions(rec["request_id"])["ranked_position"].isna().all()


def test_the_dashboard_counts_searches_that_found_nothing(env: Env) -> None:
    c = env.client
    assert c.get("/search?q=coffee", headers=env.h("read")).json()["relaxed"] is None
    empty = c.get("/search?q=zzzz", headers=env.h("read")).json()
    assert empty["items"] == [] and empty["total"] == 0
    counts = c.get("/dashboard/data", headers=env.h("read")).json()["search"]
    assert counts == {"searches": 2, "no_match": 1, "zero_results": 1}
    assert "shopsense_search_zero_results_total 1" in c.get("/metrics", headers=env.h("admin")).text
