"""The feedback join: what was shown (impressions) joined to what followed (events quoting the
response's ``request_id``), summarised as CTR and conversion per model version and surface.

The dashboard reads :func:`online_summary`; where ``shopsense.evaluation.online`` exists it is used
instead (one definition of the online metrics for reports and dashboard alike).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from shopsense import columns as C
from shopsense.store import KnowledgeStore

CONVERSIONS = (C.ADD_TO_CART, C.PURCHASE)


def joined(store: KnowledgeStore) -> pd.DataFrame:
    """One row per impression with ``clicked`` and ``converted`` flags from events that quote its
    request_id and item."""
    imp = store.impressions()
    ev = store.events(event_types=[C.CLICK, *CONVERSIONS])
    ev = ev[ev[C.REQUEST_ID].notna()]
    out = imp.copy()
    keys = set(zip(ev[C.REQUEST_ID], ev[C.ITEM], strict=True))
    conv = ev[ev[C.EVENT_TYPE].isin(CONVERSIONS)]
    conv_keys = set(zip(conv[C.REQUEST_ID], conv[C.ITEM], strict=True))
    pairs = list(zip(out[C.REQUEST_ID], out[C.ITEM], strict=True))
    # a conversion on an impression implies it was acted on even without an explicit click event
    out["converted"] = [p in conv_keys for p in pairs]
    out["clicked"] = [p in keys for p in pairs]
    return out


def online_summary(store: KnowledgeStore) -> list[dict[str, Any]]:
    """CTR and conversion rate per (model_version, surface): over impressions and over responses."""
    try:
        from shopsense.evaluation import online  # type: ignore[attr-defined]

        fn = getattr(online, "online_summary", None)
        if callable(fn):
            return fn(store)
    except ImportError:
        pass
    df = joined(store)
    if df.empty:
        return []
    df[C.MODEL_VERSION] = df[C.MODEL_VERSION].fillna("(none)")
    rows = []
    for (version, surface), g in df.groupby([C.MODEL_VERSION, C.SURFACE], sort=True):
        by_req = g.groupby(C.REQUEST_ID)[["clicked", "converted"]].any()
        rows.append(
            {
                "model_version": str(version),
                "surface": str(surface),
                "responses": int(len(by_req)),
                "impressions": int(len(g)),
                "clicks": int(g["clicked"].sum()),
                "conversions": int(g["converted"].sum()),
                "ctr": float(g["clicked"].mean()),
                "conversion_rate": float(g["converted"].mean()),
                "response_ctr": float(by_req["clicked"].mean()),
            }
        )
    return rows
