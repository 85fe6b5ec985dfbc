"""Online metrics from the knowledge store: what was shown (impressions) and what followed (events).

An impression is one (request, item, position) row the service logged. It counts as clicked, added to
cart or purchased when an event of that type carries the same ``request_id`` and ``item_id`` and is not
earlier than the impression. Rates are per impression (CTR = clicked impressions / impressions;
conversion = purchased impressions / impressions), grouped by model version, source or surface.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from shopsense import columns as C

OUTCOMES = (C.CLICK, C.ADD_TO_CART, C.PURCHASE)
GROUPS = (C.MODEL_VERSION, C.SOURCE, C.SURFACE)


#: :func:`label_impressions`'s column of the purchase's ``value`` (the sum over its purchase events)
PURCHASE_VALUE = "purchase_value"


def label_impressions(impressions: pd.DataFrame, events: pd.DataFrame, *, values: bool = False) -> pd.DataFrame:
    """``impressions`` plus one boolean column per outcome (click, add_to_cart, purchase); with
    ``values``, also :data:`PURCHASE_VALUE`: what its purchases' events say they were worth (NaN when
    not purchased or when no purchase event gave a value)."""
    imp = impressions.reset_index(drop=True).copy()
    for col in OUTCOMES:
        imp[col] = False
    if values:
        imp[PURCHASE_VALUE] = np.nan
    if imp.empty or events.empty or C.REQUEST_ID not in events.columns:
        return imp
    ev = events[events[C.EVENT_TYPE].isin(OUTCOMES) & events[C.REQUEST_ID].notna() & events[C.ITEM].notna()]
    if ev.empty:
        return imp
    left = pd.DataFrame(
        {
            "row": np.arange(len(imp)),
            C.REQUEST_ID: imp[C.REQUEST_ID].astype(str).to_numpy(dtype=object),
            C.ITEM: imp[C.ITEM].astype(str).to_numpy(dtype=object),
            "shown_at": pd.to_numeric(imp[C.TIMESTAMP], errors="coerce").to_numpy(dtype=float),
        }
    )
    right = pd.DataFrame(
        {
            C.REQUEST_ID: ev[C.REQUEST_ID].astype(str).to_numpy(dtype=object),
            C.ITEM: ev[C.ITEM].astype(str).to_numpy(dtype=object),
            C.EVENT_TYPE: ev[C.EVENT_TYPE].astype(str).to_numpy(dtype=object),
            "at": pd.to_numeric(ev[C.TIMESTAMP], errors="coerce").to_numpy(dtype=float),
            C.VALUE: pd.to_numeric(ev[C.VALUE], errors="coerce").to_numpy(dtype=float)
            if C.VALUE in ev.columns
            else np.full(len(ev), np.nan),
        }
    )
    m = left.merge(right, on=[C.REQUEST_ID, C.ITEM], how="inner")
    # an event before the impression cannot be its outcome (NaN times: accept, the ids already match)
    later = ~(m["at"] < m["shown_at"])
    m = m[later]
    for col in OUTCOMES:
        rows = m.loc[m[C.EVENT_TYPE] == col, "row"].to_numpy(dtype=np.int64)
        flag = np.zeros(len(imp), dtype=bool)
        flag[rows] = True
        imp[col] = flag
    if values:
        bought = m[(m[C.EVENT_TYPE] == C.PURCHASE) & m[C.VALUE].notna()]
        imp.loc[:, PURCHASE_VALUE] = bought.groupby("row")[C.VALUE].sum().reindex(np.arange(len(imp))).to_numpy()
    return imp


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
