"""The ranker learned from outcomes: what shoppers did with the lists they were shown.

Each logged list (a request's impressions, joined to the clicks, carts and purchases that quote its
``request_id``) becomes one LambdaRank group with graded labels: nothing 0 < click 1 < add to cart 2
< purchase 3. Its rows are the candidate features of :mod:`shopsense.ranking.candidates` computed as
the request saw them: the shopper's history up to the moment of the list, scored by sources fitted
only on events before the first list learned from (so no outcome leaks into a feature). Clicks are
weighted by the inverse of their position's examination propensity (:mod:`shopsense.ranking.propensity`)
when the randomised swap slice has measured it. The next-item groups the engine learns from without
a log are added, so a thin log still has the crowd's sequences behind it.

The latest share of the lists is held out: the outcome ranker is served only when it ranks their
outcomes higher (NDCG@10, graded and propensity-weighted) than what would be served without it,
the tuned fusion (or the next-item ranker); it is then refitted on every list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.data.dataset import Dataset
from shopsense.engine_config import OutcomesConfig, RankerConfig
from shopsense.models.base import Histories
from shopsense.ranking import candidates as cand
from shopsense.ranking.propensity import Propensities
from shopsense.ranking.ranker import LambdaRanker, WeightedFusion

if TYPE_CHECKING:
    from shopsense.ranking.pipeline import Engine

#: graded outcome of a shown item (the strongest that followed it)
GRADES = {C.CLICK: 1, C.ADD_TO_CART: 2, C.PURCHASE: 3}


@dataclass
class ShownLists:
    """Logged lists that drew at least one outcome, in the dataset's indices, oldest first."""

    users: np.ndarray  # user index per list
    times: np.ndarray  # when it was shown
    items: list[np.ndarray]  # item indices in shown order
    positions: list[np.ndarray]  # 0-based shown positions
    grades: list[np.ndarray]  # per item: 0 nothing, 1 click, 2 cart, 3 purchase

    def __len__(self) -> int:
        return len(self.users)

    @property
    def impressions(self) -> int:
        return int(sum(len(i) for i in self.items))

    @property
    def cutoff(self) -> float:
        """When the first of these lists was shown: features are computed from events before it."""
        return float(self.times.min()) if len(self) else float("inf")

    def subset(self, rows: np.ndarray) -> ShownLists:
        rows = np.asarray(rows, np.int64)
        return ShownLists(
            self.users[rows],
            self.times[rows],
            [self.items[r] for r in rows],
            [self.positions[r] for r in rows],
            [self.grades[r] for r in rows],
        )


def shown_lists(labelled: pd.DataFrame, ds: Dataset, config: OutcomesConfig) -> ShownLists:
    """The latest ``config.max_requests`` lists of ``config.surfaces`` with an outcome, from impressions
    labelled by :func:`~shopsense.data.outcomes.label_impressions`; rows of users or items the
    dataset does not know (deleted, opted out, products removed) are left out."""
    empty = ShownLists(np.zeros(0, np.int64), np.zeros(0), [], [], [])
    if labelled.empty:
        return empty
    imp = labelled[labelled[C.SURFACE].isin(config.surfaces) & labelled[C.USER].notna()]
    grade = np.zeros(len(imp), np.int8)
    for col, g in GRADES.items():
        grade = np.where(imp[col].to_numpy(dtype=bool), np.maximum(grade, g), grade)
    df = pd.DataFrame(
        {
            "request": imp[C.REQUEST_ID].astype(str).to_numpy(),
            "user": ds.users.to_internal(imp[C.USER].astype(str).to_numpy(), strict=False),
            "item": ds.items.to_internal(imp[C.ITEM].astype(str).to_numpy(), strict=False),
            "position": pd.to_numeric(imp[C.POSITION]).to_numpy(dtype=np.int64),
            "time": pd.to_numeric(imp[C.TIMESTAMP]).to_numpy(dtype=np.float64),
            "grade": grade,
        }
    )
    df = df[(df["user"] >= 0) & (df["item"] >= 0)]
    useful = df.groupby("request")["grade"].transform("max") > 0
    df = df[useful]
    if df.empty:
        return empty
    first = df.groupby("request", sort=False)["time"].min().sort_values(kind="stable")
    keep = first.index[-config.max_requests :]
    df = df[df["request"].isin(set(keep))].sort_values(["time", "request", "position"], kind="stable")
    groups = [g for _, g in df.groupby("request", sort=False)]  # first appearance: already in time order
    return ShownLists(
        np.array([int(g["user"].iloc[0]) for g in groups], np.int64),
        np.array([float(g["time"].iloc[0]) for g in groups]),
        [g["item"].to_numpy(np.int64) for g in groups],
        [g["position"].to_numpy(np.int64) for g in groups],
        [g["grade"].to_numpy(np.int32) for g in groups],
    )


def list_features(
    engine: Engine, lists: ShownLists, ds: Dataset, side: cand.ItemSide
) -> tuple[cand.Candidates, ShownLists]:
    """Candidate features of each list's items as its request saw them: the user's events before
    the list, scored by ``engine``'s current sources (fitted before :attr:`ShownLists.cutoff`).
    Lists of shoppers without an event before them are left out (serving answered those from the
    fallbacks, not the ranker); returns the features and the lists they describe."""
    full = Histories.from_dataset(ds, lists.users)
    assert full.weights is not None and full.timestamps is not None
    cut = np.array([np.searchsorted(full.timestamps[r], t, side="left") for r, t in enumerate(lists.times)], np.int64)
    keep = np.flatnonzero(cut > 0)
    lists = lists.subset(keep)
    hist = Histories(
        [full.items[r][: cut[r]] for r in keep],
        [full.weights[r][: cut[r]] for r in keep],
        [full.timestamps[r][: cut[r]] for r in keep],
    )
    seen = [np.unique(h) for h in hist.items]  # what serving excludes from the sources' proposals
    props = engine.proposals(hist, engine.config.per_source, seen)
    return cand.build(hist, props, side, engine.config.per_source, only=lists.items), lists


def ips_weights(lists: ShownLists, propensities: Propensities | None) -> list[np.ndarray]:
    """Per row: 1 / examination propensity of its position for items with an outcome, 1 otherwise."""
    out = []
    for pos, g in zip(lists.positions, lists.grades, strict=True):
        w = np.ones(len(g), np.float32)
        if propensities is not None:
            w = np.where(g > 0, 1.0 / propensities.at(pos), 1.0).astype(np.float32)
        out.append(w)
    return out


def ndcg_at(scores: list[np.ndarray], grades: list[np.ndarray], weights: list[np.ndarray], k: int = 10) -> float:
    """Mean NDCG@k of the lists ranked by ``scores``, gains ``(2^grade - 1) * weight``."""
    vals = []
    for s, g, w in zip(scores, grades, weights, strict=True):
        gain = (2.0 ** g.astype(np.float64) - 1.0) * w
        if gain.sum() <= 0:
            continue
        disc = 1.0 / np.log2(np.arange(2, min(k, len(g)) + 2))
        got = gain[np.argsort(-s, kind="stable")][:k]
        ideal = np.sort(gain)[::-1][:k]
        vals.append(float((got * disc[: len(got)]).sum() / (ideal * disc[: len(ideal)]).sum()))
    return float(np.mean(vals)) if vals else 0.0


def learn(
    feats: cand.Candidates,
    lists: ShownLists,
    propensities: Propensities | None,
    next_item: tuple[cand.Candidates, np.ndarray] | None,
    fallback: WeightedFusion | LambdaRanker,
    config: OutcomesConfig,
    ranker_config: RankerConfig,
    say: Callable[[str], None] = lambda _m: None,
) -> tuple[LambdaRanker | None, dict[str, Any]]:
    """Train on the older lists (plus the next-item groups), compare on the latest ``heldout_share``
    with ``fallback`` (what is served otherwise); the outcome ranker refitted on every list when it
    wins by ``config.min_gain``, else None. Metrics say how many lists and impressions it used."""
    weights = ips_weights(lists, propensities)
    extra_x: list[np.ndarray] = []
    extra_y: list[np.ndarray] = []
    extra_w: list[np.ndarray] = []
    if next_item is not None and config.next_item_weight > 0:
        c, targets = next_item
        for items, x, t in zip(c.items, c.features, targets, strict=True):
            extra_x.append(x)
            extra_y.append((items == t).astype(np.int32))
            extra_w.append(np.full(len(items), config.next_item_weight, np.float32))
    n_held = max(1, int(round(len(lists) * config.heldout_share)))
    train, held = np.arange(len(lists) - n_held), np.arange(len(lists) - n_held, len(lists))

    def fit(rows: np.ndarray) -> LambdaRanker:
        xs = extra_x + [feats.features[r] for r in rows]
        ys = extra_y + [lists.grades[r] for r in rows]
        ws = extra_w + [weights[r] for r in rows]
        return LambdaRanker(ranker_config).fit_groups(xs, ys, ws, feats.names)

    metrics: dict[str, Any] = {
        "lists": len(lists),
        "impressions": lists.impressions,
        "heldout_lists": int(len(held)),
        "propensities": propensities.summary() if propensities is not None else "not measured (too few swapped clicks)",
    }
    if not len(train):
        metrics["chosen"] = "fallback: too few lists to hold some out"
        return None, metrics
    say(f"training the ranker on {len(train)} logged lists with outcomes, holding out the latest {len(held)}")
    ranker = fit(train)
    held_x = [feats.features[r] for r in held]
    held_g = [lists.grades[r] for r in held]
    held_w = [weights[r] for r in held]
    if isinstance(fallback, LambdaRanker):
        base_scores = [fallback.predict(x) for x in held_x]
    else:
        base_scores = [fallback.predict_with(x, feats.names) for x in held_x]
    metrics["heldout_ndcg@10"] = {
        "outcome_ranker": ndcg_at([ranker.predict(x) for x in held_x], held_g, held_w),
        "served_without_it": ndcg_at(base_scores, held_g, held_w),
        "logged_order": ndcg_at([-lists.positions[r].astype(np.float64) for r in held], held_g, held_w),
    }
    h = metrics["heldout_ndcg@10"]
    metrics["heldout_gain"] = h["outcome_ranker"] - h["served_without_it"]
    if metrics["heldout_gain"] <= config.min_gain:
        metrics["chosen"] = "fallback: the outcome ranker did not win on the held-out lists"
        return None, metrics
    say(f"the outcome ranker wins on held-out lists (+{metrics['heldout_gain']:.4f} NDCG@10): refitting on all")
    metrics["chosen"] = "outcome ranker"
    return fit(np.arange(len(lists))), metrics
