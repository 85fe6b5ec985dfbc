"""API keys over HTTP (admin): create, list, revoke. The CLI twin is ``shopsense keys``."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Path

from shopsense.service import keys as K
from shopsense.service.deps import AdminKey, State
from shopsense.service.schemas import Deleted, KeyCreate, KeyCreated, KeyInfo

router = APIRouter(tags=["keys"])


@router.post("/keys", response_model=KeyCreated, status_code=201, dependencies=[AdminKey])
def create_key(state: State, body: KeyCreate) -> KeyCreated:
    """A new key; the response is the only time the key is shown."""
    key_id, key = K.create_key(state.store, body.scopes, body.name)
    return KeyCreated(key_id=key_id, key=key, scopes=K.check_scopes(body.scopes))


@router.get("/keys", response_model=list[KeyInfo], dependencies=[AdminKey])
def list_keys(state: State) -> list[KeyInfo]:
    df = state.store.api_keys()
    return [
        KeyInfo(
            key_id=r["key_id"],
            scopes=r["scopes"].split(","),
            name=r["name"] if isinstance(r["name"], str) else None,
            created_at=r["created_at"],
            revoked=bool(r["revoked"]),
        )
        for r in df.to_dict("records")
    ]


@router.delete("/keys/{key_id}", response_model=Deleted, dependencies=[AdminKey])
def revoke_key(state: State, key_id: str = Path(..., min_length=1, max_length=64)) -> Deleted:
    """Revoke a key (effective at once in this process, within seconds in others)."""
    if not state.store.revoke_api_key(key_id):
        raise HTTPException(404, f"unknown key {key_id!r}")
    state.keys.forget()
    return Deleted(deleted={"keys": 1})
