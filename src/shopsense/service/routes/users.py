"""A shopper's rights (admin): delete (``DELETE /users/{id}``), export (``GET /users/{id}/export``) and
opt out of personalisation (``POST /users/{id}/opt-out``, back with ``POST /users/{id}/opt-in``); and
the merge of an anonymous shopper into the user they logged in as (``POST /users/{id}/link``).

The id is a path parameter that may hold any character the ingest accepts: ``a/b`` is sent as
``a%2Fb`` (or as is), ``100%`` as ``100%25``; surrounding whitespace is removed by the same rule as
at ingest (``shopsense.data.ids``), and raw ids are mapped to their pseudonyms like everywhere else.
The operation is the path's last segment, so an id that itself ends in ``/export`` still works.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Path

from shopsense.data.ids import normalize_id
from shopsense.exceptions import LinkError
from shopsense.service.deps import AdminKey, State
from shopsense.service.schemas import Deleted, Linked, LinkIn, OptOut, UserExport

router = APIRouter(tags=["users"])

UserPath = Path(
    ...,
    min_length=1,
    max_length=1024,
    description="the shopper's id as sent in their events, percent-encoded (`a/b` may be sent as `a%2Fb`)",
)


@router.delete("/users/{user_id:path}", response_model=Deleted, dependencies=[AdminKey])
def delete_user(state: State, user_id: str = UserPath) -> Deleted:
    """Delete the user's events, impressions and profile, the cached vectors of queries only they
    searched, and drop what the served engines hold about them in memory.

    Served lists are built from the store per request, so the user stops shaping anything at once;
    trained model versions forget it at the next training (they are built from the store).
    On SQLite the freed bytes are overwritten and the write-ahead log truncated (docs/service.md).
    """
    stored_id = state.pseudonyms.user(user_id)
    state.impressions.flush()  # queued impressions of this user must not land after the delete
    deletion = state.store.delete_users([stored_id], vacuum=state.settings.privacy.postgres_vacuum)
    for served in state.models.every_served():  # the experiments' arms hold searches too
        if hasattr(served, "forget_user"):
            served.forget_user(stored_id, deletion)
    return Deleted(deleted=deletion.counts)


@router.get("/users/{user_id:path}/export", response_model=UserExport, dependencies=[AdminKey])
def export_user(state: State, user_id: str = UserPath) -> UserExport:
    """Everything stored about the shopper as JSON: events, impressions, linked ids, opt-out state."""
    stored_id = state.pseudonyms.user(user_id)
    state.impressions.flush()  # what was shown a moment ago is part of it
    return UserExport(given_id=normalize_id(user_id, "user id"), **state.store.export_user(stored_id))


@router.post("/users/{user_id:path}/opt-out", response_model=OptOut, dependencies=[AdminKey])
def opt_out(state: State, user_id: str = UserPath) -> OptOut:
    """Stop personalising for the shopper: they get non-personal lists (trending and popular, search
    unpersonalised) and their events stop shaping anyone's lists, until they opt back in."""
    state.store.set_opted_out(state.pseudonyms.user(user_id), True)
    return OptOut(user_id=normalize_id(user_id, "user id"), opted_out=True)


@router.post("/users/{user_id:path}/opt-in", response_model=OptOut, dependencies=[AdminKey])
def opt_in(state: State, user_id: str = UserPath) -> OptOut:
    """Personalise for the shopper again (their stored events count again from the next request;
    trained models include them again from the next training)."""
    state.store.set_opted_out(state.pseudonyms.user(user_id), False)
    return OptOut(user_id=normalize_id(user_id, "user id"), opted_out=False)


@router.post("/users/{user_id:path}/link", response_model=Linked, dependencies=[AdminKey])
def link(body: LinkIn, state: State, user_id: str = UserPath) -> Linked:
    """Merge an anonymous shopper (the storefront's cookie id before they logged in) into the user:
    its events and impressions become the user's, so the user's next lists read them. Linking again
    moves only what the anonymous id did since. Export and deletion of the user cover the merged id.

    422 when both ids are one; 409 when the user was merged into the anonymous id before."""
    given, anon = normalize_id(user_id, "user id"), normalize_id(body.anonymous_id, "anonymous id")
    if given == anon:
        raise HTTPException(422, "cannot link a shopper to itself: anonymous_id must be the id used before logging in")
    state.impressions.flush()  # queued searches and impressions of the anonymous id move with it
    try:
        done = state.store.link_user(state.pseudonyms.user(given), state.pseudonyms.user(anon))
    except LinkError as e:
        raise HTTPException(409, str(e)) from None
    return Linked(
        user_id=given,
        anonymous_id=anon,
        events_moved=done.events,
        impressions_moved=done.impressions,
        already_linked=not done.new,
        opted_out=done.opted_out,
    )
