"""Position bias: how much more often shoppers examine the first position than the k-th, measured on
the randomised swap slice of traffic (:mod:`shopsense.experiments.position_swap`).

Estimator (the swap intervention of Joachims, Swaminathan and Schnabel, WSDM 2017): in a swapped
response the item ranked first is shown at position k; in an ordinary response it is shown first.
The swap is random, so the two groups' first-ranked items are equally relevant in expectation and

    examination(k) / examination(1) = CTR(ranked first, shown at k) / CTR(ranked first, shown first).

Why this one and not an EM estimator on the whole log: an EM (regression) estimator has to separate
position from relevance with a relevance model, and a personalised list puts its most relevant
items on top, so any error in that model leaks into the propensities; the swap needs no model, only
a small randomised slice. A 2% slice gives few clicks per position, so the per-position ratios are
pooled by one parameter: examination(p) = p^-eta (p = 1, 2, ...), fitted by weighted least squares
on the log ratios (weights: the inverse of each ratio's approximate log variance); it also extends
past the deepest swapped position. Propensities are floored (:data:`MIN_PROPENSITY`) so a click far
down never weighs more than 1 / floor clicks on top.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from shopsense import columns as C

MIN_PROPENSITY = 0.05  # clicks at a position examined less often than this weigh as if examined this often
MIN_SWAP_CLICKS = 30  # clicks on swapped first-ranked items needed before the estimate is used


@dataclass(frozen=True)
class Propensities:
    """Examination probability of each position relative to the first: ``(position + 1) ** -eta``."""

    eta: float
    measured: dict[int, float] = field(default_factory=dict)  # 0-based position -> ratio measured there
    swap_clicks: int = 0  # clicks on first-ranked items shown lower (what the estimate rests on)
    swapped_requests: int = 0
    baseline_requests: int = 0

    def at(self, positions: np.ndarray) -> np.ndarray:
        """Relative examination of 0-based ``positions`` (1.0 at the top), floored at MIN_PROPENSITY."""
        p = np.asarray(positions, dtype=np.float64)
        return np.clip((p + 1.0) ** -self.eta, MIN_PROPENSITY, 1.0)

    def summary(self) -> dict[str, object]:
        return {
            "estimator": "swap intervention, power law fitted to the per-position ratios",
            "eta": round(self.eta, 4),
            "measured": {str(k + 1): round(v, 4) for k, v in sorted(self.measured.items())},
            "swap_clicks": self.swap_clicks,
            "swapped_requests": self.swapped_requests,
            "baseline_requests": self.baseline_requests,
        }


def estimate(labelled: pd.DataFrame, min_clicks: int = MIN_SWAP_CLICKS) -> Propensities | None:
    """Propensities from impressions labelled with clicks (:func:`~shopsense.data.outcomes.label_impressions`):
    columns request_id, position, ranked_position (set on swapped responses), experiment, click.
    None when the swapped slice has fewer than ``min_clicks`` clicks on its swapped first items, or
    the ordinary responses none on their first: too little to tell position from chance."""
    need = {C.REQUEST_ID, C.POSITION, C.RANKED_POSITION, C.CLICK}
    if labelled.empty or not need <= set(labelled.columns):
        return None
    ranked = pd.to_numeric(labelled[C.RANKED_POSITION], errors="coerce")
    position = pd.to_numeric(labelled[C.POSITION], errors="coerce")
    click = labelled[C.CLICK].astype(bool)
    swapped_req = set(labelled.loc[ranked.notna(), C.REQUEST_ID])
    in_swap = labelled[C.REQUEST_ID].isin(swapped_req)
    outside = labelled[C.EXPERIMENT].isna() if C.EXPERIMENT in labelled.columns else True
    # ordinary responses: the item shown first was ranked first
    base = ~in_swap & outside & (position == 0)
    n0, c0 = int(base.sum()), int(click[base].sum())
    # swapped responses: the item ranked first, shown at position k
    top = in_swap & (ranked == 0) & (position > 0)
    at_k = position[top].astype(int)
    n_k = at_k.value_counts()
    c_k = at_k[click[top]].value_counts().reindex(n_k.index, fill_value=0)
    swap_clicks = int(c_k.sum())
    if swap_clicks < min_clicks or c0 == 0:
        return None
    ctr0 = c0 / n0
    measured = {int(k): float(c_k[k] / n_k[k] / ctr0) for k in n_k.index}
    # weighted least squares through the origin: log ratio = -eta * log(position + 1); half a click
    # added per position keeps a position without clicks in the fit instead of at log(0)
    ks = n_k.index.to_numpy(dtype=np.int64)
    c = c_k.reindex(ks).to_numpy(dtype=np.float64) + 0.5
    logr = np.log(c / n_k.reindex(ks).to_numpy(dtype=np.float64) / ctr0)
    x = np.log(ks + 1.0)
    w = 1.0 / (1.0 / c + 1.0 / c0)
    eta = float(max(0.0, -(w * x * logr).sum() / (w * x * x).sum()))
    return Propensities(eta, measured, swap_clicks, len(swapped_req), n0)
