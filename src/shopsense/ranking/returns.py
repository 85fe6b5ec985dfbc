"""Return candidates: the shopper's own viewed, favourited and carted items, scored by how likely the
shopper is to come back and buy each.

Most purchases are of items the shopper looked at first (63% of the last purchases in the Taobao
sample), so a shop's lists must decide when to show an item again. :func:`return_features` describes
each of a shopper's items at a moment (counts per event type, recency in time and in events, the
current session, whether it is still in the cart, the item's and its category's conversion among
other shoppers, whether the category is bought repeatedly); :class:`ReturnScorer` learns from the
shop's own log which of them predict the next purchase.

Training examples are moments in the log: each purchase (label: the bought item among the shopper's
earlier items) and each time a shopper came back to an item they had touched before (a view, a
favourite or a cart: the same behaviour, a hundred times more often; they outweigh nothing, their
weight is a setting). Items and categories are described by the other shoppers' events only (the
shopper's own are subtracted), so a purchase never describes itself. The model's scores are
calibrated, out of fold, into the probability that the item is the next purchase, so the "for you"
list can weigh a return item against a discovery item (see :mod:`shopsense.recommend.surfaces`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.engine_config import ReturnsConfig
from shopsense.ranking.return_features import (
    FEATURES,
    KIND_OF,
    PURCHASE,
    REMOVAL,
    VIEW,
    ItemStats,
    ShopperEvents,
    return_features,
)


# ---------------------------------------------------------------------------- learning from the log
@dataclass
class Moments:
    """Training examples: one group of candidate rows per moment of the log."""

    features: np.ndarray  # (rows, features)
    labels: np.ndarray  # 1 for the item the shopper came back to (or bought)
    groups: np.ndarray  # group id per row
    weights: np.ndarray  # per row: the moment's weight
    purchase: np.ndarray  # per group: the moment is a purchase
    users: np.ndarray  # per group


def shopper_logs(ds: Any) -> list[tuple[int, ShopperEvents]]:
    """Every shopper's events (item events, and cart removals where the dataset has them), oldest first."""
    inter = ds.interactions
    frames = [inter[[C.USER_IDX, C.ITEM_IDX, C.TIMESTAMP, C.EVENT_TYPE]]]
    removals = getattr(ds, "removals", None)
    if removals is not None and len(removals):
        frames.append(removals.assign(**{C.EVENT_TYPE: C.REMOVE_FROM_CART}))
    ev = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    order = np.lexsort((np.arange(len(ev)), ev[C.TIMESTAMP].to_numpy(float), ev[C.USER_IDX].to_numpy()))
    u = ev[C.USER_IDX].to_numpy()[order]
    items = ev[C.ITEM_IDX].to_numpy()[order]
    kinds = np.array([KIND_OF.get(t, -1) for t in ev[C.EVENT_TYPE].to_numpy()[order]], np.int64)
    times = ev[C.TIMESTAMP].to_numpy(float)[order]
    bounds = np.flatnonzero(np.diff(u)) + 1
    out = []
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(u)], strict=True):
        if hi > lo:
            e = ShopperEvents(items[lo:hi], kinds[lo:hi], times[lo:hi])
            keep = e.kinds >= 0
            out.append((int(u[lo]), ShopperEvents(e.items[keep], e.kinds[keep], e.times[keep])))
    return out


def log_stats(logs: list[tuple[int, ShopperEvents]], products: pd.DataFrame) -> ItemStats:
    """:class:`ItemStats` over every shopper's log."""
    if not logs:
        z = np.zeros(0, np.int64)
        return ItemStats.from_events(z, z, z, z.astype(float), products)
    return ItemStats.from_events(
        np.concatenate([e.items for _, e in logs]),
        np.concatenate([e.kinds for _, e in logs]),
        np.concatenate([np.full(len(e), u) for u, e in logs]),
        np.concatenate([e.times for _, e in logs]),
        products,
    )


def own_counts(ev: ShopperEvents, items: np.ndarray) -> np.ndarray:
    """(items x 4) counts of the shopper's own events per kind for ``items`` (sorted)."""
    out = np.zeros((len(items), 4), np.float32)
    touch = ev.kinds < REMOVAL
    at = np.searchsorted(items, ev.items[touch])
    ok = (at < len(items)) & (items[np.minimum(at, len(items) - 1)] == ev.items[touch])
    np.add.at(out, (at[ok], ev.kinds[touch][ok]), 1.0)
    return out


def moments(logs: list[tuple[int, ShopperEvents]], stats: ItemStats, config: ReturnsConfig) -> Moments | None:
    """The log's purchases and returns as training groups (see the module docstring); None without any."""
    rng = np.random.default_rng(config.seed)
    picked: list[tuple[int, int, float, bool]] = []  # (log index, event index, weight, is purchase)
    revisits: list[tuple[int, int, float, bool]] = []
    for li, (_, ev) in enumerate(logs):
        touch = ev.kinds < REMOVAL
        first: dict[int, float] = {}
        for k in np.flatnonzero(touch):
            item, t, kind = int(ev.items[k]), float(ev.times[k]), int(ev.kinds[k])
            came_back = first.get(item, np.inf) < t
            first.setdefault(item, t)
            if k == 0 or ev.times[0] >= t:
                continue  # nothing before it
            if kind == PURCHASE:
                picked.append((li, int(k), 1.0, True))
            elif came_back:
                w = config.revisit_weight if kind == VIEW else config.intent_weight
                if w > 0:
                    revisits.append((li, int(k), w, False))
    if len(picked) + len(revisits) > config.max_moments:  # purchases first, then a sample of returns
        room = max(config.max_moments - len(picked), 0)
        if len(picked) > config.max_moments:
            picked = [picked[i] for i in np.sort(rng.choice(len(picked), config.max_moments, replace=False))]
        revisits = [revisits[i] for i in np.sort(rng.choice(len(revisits), min(room, len(revisits)), replace=False))]
    chosen = picked + revisits
    feats: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    groups: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    purchase: list[bool] = []
    users: list[int] = []
    for li, at, w, is_buy in chosen:
        user, ev = logs[li]
        t = float(ev.times[at])
        hist = ev.before(t)
        if len(hist) > config.max_history:
            hist = ShopperEvents(*(a[-config.max_history :] for a in (hist.items, hist.kinds, hist.times)))
        items, f = return_features(hist, t, stats, own_counts(ev, np.unique(hist.items[hist.kinds < REMOVAL])))
        if not len(items):
            continue
        feats.append(f)
        labels.append((items == ev.items[at]).astype(np.float32))
        groups.append(np.full(len(items), len(purchase)))
        weights.append(np.full(len(items), w, np.float32))
        purchase.append(is_buy)
        users.append(user)
    if not feats:
        return None
    return Moments(
        np.concatenate(feats),
        np.concatenate(labels),
        np.concatenate(groups),
        np.concatenate(weights),
        np.array(purchase, bool),
        np.array(users, np.int64),
    )


class ReturnScorer:
    """A shopper's own items scored by the probability that each is their next purchase."""

    def __init__(self, config: ReturnsConfig, stats: ItemStats) -> None:
        self.config = config
        self.stats = stats
        self.booster: Any = None
        self.calibration = (1.0, 0.0)  # p = sigmoid(a * raw + b)
        self.metrics: dict[str, Any] = {}

    # ------------------------------------------------------------------ training
    @classmethod
    def fit(cls, ds: Any, config: ReturnsConfig, progress: Any = None) -> ReturnScorer | None:
        """Learn from ``ds``'s log; None when it has fewer than ``config.min_moments`` moments whose
        item the shopper had touched before (a log of one event type has none: nothing to learn)."""
        say = progress or (lambda _m: None)
        logs = shopper_logs(ds)
        stats = log_stats(logs, ds.products)
        say("building return moments from the log")
        data = moments(logs, stats, config)
        if data is None:
            return None
        hits = np.bincount(data.groups, weights=data.labels, minlength=len(data.purchase)) > 0
        if hits.sum() < config.min_moments:
            return None
        scorer = cls(config, stats)
        # out of fold (shoppers split in two): raw scores no model saw the answer of, for calibration
        fold = data.users % 2
        row_fold = fold[data.groups]
        raw = np.zeros(len(data.labels), np.float64)
        for f in (0, 1):
            train = row_fold != f
            if train.any() and (~train).any() and data.labels[train].any():
                raw[~train] = _booster(data, train, config).predict(data.features[~train], raw_score=True)
        say(f"training the return scorer on {int(hits.sum())} moments")
        scorer.booster = _booster(data, np.ones(len(data.labels), bool), config)
        # calibrate on purchases (the next purchase is what the lists are judged on) when there are enough
        rows = (
            data.purchase[data.groups] if data.purchase[hits].sum() >= config.min_moments else np.ones_like(raw, bool)
        )
        scorer.calibration = _platt(raw[rows], data.labels[rows])
        scorer.metrics = _oof_metrics(data, raw, hits)
        return scorer

    # ------------------------------------------------------------------ scoring
    def score(self, ev: ShopperEvents, now: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The shopper's items, the probability that each is their next purchase, and their features."""
        if len(ev) > self.config.max_history:
            ev = ShopperEvents(*(a[-self.config.max_history :] for a in (ev.items, ev.kinds, ev.times)))
        items, feats = return_features(ev, now, self.stats)
        if not len(items):
            return items, np.zeros(0, np.float32), feats
        raw = np.asarray(self.booster.predict(feats, raw_score=True, num_threads=1), np.float64)
        a, b = self.calibration
        return items, (1.0 / (1.0 + np.exp(-(a * raw + b)))).astype(np.float32), feats

    def rebuyable(self, items: np.ndarray) -> np.ndarray:
        """Whether each item is of a kind the shop's shoppers buy again (its category's re-buy rate,
        unless the settings name the category)."""
        cfg, st = self.config, self.stats
        cat = st.category[items]
        ok = (cat >= 0) & (len(st.cat_buyers) > 0)
        safe = np.where(ok, cat, 0)
        # a category with few buyers borrows the shop-wide rate (shrunk towards it by rebuy_min_buyers)
        shop_rate = float((st.cat_rebuy_rate * st.cat_buyers).sum() / max(st.cat_buyers.sum(), 1.0))
        buyers = np.where(ok, st.cat_buyers[safe], 0.0) if len(st.cat_buyers) else np.zeros(len(items))
        rate = np.where(ok, st.cat_rebuy_rate[safe], 0.0) if len(st.cat_buyers) else np.zeros(len(items))
        shrunk = (rate * buyers + cfg.rebuy_min_buyers * shop_rate) / (buyers + cfg.rebuy_min_buyers)
        learned = shrunk >= cfg.rebuy_min_rate
        names = np.array(st.categories + [""], dtype=object)[np.where(ok, cat, -1)]
        always = np.isin(names, list(cfg.rebuy_categories)) if cfg.rebuy_categories else np.zeros(len(items), bool)
        never = np.isin(names, list(cfg.never_rebuy_categories)) if cfg.never_rebuy_categories else always & False
        return (learned | always) & ~never

    # ------------------------------------------------------------------ persistence
    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(folder / "returns.lgb.txt"))
        self.stats.save(folder)
        meta = {"config": self.config.model_dump(mode="json"), "calibration": self.calibration, "metrics": self.metrics}
        (folder / "returns.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> ReturnScorer:
        import lightgbm as lgb

        meta = json.loads((folder / "returns.json").read_text(encoding="utf-8"))
        scorer = cls(ReturnsConfig(**meta["config"]), ItemStats.load(folder))
        scorer.booster = lgb.Booster(model_file=str(folder / "returns.lgb.txt"))
        scorer.calibration = tuple(meta["calibration"])  # type: ignore[assignment]
        scorer.metrics = meta.get("metrics", {})
        return scorer


def _booster(data: Moments, rows: np.ndarray, config: ReturnsConfig) -> Any:
    import lightgbm as lgb

    params = {
        "objective": "binary",
        "learning_rate": config.learning_rate,
        "num_leaves": config.num_leaves,
        "min_data_in_leaf": config.min_data_in_leaf,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "num_threads": 1,
        "seed": config.seed,
        "deterministic": True,
        "verbose": -1,
    }
    train = lgb.Dataset(data.features[rows], data.labels[rows], weight=data.weights[rows], feature_name=list(FEATURES))
    return lgb.train(params, train, num_boost_round=config.rounds)


def _platt(raw: np.ndarray, labels: np.ndarray, steps: int = 50) -> tuple[float, float]:
    """Logistic calibration ``sigmoid(a * raw + b)`` by Newton's method (Platt scaling)."""
    a, b = 1.0, 0.0
    if not len(raw) or labels.min() == labels.max():
        return a, b
    x = np.stack([raw, np.ones_like(raw)], axis=1)
    w = np.array([a, b])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        grad = x.T @ (p - labels)
        hess = (x * (p * (1 - p))[:, None]).T @ x + 1e-6 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w = w - step
        if np.abs(step).max() < 1e-8:
            break
    return float(w[0]), float(w[1])


def _oof_metrics(data: Moments, raw: np.ndarray, hits: np.ndarray) -> dict[str, Any]:
    """Out-of-fold NDCG@10 over the purchase moments: the model, and the decayed count it must beat."""
    decayed = data.features[:, FEATURES.index("decayed_count")]
    out: dict[str, Any] = {"moments": int(len(data.purchase)), "purchase_moments": int(data.purchase.sum())}
    bounds = np.searchsorted(data.groups, np.arange(len(data.purchase) + 1))  # rows are grouped in order
    for name, s in (("returns", raw), ("decayed_count", decayed)):
        gains = []
        for g in np.flatnonzero(data.purchase):
            rows = np.arange(bounds[g], bounds[g + 1])
            order = rows[np.argsort(-s[rows], kind="stable")][:10]
            hit = np.flatnonzero(data.labels[order] > 0)
            gains.append(1.0 / np.log2(hit[0] + 2) if len(hit) else 0.0)
        out[f"oof_purchase_ndcg@10_{name}"] = float(np.mean(gains)) if gains else 0.0
    return out
