"""How often shoppers acted on an item when it was shown: the item's click-through rate in the
impression log, corrected for position, as a ranker feature.

The sources say what a shopper's history predicts; this says what every shopper did when the item
was on a page, on any surface (a search click raises an item's rate on the home page too). Per item:
outcomes (a click, cart or purchase) over expected examinations, each impression counting as its
position's examination propensity (:mod:`shopsense.ranking.propensity`; 1 when unmeasured), so an
item shown at the bottom is not blamed for being looked at less. Smoothed towards the log's overall
rate with :data:`PRIOR_EXAMINATIONS` pseudo-examinations, so an item shown twice does not get a rate
of 0 or 1. Two features: ``ctr`` and ``log_shown`` (log 1 + expected examinations: how much the
rate rests on).

A feature of a logged list is computed from the impressions strictly before that list (its own
outcomes never leak into it); serving reads the rates of the whole log up to the training.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.data.dataset import Dataset
from shopsense.ranking.propensity import Propensities

NAMES = ("ctr", "log_shown")
PRIOR_EXAMINATIONS = 20.0
_ACTED = (C.CLICK, C.ADD_TO_CART, C.PURCHASE)


class ItemRates:
    """The impression log in time order: per impression its item, examination weight and outcome."""

    def __init__(self, times: np.ndarray, items: np.ndarray, exam: np.ndarray, acted: np.ndarray, n_items: int) -> None:
        order = np.argsort(times, kind="stable")
        self.times = np.asarray(times, np.float64)[order]
        self.items = np.asarray(items, np.int64)[order]
        self.exam = np.asarray(exam, np.float64)[order]
        self.acted = np.asarray(acted, bool)[order]
        self.n_items = int(n_items)
        total = float(self.exam.sum())
        self.prior = float(self.acted.sum() / total) if total > 0 else 0.0

    @classmethod
    def from_outcomes(cls, labelled: pd.DataFrame, ds: Dataset, propensities: Propensities | None) -> ItemRates:
        """Every labelled impression (:func:`~shopsense.data.outcomes.label_impressions`) of an item
        ``ds`` knows, on any surface."""
        items = ds.items.to_internal(labelled[C.ITEM].astype(str).to_numpy(), strict=False)
        known = items >= 0
        pos = pd.to_numeric(labelled[C.POSITION], errors="coerce").fillna(0).to_numpy(np.int64)[known]
        exam = propensities.at(pos) if propensities is not None else np.ones(len(pos))
        acted = np.zeros(len(labelled), bool)
        for col in _ACTED:
            if col in labelled.columns:
                acted |= labelled[col].to_numpy(dtype=bool)
        times = pd.to_numeric(labelled[C.TIMESTAMP], errors="coerce").to_numpy(np.float64)[known]
        return cls(times, items[known], exam, acted[known], ds.n_items)

    def _rates(self, acted: np.ndarray, exam: np.ndarray) -> np.ndarray:
        ctr = (acted + PRIOR_EXAMINATIONS * self.prior) / (exam + PRIOR_EXAMINATIONS)
        return np.stack([ctr, np.log1p(exam)], axis=1).astype(np.float32)

    def as_of(self, t: float = np.inf) -> np.ndarray:
        """(n_items, 2): every item's features from the impressions before ``t``."""
        n = int(np.searchsorted(self.times, t, side="left"))
        acted = np.bincount(self.items[:n], weights=self.acted[:n].astype(np.float64), minlength=self.n_items)
        exam = np.bincount(self.items[:n], weights=self.exam[:n], minlength=self.n_items)
        return self._rates(acted, exam)

    def at_lists(self, times: np.ndarray, items: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per list, its items' features from the impressions strictly before its time ``times[i]``."""
        acted = np.zeros(self.n_items, np.float64)
        exam = np.zeros(self.n_items, np.float64)
        out: list[np.ndarray] = [np.zeros((0, len(NAMES)), np.float32)] * len(items)
        done = 0
        for i in np.argsort(np.asarray(times, np.float64), kind="stable"):  # one pass through the log
            upto = int(np.searchsorted(self.times, times[i], side="left"))
            if upto > done:
                np.add.at(acted, self.items[done:upto], self.acted[done:upto])
                np.add.at(exam, self.items[done:upto], self.exam[done:upto])
                done = upto
            its = np.asarray(items[i], np.int64)
            out[i] = self._rates(acted[its], exam[its])
        return out


def overwrite(features: list[np.ndarray], names: Sequence[str], values: list[np.ndarray]) -> None:
    """Put each list's rates (from :meth:`ItemRates.at_lists`) into its feature rows' :data:`NAMES` columns."""
    cols = [list(names).index(n) for n in NAMES]
    for x, v in zip(features, values, strict=True):
        x[:, cols] = v
