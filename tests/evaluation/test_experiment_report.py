"""The experiment report: statistics equal a reference computation with scipy on a small known
case; the sample-ratio check fires on a skewed log and not on a fair one; interleaving's credit."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from shopsense import columns as C
from shopsense.evaluation.experiments import METRICS, report, time_series
from shopsense.experiments import Arm, Assigner, Experiment

AB = Experiment(
    "e", (Arm("control", "v1", 1.0), Arm("treatment", "v2", 1.0)), "recommend", "ab", "running", 0.0, None, "ab" * 16
)
PRICES = pd.Series({"a": 10.0, "b": 20.0, "c": 5.0})


def _imp(rows: list[tuple[str, str, str, str, int]]) -> pd.DataFrame:
    """(request, user, arm, item, position) -> impressions of experiment e at time 1."""
    return pd.DataFrame(
        {
            C.REQUEST_ID: [r[0] for r in rows],
            C.USER: [r[1] for r in rows],
            C.ARM: [r[2] for r in rows],
            C.ITEM: [r[3] for r in rows],
            C.POSITION: [r[4] for r in rows],
            C.TIMESTAMP: 1.0,
            C.EXPERIMENT: "e",
            C.SURFACE: "recommend",
            C.MODEL_VERSION: ["v1" if r[2] == "control" else "v2" for r in rows],
        }
    )


def _ev(rows: list[tuple[str, str, str, str, float | None]]) -> pd.DataFrame:
    """(request, user, item, event type, value) at time 2."""
    return pd.DataFrame(
        {
            C.REQUEST_ID: [r[0] for r in rows],
            C.USER: [r[1] for r in rows],
            C.ITEM: [r[2] for r in rows],
            C.EVENT_TYPE: [r[3] for r in rows],
            C.VALUE: [r[4] for r in rows],
            C.TIMESTAMP: 2.0,
        }
    )


# control: u1 sees 4 (1 click), u2 sees 2 (2 clicks, 1 purchase of b without value: its price 20),
#          u3 sees 2 (nothing)
# treatment: u4 sees 2 (1 click, 1 cart, 1 purchase worth 35), u5 sees 4 (3 clicks), u6 sees 2 (1 click)
IMPRESSIONS = _imp(
    [
        ("r1", "u1", "control", "a", 0), ("r1", "u1", "control", "b", 1),
        ("r2", "u1", "control", "a", 0), ("r2", "u1", "control", "c", 1),
        ("r3", "u2", "control", "a", 0), ("r3", "u2", "control", "b", 1),
        ("r4", "u3", "control", "a", 0), ("r4", "u3", "control", "b", 1),
        ("r5", "u4", "treatment", "c", 0), ("r5", "u4", "treatment", "a", 1),
        ("r6", "u5", "treatment", "a", 0), ("r6", "u5", "treatment", "b", 1),
        ("r7", "u5", "treatment", "a", 0), ("r7", "u5", "treatment", "c", 1),
        ("r8", "u6", "treatment", "b", 0), ("r8", "u6", "treatment", "c", 1),
    ]
)  # fmt: skip
EVENTS = _ev(
    [
        ("r2", "u1", "c", "click", None),
        ("r3", "u2", "a", "click", None),
        ("r3", "u2", "b", "click", None),
        ("r3", "u2", "b", "purchase", None),
        ("r5", "u4", "c", "click", None),
        ("r5", "u4", "c", "add_to_cart", None),
        ("r5", "u4", "c", "purchase", 35.0),
        ("r6", "u5", "b", "click", None),
        ("r7", "u5", "a", "click", None),
        ("r7", "u5", "c", "click", None),
        ("r8", "u6", "c", "click", None),
        ("r8", "u6", "a", "click", None),  # a was not shown in r8: no outcome
        ("zz", "u6", "b", "purchase", 99.0),  # another request's: no outcome here
    ]
)

# the per-user ratios, by hand
CTR = {"control": [1 / 4, 2 / 2, 0 / 2], "treatment": [1 / 2, 3 / 4, 1 / 2]}
REVENUE_PER_1000 = {"control": [0.0, 1000 * 20 / 2, 0.0], "treatment": [1000 * 35 / 2, 0.0, 0.0]}


def _reference_interval(x: list[float]) -> tuple[float, float]:
    return stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))


def test_statistics_equal_a_scipy_reference_on_a_known_case() -> None:
    rep = report(AB, IMPRESSIONS, EVENTS, PRICES)
    c, t = rep["arms"]["control"], rep["arms"]["treatment"]
    assert (c["users"], c["impressions"], c["clicks"], c["purchases"], c["revenue"]) == (3, 8, 3, 1, 20.0)
    assert (t["users"], t["impressions"], t["clicks"], t["add_to_carts"], t["revenue"]) == (3, 8, 5, 1, 35.0)
    assert c["requests"] == 4 and t["requests"] == 4
    for arm, got in (("control", c), ("treatment", t)):
        lo, hi = _reference_interval(CTR[arm])
        assert got["ctr"]["value"] == pytest.approx(np.mean(CTR[arm]))
        assert (got["ctr"]["ci_low"], got["ctr"]["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
        lo, hi = _reference_interval(REVENUE_PER_1000[arm])
        assert got["revenue_per_1000"]["value"] == pytest.approx(np.mean(REVENUE_PER_1000[arm]))
        assert got["revenue_per_1000"]["ci_low"] == pytest.approx(lo)
    assert c["ctr"]["pooled"] == pytest.approx(3 / 8) and t["ctr"]["pooled"] == pytest.approx(5 / 8)
    cmp = rep["comparison"]["arms"]["treatment"]
    welch = stats.ttest_ind(CTR["treatment"], CTR["control"], equal_var=False)
    assert cmp["ctr"]["p_value"] == pytest.approx(welch.pvalue)
    assert cmp["ctr"]["relative_difference"] == pytest.approx(np.mean(CTR["treatment"]) / np.mean(CTR["control"]) - 1)
    welch = stats.ttest_ind(REVENUE_PER_1000["treatment"], REVENUE_PER_1000["control"], equal_var=False)
    assert cmp["revenue_per_1000"]["p_value"] == pytest.approx(welch.pvalue)
    # add-to-cart: control has none -> no relative difference
    assert cmp["add_to_cart_rate"]["relative_difference"] is None
    srm = rep["comparison"]["srm"]
    assert srm["observed"] == [3, 3] and srm["mismatch"] is False
    assert srm["p_value"] == pytest.approx(stats.chisquare([3, 3], [3, 3]).pvalue)


def _log(users: list[str], exp: Experiment) -> pd.DataFrame:
    assign = Assigner([exp]).assign
    rows = [(f"r-{u}", u, assign("for_you", u).arm.name, "a", 0) for u in users]
    return _imp(rows)


def test_sample_ratio_mismatch_is_detected_on_a_skewed_log_not_on_a_fair_one() -> None:
    exp = Experiment(
        "e", (Arm("control", "v1", 50), Arm("treatment", "v2", 50)), "recommend", "ab", "running", 0, None, "cd" * 16
    )
    users = [f"u{i}" for i in range(10_000)]
    fair = _log(users, exp)
    rep = report(exp, fair, _ev([]), PRICES)["comparison"]["srm"]
    assert rep["mismatch"] is False and rep["p_value"] > 0.001
    # treatment's logs lost 10% of its users (a crash in its version, a bot filter on one side)
    treated = fair[fair[C.ARM] == "treatment"]
    skewed = fair.drop(treated.index[: len(treated) // 10])
    rep = report(exp, skewed, _ev([]), PRICES)["comparison"]["srm"]
    assert rep["mismatch"] is True and rep["p_value"] < 0.001
    # against the split, not an even one: a fair 90/10 experiment is no mismatch
    exp90 = Experiment(
        "e", (Arm("control", "v1", 90), Arm("treatment", "v2", 10)), "recommend", "ab", "running", 0, None, "ef" * 16
    )
    assert report(exp90, _log(users, exp90), _ev([]), PRICES)["comparison"]["srm"]["mismatch"] is False


def test_interleaving_credits_requests_and_runs_a_sign_test() -> None:
    exp = Experiment(
        "i", (Arm("old", "v1", 1), Arm("new", "v2", 1)), "search", "interleave", "running", 0, None, "01" * 16
    )
    rows, events = [], []
    # 30 requests: new wins 20 (its item clicked), old wins 5, 3 ties (one click each), 2 without clicks
    for n in range(30):
        first = "old" if n % 2 else "new"  # the coin's first pick alternates: a fair first-position split
        second = "new" if first == "old" else "old"
        rows += [(f"q{n}", f"u{n}", first, f"x{n}", 0), (f"q{n}", f"u{n}", second, f"y{n}", 1)]
        clicked_team = "new" if n < 20 else "old" if n < 25 else "both" if n < 28 else None
        for item, team in ((f"x{n}", first), (f"y{n}", second)):
            if clicked_team in (team, "both"):
                events.append((f"q{n}", f"u{n}", item, "click", None))
    rep = report(exp, _imp(rows), _ev(events), PRICES)["comparison"]
    il = rep["interleaving"]
    assert il["wins"] == {"old": 5, "new": 20} and il["ties"] == 3 and il["requests_with_clicks"] == 28
    assert il["p_value"] == pytest.approx(stats.binomtest(5, 25, 0.5).pvalue)
    assert rep["test"] == "sign_test" and rep["srm"]["mismatch"] is False
    assert rep["arms"]["new"]["ctr"]["p_value"] is None  # the same users on both sides: no Welch test
    assert not math.isnan(rep["arms"]["new"]["ctr"]["difference"])


# the reference reports of the first points compare one or two users per arm with equal rates
@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")
def test_the_time_series_ends_at_the_report_and_each_point_is_the_report_so_far() -> None:
    # the known log's requests spread over 70 minutes: r1 at 0 s, r2 at 600 s, ..., r8 at 4200 s
    shown = {f"r{n}": 600.0 * (n - 1) for n in range(1, 9)}
    imp = IMPRESSIONS.assign(**{C.TIMESTAMP: IMPRESSIONS[C.REQUEST_ID].map(shown)})
    ev = EVENTS.assign(**{C.TIMESTAMP: 5000.0})
    series = time_series(AB, imp, ev, PRICES)
    assert series["step_s"] == 300.0  # 4200 s in at most 48 points: 5-minute steps
    assert len(series["times"]) == 14 and series["times"][-1] == 4200.0
    full = report(AB, imp, ev, PRICES)["arms"]
    for arm, got in series["arms"].items():
        assert got["users"][-1] == full[arm]["users"] and got["impressions"][-1] == full[arm]["impressions"]
        for m in METRICS:
            for k in ("value", "ci_low", "ci_high"):
                assert got[m][k][-1] == pytest.approx(full[arm][m][k]), (arm, m, k)
    # every point is the report of the impressions shown by then (with the outcomes they had)
    for i, t in enumerate(series["times"]):
        then = imp[imp[C.TIMESTAMP] <= t]
        for arm, got in series["arms"].items():
            ref = report(AB, then, ev, PRICES)["arms"][arm]
            assert got["users"][i] == ref["users"] and got["impressions"][i] == ref["impressions"]
            for m in METRICS:
                assert got[m]["value"][i] == pytest.approx(ref[m]["value"]), (i, arm, m)
                assert got[m]["ci_high"][i] == pytest.approx(ref[m]["ci_high"]), (i, arm, m)
    # control's first point: only u1's r1 (no click yet in r1): one user, no interval
    first = series["arms"]["control"]
    assert (first["users"][0], first["impressions"][0], first["ctr"]["value"][0]) == (1, 2, 0.0)
    assert first["ctr"]["ci_low"][0] is None
    assert series["arms"]["treatment"]["users"][0] == 0 and series["arms"]["treatment"]["ctr"]["value"][0] is None
    # a step asked for; an empty log has no points
    assert len(time_series(AB, imp, ev, PRICES, step_s=3600)["times"]) == 2
    empty = time_series(AB, imp.iloc[:0], ev, PRICES)
    assert empty["times"] == [] and empty["arms"]["control"]["ctr"]["value"] == []
