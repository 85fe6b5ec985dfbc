"""What a shopper was already shown: the outcome ranker's exposure features.

A product shown to a shopper and passed over says something no event says: near the top of a list
it was almost surely looked at, and it did not interest them (then). Impression discounting
(Lee et al., "Modeling impression discounting in large-scale recommender systems", KDD 2014) keeps
such products from taking the same places again and again. Here it is learned, not a fixed
discount: for each candidate, how often it was shown to the shopper within ``[engine.outcomes]
exposure_days``, the best (lowest) position it had, and the hours since it was last shown
(:data:`NAMES`) join the outcome ranker's table, whose logged lists say how much a past showing
lowers the chance of a click; a candidate never shown has ``times_shown`` 0 and the other two missing.
A product the shopper then clicked, carted or bought is in their history and left out of the
discovery candidates anyway, so what the columns count are, in effect, showings that were ignored.

Training computes them for each logged list from the impressions logged before it (every surface's);
serving from the shopper's latest impressions, read per request (:meth:`Exposure.of`). The next-item
groups have no impressions behind them: their columns stay missing (NaN).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.ranking.candidates import Candidates
from shopsense.ranking.return_features import DAY, HOUR

NAMES = ("times_shown", "best_shown_position", "hours_since_shown")


@dataclass
class Exposure:
    """A shopper's earlier impressions (model item indices, 0-based positions, times), oldest first."""

    items: np.ndarray
    positions: np.ndarray
    times: np.ndarray

    @classmethod
    def none(cls) -> Exposure:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))

    @classmethod
    def of(cls, rows: dict[str, list], to_internal: Callable[..., np.ndarray]) -> Exposure:
        """From the store's columns (:meth:`~shopsense.store.impressions.ImpressionRows.recent_impressions`)
        and the version's id lookup ``to_internal`` (products it does not know are left out)."""
        if not rows[C.ITEM]:
            return cls.none()
        idx = np.asarray(to_internal(rows[C.ITEM], strict=False), np.int64)
        pos = np.asarray(rows[C.POSITION], np.float64)
        ts = np.asarray(rows[C.TIMESTAMP], np.float64)
        ok = (idx >= 0) & ~np.isnan(pos) & ~np.isnan(ts)
        order = np.argsort(ts[ok], kind="stable")
        return cls(idx[ok][order], pos[ok][order].astype(np.int64), ts[ok][order])

    def columns(self, candidates: np.ndarray, now: float, days: float, limit: int) -> np.ndarray:
        """(candidates x :data:`NAMES`) as of ``now``: the latest ``limit`` impressions of the last
        ``days`` before it."""
        out = np.full((len(candidates), len(NAMES)), np.nan, np.float32)
        out[:, 0] = 0.0
        lo = int(np.searchsorted(self.times, now - days * DAY, side="left"))
        hi = int(np.searchsorted(self.times, now, side="left"))  # strictly before: never the list itself
        lo = max(lo, hi - limit)
        if hi <= lo or not len(candidates):
            return out
        items, pos, ts = self.items[lo:hi], self.positions[lo:hi], self.times[lo:hi]
        order = np.argsort(items, kind="stable")
        items, pos, ts = items[order], pos[order], ts[order]
        uniq, start, count = np.unique(items, return_index=True, return_counts=True)
        at = np.searchsorted(uniq, candidates)
        at_ok = np.minimum(at, len(uniq) - 1)
        hit = (at < len(uniq)) & (uniq[at_ok] == candidates)
        if not hit.any():
            return out
        best = np.minimum.reduceat(pos, start).astype(np.float32)
        last = np.maximum.reduceat(ts, start)
        g = at_ok[hit]
        out[hit, 0] = count[g]
        out[hit, 1] = best[g]
        out[hit, 2] = (now - last[g]) / HOUR
        return out


def extend(
    c: Candidates, shown: Sequence[Exposure | None], times: Sequence[float], days: float, limit: int
) -> Candidates:
    """Each row's candidates followed by their exposure columns: what row ``r``'s shopper had been
    shown (``shown[r]``; None: nothing) before ``times[r]``. Training's logged lists and serving's
    requests both go through here."""
    none = Exposure.none()
    rows = [
        np.concatenate([x, (e or none).columns(items, float(t), days, limit)], axis=1)
        for x, items, e, t in zip(c.features, c.items, shown, times, strict=True)
    ]
    return Candidates(c.items, rows, [*c.names, *NAMES])


def uses_exposure(names: Sequence[str]) -> bool:
    """Whether a ranker's table has the exposure columns."""
    return NAMES[0] in names


def by_user(impressions: pd.DataFrame, users: pd.Series | np.ndarray, items: np.ndarray) -> dict[int, Exposure]:
    """Every logged impression (any surface) per user index, from the labelled impressions and
    their rows' user and item indices (-1: unknown, left out)."""
    df = pd.DataFrame(
        {
            "user": np.asarray(users, np.int64),
            "item": np.asarray(items, np.int64),
            "position": pd.to_numeric(impressions[C.POSITION], errors="coerce").to_numpy(np.float64),
            "time": pd.to_numeric(impressions[C.TIMESTAMP], errors="coerce").to_numpy(np.float64),
        }
    )
    df = df[(df["user"] >= 0) & (df["item"] >= 0) & df["position"].notna() & df["time"].notna()]
    df = df.sort_values(["user", "time"], kind="stable")
    return {
        int(u): Exposure(g["item"].to_numpy(np.int64), g["position"].to_numpy(np.int64), g["time"].to_numpy())
        for u, g in df.groupby("user", sort=False)
    }
