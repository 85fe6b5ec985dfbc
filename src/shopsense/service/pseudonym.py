"""Optional pseudonymisation of user ids.

With ``service.pseudonym_secret`` set, the store never sees a shop's raw user ids: every route maps
the raw id to ``HMAC-SHA256(secret, id)`` before touching the store or the models, so the same raw id
always lands on the same stored id (recommendations, search personalisation and deletion all work)
while the store alone cannot be linked back to the shop's customers.
"""

from __future__ import annotations

import hashlib
import hmac


class Pseudonymizer:
    """Maps raw user ids to stored ids (identity when no secret is configured)."""

    def __init__(self, secret: str | None) -> None:
        self._key = secret.encode("utf-8") if secret else None

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def user(self, raw: str) -> str:
        """The id under which ``raw`` is stored."""
        if self._key is None:
            return raw
        return "u_" + hmac.new(self._key, raw.encode("utf-8"), hashlib.sha256).hexdigest()[:40]

    def users(self, raws: list[str]) -> list[str]:
        if self._key is None:
            return raws
        cache: dict[str, str] = {}
        return [cache.setdefault(r, self.user(r)) if r not in cache else cache[r] for r in raws]
