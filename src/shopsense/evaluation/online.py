"""Online metrics from the knowledge store: what was shown (impressions) and what followed (events).

An impression counts as clicked, added to cart or purchased by :func:`shopsense.data.outcomes.label_impressions`
(an event of that type quoting its ``request_id`` and ``item_id``, not earlier than it). Rates are per impression (CTR = clicked impressions / impressions;
conversion = purchased impressions / impressions), grouped by model version, source or surface.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from shopsense import columns as C
from shopsense.data.outcomes import OUTCOMES, PURCHASE_VALUE, label_impressions

__all__ = ["OUTCOMES", "PURCHASE_VALUE", "label_impressions", "online_metrics", "online_report"]

GROUPS = (C.MODEL_VERSION, C.SOURCE, C.SURFACE)


def online_metrics(
    impressions: pd.DataFrame, events: pd.DataFrame, by: Sequence[str] = (C.MODEL_VERSION,)
) -> pd.DataFrame:
    """Per group: ``impressions``, ``requests``, ``clicks``, ``add_to_carts``, ``purchases``, ``ctr``,
    ``add_to_cart_rate``, ``conversion`` (purchases per impression) and ``request_ctr`` (requests
    with at least one click). Missing group values show as ``"(none)"``."""
    by = list(by)
    unknown = [b for b in by if b not in impressions.columns]
    if unknown:
        raise ValueError(f"cannot group by {', '.join(unknown)}; valid: {', '.join(GROUPS)}")
    cols = ["impressions", "requests", "clicks", "add_to_carts", "purchases"]
    rates = ["ctr", "add_to_cart_rate", "conversion", "request_ctr"]
    if impressions.empty:
        return pd.DataFrame(columns=[*by, *cols, *rates])
    imp = label_impressions(impressions, events)
    for b in by:
        imp[b] = imp[b].astype(object).where(imp[b].notna(), "(none)").astype(str)
    g = imp.groupby(by, sort=True, dropna=False)
    out = pd.DataFrame(
        {
            "impressions": g.size(),
            "requests": g[C.REQUEST_ID].nunique(),
            "clicks": g[C.CLICK].sum(),
            "add_to_carts": g[C.ADD_TO_CART].sum(),
            "purchases": g[C.PURCHASE].sum(),
        }
    )
    clicked_requests = imp[imp[C.CLICK]].groupby(by, sort=True)[C.REQUEST_ID].nunique()
    out["ctr"] = out["clicks"] / out["impressions"]
    out["add_to_cart_rate"] = out["add_to_carts"] / out["impressions"]
    out["conversion"] = out["purchases"] / out["impressions"]
    out["request_ctr"] = clicked_requests.reindex(out.index, fill_value=0) / out["requests"]
    return out.reset_index()


def online_report(store: Any, by: Sequence[Sequence[str]] = ((C.MODEL_VERSION,), (C.SOURCE,))) -> dict[str, list[dict]]:
    """Online metrics read from a :class:`~shopsense.store.KnowledgeStore`, one table per grouping
    (default: per model version and per source), as JSON-ready records."""
    impressions = store.impressions()
    events = store.events(event_types=list(OUTCOMES))
    return {
        "+".join(b): online_metrics(impressions, events, b).to_dict(orient="records") for b in (list(x) for x in by)
    }
