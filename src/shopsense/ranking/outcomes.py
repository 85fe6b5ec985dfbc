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
the tuned fusion (or the next-item ranker); it is then refitted on every list. With logged search
lists it is one ranker for both surfaces (:mod:`shopsense.ranking.joint`), held out and served per
surface.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.data.dataset import Dataset
from shopsense.engine_config import OutcomesConfig, RankerConfig
from shopsense.models.base import Histories
from shopsense.ranking import candidates as cand
from shopsense.ranking import exposure
from shopsense.ranking.joint import SearchLists, joint_names
from shopsense.ranking.propensity import Propensities
from shopsense.ranking.ranker import LambdaRanker, WeightedFusion, widen

if TYPE_CHECKING:
    from shopsense.ranking.pipeline import Engine

#: the list surfaces the outcome ranker serves: the home page's, and search's (whose lists carry a
#: query; :mod:`shopsense.ranking.joint` learns from both)
RECOMMEND, SEARCH = "recommend", "search"

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
    queries: list[str] | None = None  # per list, what was searched (search lists)

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
            None if self.queries is None else [self.queries[r] for r in rows],
        )


def shown_lists(
    labelled: pd.DataFrame,
    ds: Dataset,
    config: OutcomesConfig,
    surfaces: list[str] | None = None,
    *,
    unknown_users: bool = False,
) -> ShownLists:
    """The latest ``config.max_requests`` lists of ``surfaces`` (default ``config.surfaces``) with an
    outcome, from impressions labelled by :func:`~shopsense.data.outcomes.label_impressions`; rows of
    items the dataset does not know (products removed) are left out, and rows of users it does not
    know (deleted, opted out) too unless ``unknown_users`` (search: an anonymous shopper's list
    still says which products answer a query; their user index is -1)."""
    surfaces = config.surfaces if surfaces is None else surfaces
    with_queries = surfaces == [SEARCH]
    empty = ShownLists(np.zeros(0, np.int64), np.zeros(0), [], [], [], [] if with_queries else None)
    if labelled.empty:
        return empty
    imp = labelled[labelled[C.SURFACE].isin(surfaces) & labelled[C.USER].notna()]
    if with_queries:
        imp = imp[imp[C.QUERY].notna()] if C.QUERY in imp.columns else imp.iloc[:0]
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
            "query": imp[C.QUERY].astype(str).to_numpy() if with_queries else "",
        }
    )
    if unknown_users:  # the shared anonymous id is nobody's history
        anonymous = imp[C.USER].astype(str).to_numpy() == C.ANONYMOUS_USER
        df.loc[anonymous, "user"] = -1
    df = df[((df["user"] >= 0) | unknown_users) & (df["item"] >= 0)]
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
        [str(g["query"].iloc[0]) for g in groups] if with_queries else None,
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


def with_exposure(
    feats: cand.Candidates, lists: ShownLists, labelled: pd.DataFrame, ds: Dataset, config: OutcomesConfig
) -> cand.Candidates:
    """``feats`` of ``lists`` followed by the exposure columns (:mod:`shopsense.ranking.exposure`):
    what each list's shopper had been shown before it, from every impression logged (any surface,
    with an outcome or not)."""
    shown = exposure.by_user(
        labelled,
        ds.users.to_internal(labelled[C.USER].astype(str).to_numpy(), strict=False),
        ds.items.to_internal(labelled[C.ITEM].astype(str).to_numpy(), strict=False),
    )
    before = [shown.get(int(u)) for u in lists.users]
    return exposure.extend(feats, before, lists.times.tolist(), config.exposure_days, config.exposure_limit)


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
    search: SearchLists | None = None,
    search_names: Sequence[str] = (),
) -> tuple[LambdaRanker | None, list[str], dict[str, Any]]:
    """Train on the older lists (plus the next-item groups), compare on the latest ``heldout_share``
    of each surface's lists with what that surface serves otherwise (``fallback`` for the
    recommendation lists; search's own ranking, :attr:`SearchLists.served`, for search); returns
    the ranker refitted on every list and the surfaces it won on by ``config.min_gain`` ("recommend",
    "search"), or None when it won on none. With ``search`` (its query features ``search_names``)
    it is the joint ranker of :mod:`shopsense.ranking.joint`: one table, both surfaces' lists.
    Metrics say how many lists and impressions it used."""
    joint = search is not None and len(search) > 0
    names = joint_names(feats.names, search_names) if joint else list(feats.names)
    width = len(names)
    weights = ips_weights(lists, propensities)
    extra_x: list[np.ndarray] = []
    extra_y: list[np.ndarray] = []
    extra_w: list[np.ndarray] = []
    if next_item is not None and config.next_item_weight > 0:
        c, targets = next_item
        for items, x, t in zip(c.items, c.features, targets, strict=True):
            extra_x.append(widen(x, width))
            extra_y.append((items == t).astype(np.int32))
            extra_w.append(np.full(len(items), config.next_item_weight, np.float32))
    rec_train, rec_held = _split(len(lists), config.heldout_share)
    s_lists = (
        search.lists if joint and search is not None else ShownLists(np.zeros(0, np.int64), np.zeros(0), [], [], [])
    )
    s_weights = ips_weights(s_lists, propensities)
    s_train, s_held = _split(len(s_lists), config.heldout_share)

    def fit(rec_rows: np.ndarray, search_rows: np.ndarray) -> LambdaRanker:
        xs = extra_x + [widen(feats.features[r], width) for r in rec_rows]
        ys = extra_y + [lists.grades[r] for r in rec_rows]
        ws = extra_w + [weights[r] for r in rec_rows]
        if search is not None:
            xs += [search.features[r] for r in search_rows]
            ys += [s_lists.grades[r] for r in search_rows]
            ws += [s_weights[r] for r in search_rows]
        return LambdaRanker(ranker_config).fit_groups(xs, ys, ws, names)

    metrics: dict[str, Any] = {
        "lists": len(lists),
        "impressions": lists.impressions,
        "heldout_lists": int(len(rec_held)),
        "propensities": propensities.summary() if propensities is not None else "not measured (too few swapped clicks)",
    }
    if joint:
        metrics["search"] = {"lists": len(s_lists), "impressions": s_lists.impressions, "heldout_lists": len(s_held)}
    if not len(rec_train) and not len(s_train):
        metrics["chosen"] = "fallback: too few lists to hold some out"
        return None, [], metrics
    say(
        f"training the ranker on {len(rec_train)} logged recommendation lists"
        + (f" and {len(s_train)} search lists" if joint else "")
        + " with outcomes, holding out the latest"
    )
    ranker = fit(rec_train, s_train)
    won: list[str] = []
    if len(rec_held) and len(rec_train):
        held_x = [feats.features[r] for r in rec_held]
        held_g = [lists.grades[r] for r in rec_held]
        held_w = [weights[r] for r in rec_held]
        if isinstance(fallback, LambdaRanker):  # the next-item ranker: the candidate columns only
            base_scores = [fallback.predict(x[:, : len(fallback.names)]) for x in held_x]
        else:
            base_scores = [fallback.predict_with(x, feats.names) for x in held_x]
        metrics["heldout_ndcg@10"] = {
            "outcome_ranker": ndcg_at([ranker.predict(widen(x, width)) for x in held_x], held_g, held_w),
            "served_without_it": ndcg_at(base_scores, held_g, held_w),
            "logged_order": ndcg_at([-lists.positions[r].astype(np.float64) for r in rec_held], held_g, held_w),
        }
        h = metrics["heldout_ndcg@10"]
        metrics["heldout_gain"] = h["outcome_ranker"] - h["served_without_it"]
        if metrics["heldout_gain"] > config.min_gain:
            won.append(RECOMMEND)
    else:
        metrics["heldout_gain"] = None
    if joint and search is not None and len(s_held) and len(s_train):
        held_g = [s_lists.grades[r] for r in s_held]
        held_w = [s_weights[r] for r in s_held]
        sm = metrics["search"]
        sm["heldout_ndcg@10"] = {
            "joint_ranker": ndcg_at([ranker.predict(search.features[r]) for r in s_held], held_g, held_w),
            "served_without_it": ndcg_at([search.served[r] for r in s_held], held_g, held_w),
            "logged_order": ndcg_at([-s_lists.positions[r].astype(np.float64) for r in s_held], held_g, held_w),
        }
        sm["heldout_gain"] = sm["heldout_ndcg@10"]["joint_ranker"] - sm["heldout_ndcg@10"]["served_without_it"]
        if sm["heldout_gain"] > config.min_gain:
            won.append(SEARCH)
        sm["chosen"] = "joint ranker" if SEARCH in won else "fallback: search's own ranking won on the held-out lists"
    if RECOMMEND not in won:
        metrics["chosen"] = (
            "fallback: the outcome ranker did not win on the held-out lists"
            if metrics["heldout_gain"] is not None
            else "fallback: too few logged recommendation lists to hold some out"
        )
    else:
        metrics["chosen"] = "outcome ranker"
    if not won:
        return None, [], metrics
    say(f"the {'joint' if joint else 'outcome'} ranker wins on held-out {' and '.join(won)} lists: refitting on all")
    return fit(np.arange(len(lists)), np.arange(len(s_lists))), won, metrics


def _split(n: int, heldout_share: float) -> tuple[np.ndarray, np.ndarray]:
    """Older and latest (held-out) positions of ``n`` lists in time order."""
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    n_held = max(1, int(round(n * heldout_share)))
    return np.arange(n - n_held), np.arange(n - n_held, n)
