"""The statistics of an experiment's report: intervals and tests on per-user values, the sample-ratio
check, and the sign test of interleaving. Pure functions over arrays (scipy for the distributions)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

#: confidence of every interval
LEVEL = 0.95
#: a sample-ratio mismatch is flagged below this p-value: strict, because the check runs on every
#: report and a real mismatch (broken assignment, lost logs) gives p-values far smaller than this
SRM_ALPHA = 0.001


def _num(x: float) -> float | None:
    """JSON-safe: NaN and infinities as None."""
    return float(x) if math.isfinite(x) else None


def mean_interval(values: Sequence[float] | np.ndarray, level: float = LEVEL) -> dict[str, float | None]:
    """The mean of per-user values and its Student-t interval (``ci_low``, ``ci_high``: None with
    fewer than two users)."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return {"value": None, "ci_low": None, "ci_high": None}
    mean = float(v.mean())
    if len(v) < 2:
        return {"value": mean, "ci_low": None, "ci_high": None}
    sem = float(v.std(ddof=1)) / math.sqrt(len(v))
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1)) * sem
    return {"value": mean, "ci_low": mean - half, "ci_high": mean + half}


def welch_p(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float | None:
    """Two-sided p-value of Welch's t-test of equal means (None when it is undefined: fewer than
    two values on a side, or no variance on either)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) < 2 or len(y) < 2 or (x.var() == 0 and y.var() == 0):
        return None
    return _num(float(stats.ttest_ind(y, x, equal_var=False).pvalue))


def compare(control: Sequence[float] | np.ndarray, treatment: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """Treatment against control on per-user values: the difference of means, the relative
    difference (None when the control's mean is 0) and Welch's p-value."""
    c, t = np.asarray(control, dtype=float), np.asarray(treatment, dtype=float)
    if not len(c) or not len(t):
        return {"difference": None, "relative_difference": None, "p_value": None}
    mc, mt = float(c.mean()), float(t.mean())
    return {
        "difference": mt - mc,
        "relative_difference": (mt - mc) / mc if mc != 0 else None,
        "p_value": welch_p(c, t),
    }


def sample_ratio(observed: Sequence[int], weights: Sequence[float], alpha: float = SRM_ALPHA) -> dict[str, Any]:
    """Sample-ratio mismatch: a chi-square goodness-of-fit test of the counts per arm against the
    split. ``mismatch`` is True when p < ``alpha``: the assignment or the logging is broken, and
    the other numbers of the report cannot be trusted."""
    obs = np.asarray(observed, dtype=float)
    w = np.asarray(weights, dtype=float)
    total = obs.sum()
    if total == 0:
        return {
            "observed": [int(x) for x in obs],
            "expected": [0.0] * len(obs),
            "chi2": None,
            "p_value": None,
            "mismatch": False,
        }
    expected = w / w.sum() * total
    chi2, p = stats.chisquare(obs, expected)
    return {
        "observed": [int(x) for x in obs],
        "expected": [float(x) for x in expected],
        "chi2": _num(float(chi2)),
        "p_value": _num(float(p)),
        "mismatch": bool(p < alpha),
    }


def sign_test(wins: int, losses: int) -> float | None:
    """Two-sided binomial (sign) test that wins and losses are equally likely; ties do not count.
    None without any win or loss."""
    n = wins + losses
    if n == 0:
        return None
    return float(stats.binomtest(wins, n, 0.5, alternative="two-sided").pvalue)
