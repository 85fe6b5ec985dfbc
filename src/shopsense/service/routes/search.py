"""``GET /search`` (with facets) and ``GET /autocomplete`` (read scope, or the page key for its shopper)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from shopsense.search.request import SearchRequest
from shopsense.search.result import SearchResult
from shopsense.service.arms import Shown, routing
from shopsense.service.deps import ListKey, State, acting_user
from shopsense.service.routes.lists import call_engine, hits, in_engine_lane, log_shown
from shopsense.service.schemas import Hit, SearchResponse, Suggestions

router = APIRouter(tags=["search"])


@router.get("/search", response_model=SearchResponse)
async def search(
    request: Request,
    state: State,
    q: str = Query(..., min_length=1, max_length=500, description="the query"),
    user_id: str | None = acting_user("personalise for this user (the page key: its shopper)"),
    k: int = Query(20, ge=1, le=200),
    category: str | None = Query(None, max_length=1000),
    brand: str | None = Query(None, max_length=500),
    min_price: float | None = Query(None, ge=0, le=1e12),
    max_price: float | None = Query(None, ge=0, le=1e12),
    available: bool | None = Query(None, description="only products in stock"),
    details: bool = Query(False, description="include each product's catalog record"),
) -> SearchResponse:
    """Products matching ``q`` for this user, with facet counts. The query is logged as the user's
    search event, so it shapes their recommendations too."""
    served = state.served()
    uid = state.pseudonyms.user(user_id) if user_id else None
    filters: dict[str, Any] = {
        k_: v
        for k_, v in {
            "category": category,
            "brand": brand,
            "min_price": min_price,
            "max_price": max_price,
            "available": available,
        }.items()
        if v is not None
    }
    request_id = request.state.request_id

    ask = SearchRequest(q, uid, k, filters, request_id)

    # the default version, the arm's in an A/B experiment, both arms' when interleaving
    route = routing(state.models, served, "search", uid)

    def work() -> tuple[SearchResult, Shown, list[Hit]]:
        results = [call_engine(s.search, ask) for s in route.served]
        out = route.merge([r.ranked() for r in results], k, request_id)
        # total, facets and spelling are the first arm's (the control's): they do not depend on ranking
        return results[0], out, hits(state, out.items, details)

    res, out, shown = await in_engine_lane(state, work)
    if uid is not None:  # the user's search event, written with the impressions by the background flusher
        from shopsense.search.personal import search_event

        state.impressions.record_event(search_event(q, request_id, uid))
    rid = log_shown(state, request, uid, out.items, "search", out.logged_versions, q, out.experiment, out.logged_arms)
    return SearchResponse(
        request_id=rid,
        model_version=out.model_version,
        experiment=out.experiment,
        arm=out.arm,
        items=shown,
        query=q,
        total=res.total,
        facets=res.facets,
        did_you_mean=res.did_you_mean,
        showing_results_for=res.showing_results_for,
    )


@router.get("/autocomplete", response_model=Suggestions, dependencies=[ListKey])
async def autocomplete(
    state: State,
    q: str = Query(..., min_length=1, max_length=200),
    k: int = Query(8, ge=1, le=50),
) -> Suggestions:
    """Completions of a typed prefix, from product titles and popular past queries."""
    served = state.served()
    # async and in the engine lane like search: a sync route would cost a thread hand-over per keystroke
    found = await in_engine_lane(state, lambda: call_engine(served.autocomplete, q, k))
    return Suggestions(query=q, suggestions=found)
