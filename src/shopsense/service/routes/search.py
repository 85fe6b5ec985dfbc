"""``GET /search`` (with facets), ``GET /autocomplete`` and ``POST /search/image`` (read scope, or the page key
for its shopper)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from shopsense.ranking.ranked import RankedItem
from shopsense.search.request import SearchRequest
from shopsense.search.result import SearchResult
from shopsense.service.arms import Shown, routing
from shopsense.service.deps import AppState, Caller, ListKey
from shopsense.service.lean import lean_get
from shopsense.service.routes.lists import call_engine, hits, in_engine_lane, log_shown
from shopsense.service.schemas import Hit, ListResponse, SearchResponse, Suggestions

router = APIRouter(tags=["search"])


class SearchQuery(BaseModel):
    """``GET /search``'s query string (validated in one pass: :mod:`shopsense.service.lean`)."""

    model_config = ConfigDict(extra="ignore")

    q: str = Field(..., min_length=1, max_length=500, description="the query")
    user_id: str | None = Field(
        None, min_length=1, max_length=256, description="personalise for this user (the page key: its shopper)"
    )
    k: int = Field(20, ge=1, le=200)
    category: str | None = Field(None, max_length=1000)
    brand: str | None = Field(None, max_length=500)
    min_price: float | None = Field(None, ge=0, le=1e12)
    max_price: float | None = Field(None, ge=0, le=1e12)
    available: bool | None = Field(None, description="only products in stock")
    details: bool = Field(False, description="include each product's catalog record")


@lean_get(router, "/search", response_model=SearchResponse)
async def search(request: Request, params: Annotated[SearchQuery, Query()], caller: Caller = ListKey) -> SearchResponse:
    """Products matching ``q`` for this user, with facet counts. The query is logged as the user's
    search event, so it shapes their recommendations too."""
    state: AppState = request.app.state.shopsense
    q, user_id, k, details = params.q, caller.acting_user(params.user_id), params.k, params.details
    served = state.served()
    uid = state.pseudonyms.user(user_id) if user_id else None
    filters: dict[str, Any] = {
        k_: v
        for k_, v in {
            "category": params.category,
            "brand": params.brand,
            "min_price": params.min_price,
            "max_price": params.max_price,
            "available": params.available,
        }.items()
        if v is not None
    }
    request_id = request.state.request_id

    ask = SearchRequest(q, uid, k, filters, request_id)

    # the default version, the arm's in an A/B experiment, both arms' when interleaving
    route = routing(state.models, served, "search", uid, state.settings.service.position_swap_share)

    def work() -> tuple[SearchResult, Shown, list[Hit]]:
        results = [call_engine(s.search, ask) for s in route.served]
        out = route.merge([r.ranked() for r in results], k, request_id)
        # total, facets and spelling are the first arm's (the control's): they do not depend on ranking
        return results[0], out, hits(state, out.items, details)

    res, out, shown = await in_engine_lane(state, work)
    if res.relaxed or not res.total:  # found nothing as typed: the dashboard counts these
        state.metrics.inc(NO_MATCH)
        if not res.total:
            state.metrics.inc(ZERO_RESULTS)
    if uid is not None:  # the user's search event, written with the impressions by the background flusher
        from shopsense.search.personal import search_event

        state.impressions.record_event(search_event(q, request_id, uid))
    rid = log_shown(state, request, uid, out, "search", q)
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
        relaxed=res.relaxed,
    )


#: searches that found nothing as typed (relaxed or not), and those that found nothing even relaxed
NO_MATCH = "shopsense_search_no_match_total"
ZERO_RESULTS = "shopsense_search_zero_results_total"


class AutocompleteQuery(BaseModel):
    """``GET /autocomplete``'s query string."""

    model_config = ConfigDict(extra="ignore")

    q: str = Field(..., min_length=1, max_length=200)
    k: int = Field(8, ge=1, le=50)


@lean_get(router, "/autocomplete", response_model=Suggestions, dependencies=[ListKey])
async def autocomplete(request: Request, params: Annotated[AutocompleteQuery, Query()]) -> Suggestions:
    """Completions of a typed prefix, from product titles and popular past queries."""
    state: AppState = request.app.state.shopsense
    q, k = params.q, params.k
    served = state.served()
    # async and in the engine lane like search: a sync route would cost a thread hand-over per keystroke
    found = await in_engine_lane(state, lambda: call_engine(served.autocomplete, q, k))
    return Suggestions(query=q, suggestions=found)


# ---------------------------------------------------------------------------- search by picture
#: the multipart form field that carries the picture
IMAGE_FIELD = "image"


def upload_bytes(content_type: str, body: bytes) -> bytes:
    """The picture of a ``POST /search/image`` body: raw bytes sent as ``image/*``, or the ``image``
    field (else the first file) of a ``multipart/form-data`` form. 415 for anything else."""
    ctype = content_type.split(";")[0].strip().lower()
    if ctype.startswith("image/") or ctype == "application/octet-stream":
        return body
    if ctype != "multipart/form-data":
        raise HTTPException(
            415,
            "send the picture as the body with an image/* Content-Type, or as the 'image' field of a multipart form",
        )
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    parts = list(message.iter_parts()) if message.is_multipart() else []
    named = [p for p in parts if p.get_param("name", header="content-disposition") == IMAGE_FIELD]
    chosen = (named or [p for p in parts if p.get_filename() is not None])[:1]
    payload = chosen[0].get_payload(decode=True) if chosen else None
    if not isinstance(payload, bytes) or not payload:
        raise HTTPException(400, f"the multipart form has no '{IMAGE_FIELD}' file")
    return payload


@router.post("/search/image", response_model=ListResponse)
async def search_image(
    request: Request,
    k: int = Query(20, ge=1, le=200, description="how many products"),
    category: str | None = Query(None, max_length=1000),
    brand: str | None = Query(None, max_length=500),
    available: bool | None = Query(None, description="only products in stock"),
    details: bool = Query(False, description="include each product's catalog record"),
    user_id: str | None = Query(None, min_length=1, max_length=256, description="who is looking (for logging)"),
    caller: Caller = ListKey,
) -> ListResponse:
    """Products that look like the uploaded picture (a model version trained with ``[images] model``).
    413 when the picture is larger than ``[images] max_upload_bytes``, 415 when it is no image."""
    from shopsense.features.image_cache import ImageFetchError

    state: AppState = request.app.state.shopsense
    limit = state.settings.images.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64_000:  # room for a form's headers
        raise HTTPException(413, f"the picture is larger than {limit:,} bytes ([images] max_upload_bytes)")
    data = upload_bytes(request.headers.get("content-type", ""), await request.body())
    if not data:
        raise HTTPException(400, "no picture: send the image as the request body")
    filters = {n: v for n, v in {"category": category, "brand": brand, "available": available}.items() if v is not None}
    served = state.served()
    uid = caller.acting_user(user_id)
    uid = state.pseudonyms.user(uid) if uid else None

    def work() -> tuple[list[RankedItem], list[Hit]]:
        try:
            items = call_engine(served.search_image, data, k, filters)
        except ImageFetchError as e:
            status = 413 if e.reason == "too_large" else 415
            raise HTTPException(status, f"not a usable picture: {e}") from None
        return items, hits(state, items, details)

    items, shown = await in_engine_lane(state, work)
    rid = log_shown(state, request, uid, Shown(items, served.version), "search_image")
    return ListResponse(request_id=rid, model_version=served.version, items=shown)
