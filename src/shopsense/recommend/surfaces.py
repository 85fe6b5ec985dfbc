"""Surfaces: the named lists of a shop's pages, each with its own candidates and exclusions.

- ``for_you`` (home): discovery (the version's sources, never an item the shopper touched) and
  return items (their own items, scored by :class:`~shopsense.ranking.returns.ReturnScorer`) in one
  list, ordered by the probability of being the next purchase: a return item's is learned, a
  discovery item's is the held-out hit rate of its rank. At most ``max_return_share`` of the list
  are return items.
- ``continue_shopping``: return items only, best first.
- ``buy_again``: items the shopper bought, of kinds the shop's shoppers buy again.
- ``similar`` (product page): substitutes, as ``/similar``.
- ``bought_together`` (product page): complements of one product, not substitutes.
- ``complete_the_cart`` (cart page): complements of everything in the cart, minus what is in it.

An item bought before is a return candidate only where it is re-bought (its category's re-buy rate,
or the settings); :func:`return_candidates` applies that rule for every surface.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from shopsense.ranking.return_features import FEATURES, ShopperEvents
from shopsense.ranking.returns import ReturnScorer
from shopsense.recommend.fallbacks import Ranked

Surface = Literal["for_you", "continue_shopping", "buy_again", "similar", "bought_together", "complete_the_cart"]
SURFACES: tuple[str, ...] = get_args(Surface)
#: surfaces that describe a product rather than a shopper (they need an item id)
ITEM_SURFACES = ("similar", "bought_together")
RETURN = "return"  # the source name of a return item
COMPLEMENT = "bought_together"

_F = {name: i for i, name in enumerate(FEATURES)}


@dataclass
class Returns:
    """A shopper's return candidates now: item indices, next-purchase probability, their features."""

    items: np.ndarray
    probs: np.ndarray
    features: np.ndarray
    rebuyable: np.ndarray

    @classmethod
    def none(cls) -> Returns:
        return cls(
            np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros((0, len(FEATURES)), np.float32), np.zeros(0, bool)
        )

    def feature(self, name: str) -> np.ndarray:
        return self.features[:, _F[name]]

    @property
    def bought(self) -> np.ndarray:
        return self.feature("n_purchase") > 0

    @property
    def in_cart(self) -> np.ndarray:
        return self.feature("in_cart") > 0

    def ranked(self, keep: np.ndarray) -> Ranked:
        """The kept candidates best first (probability, then the most recent)."""
        idx = np.flatnonzero(keep)
        order = idx[np.lexsort((self.feature("recency_rank")[idx], -self.probs[idx]))]
        return Ranked(self.items[order], self.probs[order].astype(np.float32), [RETURN] * len(order))


def return_candidates(scorer: ReturnScorer | None, events: ShopperEvents, now: float) -> Returns:
    """The shopper's own items scored now (none without a scorer: a log it could not learn from)."""
    if scorer is None or not len(events):
        return Returns.none()
    items, probs, feats = scorer.score(events, now)
    return Returns(items, probs, feats, scorer.rebuyable(items))


def returnable(returns: Returns) -> np.ndarray:
    """Which return candidates may be shown again: not bought, or bought and re-bought in the shop."""
    return ~returns.bought | returns.rebuyable


def for_you(discovery: Ranked, hit_rate: list[float], returns: Ranked, k: int, max_share: float) -> Ranked:
    """Discovery and return items in one list by next-purchase probability (see the module docstring);
    at most ``floor(max_share * k)`` return items among the first ``k``, the rest after them."""
    if not len(returns):
        return discovery
    rates = np.asarray(hit_rate or [0.0], np.float32)
    d_prob = rates[np.minimum(np.arange(len(discovery)), len(rates) - 1)]
    items = np.r_[discovery.items, returns.items]
    probs = np.r_[d_prob, returns.scores].astype(np.float32)
    is_return = np.r_[np.zeros(len(discovery), bool), np.ones(len(returns), bool)]
    order = np.argsort(-probs, kind="stable")  # ties: discovery first, each in its own order
    cap = int(np.floor(max_share * k))
    first: list[int] = []
    later: list[int] = []
    taken = 0
    for i in order:
        if is_return[i] and (taken >= cap or len(first) >= k):
            later.append(int(i))
            continue
        taken += bool(is_return[i])
        first.append(int(i))
    pick = np.array(first + later, np.int64)
    sources = [*discovery.sources, *returns.sources]
    return Ranked(items[pick], probs[pick], [sources[i] for i in pick])


def return_reason(returns: Returns, item: int) -> str:
    """Why a return item is shown: the cart, a favourite, or how often and how lately it was viewed."""
    row = np.flatnonzero(returns.items == item)
    if not len(row):
        return "you looked at this before"
    f = returns.features[row[0]]
    if f[_F["in_cart"]] > 0:
        return "still in your cart"
    if f[_F["n_purchase"]] > 0:
        return "you bought this before"
    if f[_F["n_favorite"]] > 0:
        return "you saved this"
    views, hours = int(f[_F["n_view"]]), float(f[_F["hours_since_last"]])
    when = "today" if hours < 24 else "this week" if hours < 24 * 7 else "before"
    times = {1: "", 2: " twice"}.get(views, f" {views} times")
    return f"you viewed this{times} {when}"
