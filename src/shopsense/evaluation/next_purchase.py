"""Next purchase on a funnel log: the engine's surfaces scored on what shoppers bought next, nothing masked.

On a log with views, carts and purchases most purchases are of items the shopper looked at first, so
the leave-one-out protocol (the next *item*, the shopper's own items masked) measures the wrong thing
there: every list scores about zero. This protocol scores each list on the shopper's next purchase,
with their own items allowed, through the surfaces a shop shows (``for_you``, ``continue_shopping``)
and against the simple peers of ``../shared/data/taobao-userbehavior-sample/README.md``. Used by
``benchmarks/next_purchase.py`` (the README's protocol) and by ``shopsense evaluate recommend`` on a
shop's own funnel log (:mod:`shopsense.evaluation.shop`, a time split).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shopsense import columns as C

if TYPE_CHECKING:
    from shopsense.data.dataset import Dataset
    from shopsense.engine_config import OnlineConfig
    from shopsense.ranking.pipeline import Engine
    from shopsense.ranking.return_features import ShopperEvents

K = 10
#: event types that come before a purchase in a funnel (a log with purchases and one of these is a funnel log)
FUNNEL_STEPS = frozenset({C.VIEW, C.CLICK, C.FAVORITE, C.ADD_TO_CART})


def is_funnel_log(ds: Dataset) -> bool:
    """Whether ``ds`` has purchases and the steps before them (views, favourites or carts)."""
    types = set(ds.interactions[C.EVENT_TYPE].unique())
    return C.PURCHASE in types and bool(types & FUNNEL_STEPS)


def gains(ranked: np.ndarray, target: Any, ks: tuple[int, ...] = (10, 20)) -> dict[str, float]:
    """HR@k and NDCG@k of one target in one ranked list (-1 padding never matches)."""
    hit = np.flatnonzero(np.asarray(ranked[: max(ks)]) == target)
    rank = int(hit[0]) if len(hit) else max(ks)
    out = {}
    for k in ks:
        out[f"hr@{k}"] = float(rank < k)
        out[f"ndcg@{k}"] = float(1.0 / np.log2(rank + 2)) if rank < k else 0.0
    return out


def surface_lists(
    engine: Engine,
    histories: list[ShopperEvents],
    times: np.ndarray,
    online: OnlineConfig,
    *,
    k: int = K,
    shares: tuple[float, ...] = (),
) -> dict[str, list[np.ndarray]]:
    """Each shopper's ``for_you`` (and ``for_you`` at every other ``max_return_share`` in ``shares``),
    ``continue_shopping`` and discovery-only lists at ``times``, from their events before then, for a
    page of ``k`` (the return share's cap counts on it); each list goes on past ``k``."""
    from shopsense.models.base import Histories
    from shopsense.ranking.return_features import PURCHASE
    from shopsense.recommend.fallbacks import Ranked
    from shopsense.recommend.surfaces import for_you, return_candidates, returnable

    hist = Histories(
        [h.items[h.kinds <= PURCHASE][-online.history :] for h in histories], None, None, [None] * len(histories)
    )
    seen = [np.unique(h.items) for h in histories]
    d_items, d_scores, d_sources = engine.rank(hist, max(online.pool, 5 * k), seen)
    names = {
        online.max_return_share: "for_you",
        **{x: f"for_you, max_return_share {x:g}" for x in shares if x != online.max_return_share},
    }
    out: dict[str, list[np.ndarray]] = {n: [] for n in [*names.values(), "continue_shopping", "discovery only"]}
    for r, (h, t) in enumerate(zip(histories, times, strict=True)):
        back = (returns := return_candidates(engine.returns, h, float(t))).ranked(returnable(returns))
        n_ok = len(d_sources[r])
        disc = Ranked(d_items[r][:n_ok], d_scores[r][:n_ok], list(d_sources[r]))
        for share, name in names.items():
            out[name].append(np.asarray(for_you(disc, engine.discovery_hit_rate, back, k, share).items))
        out["continue_shopping"].append(np.asarray(back.items))
        out["discovery only"].append(np.asarray(disc.items))
    return out


def own_items_by_weighted_count(histories: list[ShopperEvents], times: np.ndarray, k: int = 20) -> list[np.ndarray]:
    """The README's strongest simple peer: the shopper's own items by weighted count (view 1, favourite
    2, cart 3, purchase 4) with a one-day half-life, ties to the most recent."""
    from shopsense.ranking.return_features import HALF_LIFE, KIND_WEIGHT, PURCHASE

    out = []
    for h, t in zip(histories, times, strict=True):
        keep = h.kinds <= PURCHASE
        items, kinds, when = h.items[keep], h.kinds[keep], h.times[keep]
        if not len(items):
            out.append(np.zeros(0, np.int64))
            continue
        w = KIND_WEIGHT[kinds] * 0.5 ** ((float(t) - when) / HALF_LIFE)  # the return features' decayed count
        uniq, inv = np.unique(items, return_inverse=True)
        score = np.bincount(inv, weights=w, minlength=len(uniq))
        last = np.zeros(len(uniq), np.int64)
        np.maximum.at(last, inv, np.arange(len(items)))
        out.append(uniq[np.lexsort((-last, -score))][:k])
    return out


def summarise(lists: list[np.ndarray], targets: np.ndarray, ks: tuple[int, ...] = (10, 20)) -> dict[str, Any]:
    """Mean HR@k and NDCG@k of ``lists`` against ``targets`` (one per shopper), with ``n_users``."""
    rows = pd.DataFrame([gains(lst, int(t), ks) for lst, t in zip(lists, targets, strict=True)])
    out: dict[str, Any] = {
        c: float(rows[c].mean()) if len(rows) else float("nan")
        for c in [f"{m}@{k}" for k in ks for m in ("hr", "ndcg")]
    }
    out["n_users"] = len(lists)
    out["primary"] = f"ndcg@{min(ks)}"
    return out
