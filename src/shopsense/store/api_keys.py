"""API keys, stored by their hash only (the secret itself never reaches the store). A mixin of the
knowledge store; the service's key ring (``service/keys.py``) makes and checks the keys."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import select

from shopsense import columns as C
from shopsense.store import tables as T
from shopsense.store.base import StoreBase
from shopsense.store.errors import guarded


@guarded  # driver errors leave these methods as StoreError / StoreBusyError (store/errors.py)
class KeyRows(StoreBase):
    """Mixin of the knowledge store: API keys (role :class:`~shopsense.store.roles.KeyRing`)."""

    def add_api_key(self, key_id: str, key_hash: str, scopes: Sequence[str], name: str | None = None) -> None:
        """Store an API key by its hash (the secret itself is never stored)."""
        with self.engine.begin() as c:
            c.execute(
                T.api_keys.insert().values(
                    key_id=key_id,
                    key_hash=key_hash,
                    scopes=",".join(scopes),
                    name=name,
                    created_at=time.time(),
                    revoked=0,
                )
            )

    def find_api_key(self, key_hash: str) -> dict[str, Any] | None:
        """The live (not revoked) key with this hash, or None."""
        k = T.api_keys
        with self.engine.connect() as c:
            row = c.execute(select(k).where(k.c.key_hash == key_hash, k.c.revoked == 0)).mappings().first()
        if row is None:
            return None
        return {**row, "scopes": [s for s in row["scopes"].split(",") if s]}

    def api_keys(self) -> pd.DataFrame:
        """Every key's id, scopes, name, creation time and revocation flag (never the hash)."""
        k = T.api_keys
        cols = ["key_id", "scopes", "name", C.CREATED_AT, "revoked"]
        with self.engine.connect() as c:
            rows = c.execute(select(*[k.c[x] for x in cols]).order_by(k.c[C.CREATED_AT])).fetchall()
        return pd.DataFrame(rows, columns=cols)

    def revoke_api_key(self, key_id: str) -> bool:
        """Revoke a key; False when no key has this id."""
        k = T.api_keys
        with self.engine.begin() as c:
            return c.execute(k.update().where(k.c.key_id == key_id).values(revoked=1)).rowcount > 0
