"""What followed an impression: the clicks, carts and purchases that quote its ``request_id``.

An impression is one (request, item, position) row the service logged. It counts as clicked, added to
cart or purchased when an event of that type carries the same ``request_id`` and ``item_id`` and is not
earlier than the impression. Online metrics (:mod:`shopsense.evaluation.online`), experiment reports
and the ranker learned from outcomes (:mod:`shopsense.ranking.outcomes`) all read this one join.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from shopsense import columns as C

OUTCOMES = (C.CLICK, C.ADD_TO_CART, C.PURCHASE)


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
