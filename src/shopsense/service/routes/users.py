"""``DELETE /users/{user_id}``: forget a shopper everywhere (admin)."""

from __future__ import annotations

from fastapi import APIRouter, Path

from shopsense.service.deps import AdminKey, State
from shopsense.service.schemas import Deleted

router = APIRouter(tags=["users"])


@router.delete("/users/{user_id}", response_model=Deleted, dependencies=[AdminKey])
def delete_user(state: State, user_id: str = Path(..., min_length=1, max_length=256)) -> Deleted:
    """Delete the user's events, impressions and profile, and drop anything cached about it.

    Served lists are built from the store per request, so the user stops shaping anything at once;
    trained model versions forget it at the next training (they are built from the store).
    Raw ids are accepted when pseudonymisation is on (they are hashed the same way as at ingest).
    """
    stored_id = state.pseudonyms.user(user_id)
    state.impressions.flush()  # queued impressions of this user must not land after the delete
    counts = state.store.delete_user(stored_id)
    served = state.models.current
    if served is not None and hasattr(served, "forget_user"):
        served.forget_user(stored_id)
    return Deleted(deleted=counts)
