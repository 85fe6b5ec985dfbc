"""What a shopper's own items look like at a moment: the features the return scorer learns from.

:func:`return_features` describes each item a shopper viewed, favourited, carted or bought (counts per
event type, recency in time and in events, the current session, whether it is still in the cart,
the item's and its category's conversion among other shoppers, whether the category is bought
again); :class:`ItemStats` holds what the whole log says about items and categories. The model that
learns from them is :mod:`shopsense.ranking.returns`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shopsense import columns as C

# event kinds the features count (a click is a view from a list; a rating says it was bought)
VIEW, FAVORITE, CART, PURCHASE, REMOVAL = 0, 1, 2, 3, 4
KIND_OF = {
    C.VIEW: VIEW,
    C.CLICK: VIEW,
    C.FAVORITE: FAVORITE,
    C.ADD_TO_CART: CART,
    C.PURCHASE: PURCHASE,
    C.RATING: PURCHASE,
    C.REMOVE_FROM_CART: REMOVAL,
}
HOUR, DAY = 3600.0, 86400.0
SESSION_GAP = 30 * 60.0  # events closer than this belong to one session
#: the one-day half-life of the decayed weighted count (the strongest simple peer's)
HALF_LIFE = DAY
KIND_WEIGHT = np.array([1.0, 2.0, 3.0, 4.0], np.float32)  # view, favorite, cart, purchase

FEATURES = (
    "n_view",
    "n_favorite",
    "n_cart",
    "n_purchase",
    "decayed_count",
    "hours_since_last",
    "hours_since_first",
    "hours_since_last_view",
    "events_since",
    "recency_rank",
    "is_last",
    "in_cart",
    "bought",
    "days_active",
    "session_events",
    "session_share",
    "events_1h",
    "events_1d",
    "cat_events",
    "cat_share",
    "cat_bought",
    "cat_items",
    "cat_is_last",
    "hours_since_cat",
    "cat_recency_rank",
    "shopper_revisit_rate",
    "shopper_purchases",
    "shopper_carts",
    "history_len",
    "distinct_items",
    "hours_since_any",
    "item_views",
    "item_carts",
    "item_purchases",
    "item_conversion",
    "cat_purchases",
    "cat_conversion",
    "cat_rebuy_rate",
    "log_price",
)


@dataclass
class ShopperEvents:
    """One shopper's events in model terms, oldest first: item index, kind (see ``KIND_OF``), unix time."""

    items: np.ndarray
    kinds: np.ndarray
    times: np.ndarray

    @classmethod
    def of(cls, items: Any, event_types: Any, times: Any) -> ShopperEvents:
        """From item indices (-1: unknown to the model, dropped), event type names and timestamps;
        event types without a kind (searches) are dropped."""
        kinds = np.array([KIND_OF.get(t, -1) for t in event_types], np.int64)
        items = np.asarray(items, np.int64)
        keep = (kinds >= 0) & (items >= 0)
        return cls(items[keep], kinds[keep], np.asarray(times, np.float64)[keep])

    def before(self, t: float) -> ShopperEvents:
        """The events strictly before ``t`` (a purchase's own moment is not its history)."""
        keep = self.times < t
        return ShopperEvents(self.items[keep], self.kinds[keep], self.times[keep])

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class ItemStats:
    """What the shop's events say about each item and category (aligned with item indices)."""

    counts: np.ndarray  # (items, 4): views, favourites, carts, purchases by everyone
    category: np.ndarray  # leaf category code per item (-1: none)
    cat_views: np.ndarray  # per category code
    cat_purchases: np.ndarray
    cat_rebuy_rate: np.ndarray  # share of a category's buyers who bought in it again later
    cat_buyers: np.ndarray
    log_price: np.ndarray  # nan where unknown
    categories: list[str]  # the name of each code

    @classmethod
    def from_events(
        cls, items: np.ndarray, kinds: np.ndarray, users: np.ndarray, times: np.ndarray, products: pd.DataFrame
    ) -> ItemStats:
        """Counts over a whole log (parallel arrays) for the catalog ``products`` (row i = item i)."""
        n = len(products)
        keep = kinds < REMOVAL
        counts = np.zeros((n, 4), np.float32)
        np.add.at(counts, (items[keep], kinds[keep]), 1.0)
        codes, names = category_codes(products)
        n_cat = max(len(names), 1)
        item_cat = codes[items]
        known = item_cat >= 0
        cat_views = np.bincount(item_cat[known & (kinds == VIEW)], minlength=n_cat).astype(np.float32)
        bought = known & (kinds == PURCHASE)
        cat_purchases = np.bincount(item_cat[bought], minlength=n_cat).astype(np.float32)
        # a re-buy: the same shopper buying in the category again at a later moment (one order of
        # several items of a category is one moment)
        moments = pd.DataFrame({"u": users[bought], "c": item_cat[bought], "t": times[bought]}).drop_duplicates()
        per_pair = moments.groupby(["u", "c"]).size()
        buyers = np.bincount(per_pair.index.get_level_values("c"), minlength=n_cat).astype(np.float32)
        rebuyers = np.bincount(per_pair.index.get_level_values("c")[per_pair.to_numpy() > 1], minlength=n_cat)
        rebuy = np.where(buyers > 0, rebuyers / np.maximum(buyers, 1), 0.0).astype(np.float32)
        price = pd.to_numeric(products[C.PRICE], errors="coerce") if C.PRICE in products.columns else None
        log_price = (
            np.log1p(np.clip(price.to_numpy(dtype=float), 0, None)) if price is not None else np.full(n, np.nan)
        ).astype(np.float32)
        return cls(counts, codes, cat_views, cat_purchases, rebuy, buyers, log_price, names)

    def save(self, folder: Path) -> None:
        np.savez(
            folder / "item_stats.npz",
            counts=self.counts,
            category=self.category,
            cat_views=self.cat_views,
            cat_purchases=self.cat_purchases,
            cat_rebuy_rate=self.cat_rebuy_rate,
            cat_buyers=self.cat_buyers,
            log_price=self.log_price,
        )
        (folder / "categories.json").write_text(json.dumps(self.categories), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> ItemStats:
        z = np.load(folder / "item_stats.npz")
        names = json.loads((folder / "categories.json").read_text(encoding="utf-8"))
        return cls(**{k: z[k] for k in z.files}, categories=names)


def cart_items(ev: ShopperEvents) -> np.ndarray:
    """What is in the shopper's cart: items added and neither removed nor bought since (sorted)."""
    last: dict[int, int] = {}
    for item, kind in zip(ev.items.tolist(), ev.kinds.tolist(), strict=True):
        if kind in (CART, REMOVAL, PURCHASE):
            last[item] = kind
    return np.array(sorted(i for i, k in last.items() if k == CART), np.int64)


def category_codes(products: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """A code per product for its full category path (-1: none) and the path of each code: the leaf
    category says what a product is (two coffees are substitutes, coffee and a grinder are not)."""
    n = len(products)
    cats = products[C.CATEGORY] if C.CATEGORY in products.columns else pd.Series([None] * n)
    codes, names = pd.factorize(pd.Series(cats, dtype=object).map(lambda c: c if isinstance(c, str) and c else None))
    return np.asarray(codes, np.int64), [str(x) for x in names]


def return_features(
    ev: ShopperEvents, now: float, stats: ItemStats, own_counts: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The shopper's distinct items (those they viewed, favourited, carted or bought) and one row of
    :data:`FEATURES` per item, at time ``now``. ``own_counts`` (items x 4): the shopper's own share of
    ``stats.counts``, subtracted so items are described by other shoppers (default: the counts in ``ev``)."""
    touch = ev.kinds < REMOVAL
    it, kind, t = ev.items[touch], ev.kinds[touch], ev.times[touch]
    m = len(it)
    if not m:
        return np.zeros(0, np.int64), np.zeros((0, len(FEATURES)), np.float32)
    items, ii = np.unique(it, return_inverse=True)
    n = len(items)
    pos = np.arange(m)
    counts = np.zeros((n, 4), np.float32)
    np.add.at(counts, (ii, kind), 1.0)
    last_pos = np.full(n, -1)
    np.maximum.at(last_pos, ii, pos)
    last_t, first_t = t[last_pos], np.full(n, np.inf)
    np.minimum.at(first_t, ii, t)

    def last_time_of(k: int) -> np.ndarray:
        out = np.full(n, -np.inf)
        sel = kind == k
        np.maximum.at(out, ii[sel], t[sel])
        return out

    last_view, last_cart, last_buy = last_time_of(VIEW), last_time_of(CART), last_time_of(PURCHASE)
    removal = ev.kinds == REMOVAL
    last_removal = np.full(n, -np.inf)
    if removal.any():
        r_items, r_times = ev.items[removal], ev.times[removal]
        at = np.searchsorted(items, r_items)
        ok = (at < n) & (items[np.minimum(at, n - 1)] == r_items)
        np.maximum.at(last_removal, at[ok], r_times[ok])
    in_cart = (last_cart > -np.inf) & (last_cart >= last_buy) & (last_cart > last_removal)
    decayed = np.bincount(ii, weights=KIND_WEIGHT[kind] * 0.5 ** ((now - t) / HALF_LIFE), minlength=n)
    day = (np.floor(t / DAY) - np.floor(t[0] / DAY)).astype(np.int64)
    span = int(day.max()) + 1
    days_active = np.bincount(np.unique(ii * span + day) // span, minlength=n)
    recency_rank = np.empty(n, np.float32)
    recency_rank[np.argsort(-last_pos)] = np.arange(n)
    # the current session: events after the last gap of 30 minutes, if the shopper is still in it
    gaps = np.flatnonzero(np.diff(t) > SESSION_GAP)
    start = gaps[-1] + 1 if len(gaps) else 0
    in_session = pos >= start if now - t[-1] <= SESSION_GAP else np.zeros(m, bool)
    session_events = np.bincount(ii[in_session], minlength=n).astype(np.float32)
    age = now - t
    cat = stats.category[items]
    ev_cat = stats.category[it]
    same = (cat[:, None] == ev_cat[None, :]) & (cat[:, None] >= 0)  # (items, events)
    cat_events = same.sum(axis=1).astype(np.float32)
    cat_bought = (same & (kind == PURCHASE)[None, :]).sum(axis=1).astype(np.float32)
    item_same = (cat[:, None] == cat[None, :]) & (cat[:, None] >= 0)  # (items, items)
    cat_items = np.maximum(item_same.sum(axis=1), 1).astype(np.float32)
    cat_recency = (item_same & (last_pos[None, :] > last_pos[:, None])).sum(axis=1).astype(np.float32)
    last_cat_event = np.where(same, pos[None, :], -1).max(axis=1)
    hours_since_cat = np.where(last_cat_event >= 0, (now - t[np.maximum(last_cat_event, 0)]) / HOUR, np.nan)
    first_pos = np.full(n, m)
    np.minimum.at(first_pos, ii, pos)
    revisit_rate = float((pos != first_pos[ii]).mean())
    own = counts if own_counts is None else own_counts
    others = np.maximum(stats.counts[items] - own, 0.0)
    n_cat = len(stats.cat_views)
    safe_cat = np.clip(cat, 0, max(n_cat - 1, 0))
    has_cat = (cat >= 0) & (n_cat > 0)
    cat_purchases = np.where(has_cat, stats.cat_purchases[safe_cat] - cat_bought, 0.0) if n_cat else np.zeros(n)
    cat_views = np.where(has_cat, stats.cat_views[safe_cat], 0.0) if n_cat else np.zeros(n)
    cat_rebuy = np.where(has_cat, stats.cat_rebuy_rate[safe_cat], 0.0) if n_cat else np.zeros(n)
    cols: list[Any] = [
        counts[:, VIEW],
        counts[:, FAVORITE],
        counts[:, CART],
        counts[:, PURCHASE],
        decayed,
        (now - last_t) / HOUR,
        (now - first_t) / HOUR,
        np.where(last_view > -np.inf, (now - last_view) / HOUR, np.nan),
        m - 1 - last_pos,
        recency_rank,
        last_pos == m - 1,
        in_cart,
        last_buy > -np.inf,
        days_active,
        session_events,
        session_events / max(int(in_session.sum()), 1),
        np.bincount(ii[age < HOUR], minlength=n),
        np.bincount(ii[age < DAY], minlength=n),
        cat_events,
        cat_events / m,
        cat_bought,
        cat_items,
        has_cat & (cat == ev_cat[-1]),
        hours_since_cat,
        cat_recency,
        revisit_rate,
        (kind == PURCHASE).sum(),
        (kind == CART).sum(),
        m,
        n,
        (now - t[-1]) / HOUR,
        others[:, VIEW],
        others[:, CART],
        others[:, PURCHASE],
        (others[:, PURCHASE] + 0.1) / (others[:, VIEW] + 1.0),
        cat_purchases,
        cat_purchases / (cat_views + 1.0),
        cat_rebuy,
        stats.log_price[items],
    ]
    out = np.empty((n, len(cols)), np.float32)
    for j, c in enumerate(cols):  # column by column: cheaper than converting and stacking 39 arrays
        out[:, j] = c
    return items, out
