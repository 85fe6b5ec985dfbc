"""An experiment's report: per arm, users, impressions and the outcome rates with 95% intervals;
each treatment against the control; the sample-ratio check; for interleaving, wins per request and
the sign test.

Users are the unit. Impressions join their outcomes by ``request_id`` (the same join as the online
metrics per version: :func:`shopsense.evaluation.online.label_impressions`), then each user's sums
per arm are taken (impressions, clicks, add-to-carts, purchases, revenue) and each rate is a
**per-user ratio**: a user's clicks / their impressions (CTR), add-to-carts / impressions,
purchases / impressions (conversion), 1,000 x revenue / impressions (revenue per 1,000 impressions;
a purchase's ``value``, else the product's price). An arm's metric is the mean of its users' ratios
with a Student-t interval, and a treatment is compared with the control by Welch's t-test on those
per-user ratios. So a shopper with many impressions counts once, and every user weighs the same
(the pooled rates, sums over sums, are given beside as ``pooled``).

In interleave mode every user sees both arms, so the per-arm numbers group impressions by the team
that drafted the item and are not independent samples: the comparison is the per-request credit
(a request is won by the arm whose items got more clicks) with a two-sided sign test.

:func:`time_series` gives the per-arm numbers over time (cumulative, step by step since the start)
for the dashboard's charts; its last point is the report.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.data.outcomes import OUTCOMES, PURCHASE_VALUE, label_impressions
from shopsense.evaluation.ab_stats import compare, mean_interval, sample_ratio, sign_test
from shopsense.experiments import Experiment, get
from shopsense.experiments.experiment import INTERLEAVE
from shopsense.store import KnowledgeStore

REVENUE = "revenue"
#: per-user ratio -> (numerator column, factor)
METRICS: dict[str, tuple[str, float]] = {
    "ctr": (C.CLICK, 1.0),
    "add_to_cart_rate": (C.ADD_TO_CART, 1.0),
    "conversion_rate": (C.PURCHASE, 1.0),
    "revenue_per_1000": (REVENUE, 1000.0),
}
_SUMS = ("impressions", C.CLICK, C.ADD_TO_CART, C.PURCHASE, REVENUE)
#: candidate times between two points of :func:`time_series`, seconds: a minute up to a week
STEPS = (60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, 86400.0, 7 * 86400.0)
#: at most this many points per series by default (a chart's width; the cost is O(users) per point)
MAX_POINTS = 48


def experiment_report(store: KnowledgeStore, name: str, *, over_time: bool = False) -> dict[str, Any]:
    """The report of experiment ``name`` (running or stopped), read from the store; with
    ``over_time``, also its :func:`time_series` under ``over_time`` (the dashboard's charts)."""
    exp = get(store, name)
    impressions = store.experiment_impressions(name)
    events = store.events(event_types=list(OUTCOMES), since=exp.started_at) if len(impressions) else pd.DataFrame()
    items = impressions[C.ITEM].dropna().unique().tolist() if len(impressions) else []
    prices = store.products(items).set_index(C.ITEM)[C.PRICE] if items else pd.Series(dtype=float)
    labelled = _labelled(impressions, events, prices)
    out = _report(exp, labelled)
    if over_time:
        out["over_time"] = _series(exp, labelled)
    return out


def _labelled(impressions: pd.DataFrame, events: pd.DataFrame, prices: pd.Series) -> pd.DataFrame:
    """The impressions with their outcomes (click, add_to_cart, purchase) and the revenue of each."""
    labelled = label_impressions(impressions, events, values=True)
    price = pd.to_numeric(labelled[C.ITEM].map(prices), errors="coerce") if len(labelled) else pd.Series(dtype=float)
    bought = labelled[C.PURCHASE].astype(bool) if len(labelled) else pd.Series(dtype=bool)
    labelled[REVENUE] = np.where(bought, labelled[PURCHASE_VALUE].fillna(price).fillna(0.0), 0.0)
    return labelled


def report(exp: Experiment, impressions: pd.DataFrame, events: pd.DataFrame, prices: pd.Series) -> dict[str, Any]:
    """The report from an experiment's impressions, the outcome events and the products' prices
    (``item_id`` -> price): JSON-ready, with ``arms.<name>`` and ``comparison``."""
    return _report(exp, _labelled(impressions, events, prices))


def _report(exp: Experiment, labelled: pd.DataFrame) -> dict[str, Any]:
    users = per_user(labelled)
    arms: dict[str, Any] = {}
    ratios: dict[str, dict[str, np.ndarray]] = {}
    for arm in exp.arms:
        u = users[users[C.ARM] == arm.name]
        ratios[arm.name] = {m: (u[num] / u["impressions"] * f).to_numpy(dtype=float) for m, (num, f) in METRICS.items()}
        shown = labelled[labelled[C.ARM] == arm.name]
        arms[arm.name] = {
            "version": arm.version,
            "weight": arm.weight,
            "users": int(len(u)),
            "impressions": int(u["impressions"].sum()),
            "requests": int(shown[C.REQUEST_ID].nunique()),
            "clicks": int(u[C.CLICK].sum()),
            "add_to_carts": int(u[C.ADD_TO_CART].sum()),
            "purchases": int(u[C.PURCHASE].sum()),
            "revenue": float(u[REVENUE].sum()),
            **{
                m: {**mean_interval(ratios[arm.name][m]), "pooled": _pooled(u, num, f)}
                for m, (num, f) in METRICS.items()
            },
        }
    control = exp.control.name
    interleaved = exp.mode == INTERLEAVE
    versus = {}
    for arm in exp.arms[1:]:
        cmp = {m: compare(ratios[control][m], ratios[arm.name][m]) for m in METRICS}
        if interleaved:  # the same users on both sides: Welch's test does not apply; see `interleaving`
            cmp = {m: {**c, "p_value": None} for m, c in cmp.items()}
        versus[arm.name] = cmp
    comparison: dict[str, Any] = {"control": control, "unit": "user", "test": "welch_t", "arms": versus}
    if interleaved:
        comparison["test"] = "sign_test"
        comparison["interleaving"] = interleaving(labelled, exp)
        comparison["srm"] = _first_pick_ratio(labelled, exp)
    else:
        comparison["srm"] = sample_ratio([arms[a.name]["users"] for a in exp.arms], [a.weight for a in exp.arms])
    return {"experiment": exp.as_dict(), "arms": arms, "comparison": comparison}


def time_series(
    exp: Experiment,
    impressions: pd.DataFrame,
    events: pd.DataFrame,
    prices: pd.Series,
    *,
    step_s: float | None = None,
    max_points: int = MAX_POINTS,
) -> dict[str, Any]:
    """Per arm, the report's users, impressions and rates (with their 95% intervals) over time.

    Cumulative: the point at ``times[i]`` is the report of the impressions shown by then (since the
    experiment started), with the outcomes they have had so far, so the last point equals the
    report's ``arms``. Outcomes are counted at their impression's time, not their own: a later
    click raises the earlier points too, and a point never mixes outcomes of impressions it does not
    count. ``step_s`` is the time between points; by default the shortest of :data:`STEPS` that
    gives at most ``max_points``. Returns ``{"start", "step_s", "times", "arms": {arm: {"users":
    [...], "impressions": [...], <rate>: {"value": [...], "ci_low": [...], "ci_high": [...]}}}}``."""
    return _series(exp, _labelled(impressions, events, prices), step_s=step_s, max_points=max_points)


def _series(
    exp: Experiment, labelled: pd.DataFrame, *, step_s: float | None = None, max_points: int = MAX_POINTS
) -> dict[str, Any]:
    start = float(exp.started_at)
    shown = (
        pd.to_numeric(labelled[C.TIMESTAMP], errors="coerce").fillna(start).to_numpy(dtype=float)
        if len(labelled)
        else np.zeros(0)
    )
    last = max(float(shown.max()), start) if len(shown) else start
    span = last - start
    step = float(step_s) if step_s else next((s for s in STEPS if span / s < max_points), span / (max_points - 1))
    n = max(1, math.ceil(span / step)) if len(shown) else 0
    # point i counts what was shown in (start + i * step, start + (i + 1) * step], the first also
    # what was shown at the start or before (clock skew between servers)
    bucket = np.clip(np.ceil((shown - start) / step) - 1, 0, max(n - 1, 0)).astype(np.int64)
    times = [min(start + (i + 1) * step, last) for i in range(n)]
    arms = {a.name: _arm_series(labelled, bucket, a.name, n) for a in exp.arms}
    return {"start": start, "step_s": step, "times": times, "arms": arms}


def _arm_series(labelled: pd.DataFrame, bucket: np.ndarray, arm: str, n: int) -> dict[str, Any]:
    """One arm's cumulative per-user sums, step by step, and the report's statistics at each step."""
    mask = (labelled[C.ARM] == arm).to_numpy(dtype=bool) if len(labelled) else np.zeros(0, dtype=bool)
    rows = labelled[mask]
    users = rows[C.USER].astype(object).where(rows[C.USER].notna(), "")  # as per_user does
    codes, uniques = pd.factorize(users)
    values = {
        "impressions": np.ones(len(rows)),
        **{c: rows[c].astype(float).to_numpy() for c in (C.CLICK, C.ADD_TO_CART, C.PURCHASE)},
        REVENUE: rows[REVENUE].astype(float).to_numpy(),
    }
    sums = {k: np.zeros(len(uniques)) for k in values}
    at = bucket[mask]
    order = np.argsort(at, kind="stable")
    bounds = np.searchsorted(at[order], np.arange(n + 1))
    out: dict[str, Any] = {
        "users": [],
        "impressions": [],
        **{m: {"value": [], "ci_low": [], "ci_high": []} for m in METRICS},
    }
    for i in range(n):
        step_rows = order[bounds[i] : bounds[i + 1]]
        for k, v in values.items():  # O(users) per step, whatever the number of impressions
            sums[k] += np.bincount(codes[step_rows], weights=v[step_rows], minlength=len(uniques))
        seen = sums["impressions"] > 0
        out["users"].append(int(seen.sum()))
        out["impressions"].append(int(sums["impressions"].sum()))
        for m, (num, f) in METRICS.items():
            stat = mean_interval(sums[num][seen] / sums["impressions"][seen] * f)
            for k in ("value", "ci_low", "ci_high"):
                out[m][k].append(stat[k])
    return out


def per_user(labelled: pd.DataFrame) -> pd.DataFrame:
    """One row per (arm, user): their impressions, clicks, add-to-carts, purchases and revenue."""
    if labelled.empty:
        return pd.DataFrame(columns=[C.ARM, C.USER, *_SUMS])
    df = labelled.assign(impressions=1)
    df[C.USER] = df[C.USER].astype(object).where(df[C.USER].notna(), "")
    for col in (C.CLICK, C.ADD_TO_CART, C.PURCHASE):
        df[col] = df[col].astype(int)
    return df.groupby([C.ARM, C.USER], sort=True)[list(_SUMS)].sum().reset_index()


def interleaving(labelled: pd.DataFrame, exp: Experiment) -> dict[str, Any]:
    """Per request, the arm whose drafted items got more clicks wins (equal clicks: a tie, none
    counted apart); the sign test says whether the two arms win equally often."""
    first, second = exp.arms[0].name, exp.arms[1].name
    if labelled.empty:
        per = pd.DataFrame(columns=[first, second])
    else:
        clicks = labelled.assign(_c=labelled[C.CLICK].astype(int))
        per = clicks.pivot_table(index=C.REQUEST_ID, columns=C.ARM, values="_c", aggfunc="sum", fill_value=0)
        per = per.reindex(columns=[first, second], fill_value=0)
    a, b = per[first].to_numpy(dtype=int), per[second].to_numpy(dtype=int)
    clicked = (a + b) > 0
    wins, losses = int((a > b).sum()), int((b > a).sum())
    return {
        "requests": int(len(per)),
        "requests_with_clicks": int(clicked.sum()),
        "wins": {first: wins, second: losses},
        "ties": int(((a == b) & clicked).sum()),
        "p_value": sign_test(wins, losses),
    }


def _first_pick_ratio(labelled: pd.DataFrame, exp: Experiment) -> dict[str, Any]:
    """Interleaving's sample-ratio check: which arm drafted a request's first item is a fair coin,
    so the first positions' teams must split 50/50."""
    first = labelled[labelled[C.POSITION] == 0] if len(labelled) else labelled
    counts = [int((first[C.ARM] == a.name).sum()) if len(first) else 0 for a in exp.arms]
    return {**sample_ratio(counts, [1.0] * len(exp.arms)), "of": "first positions' teams"}


def _pooled(u: pd.DataFrame, num: str, factor: float) -> float | None:
    n = float(u["impressions"].sum())
    return float(u[num].sum()) / n * factor if n else None
