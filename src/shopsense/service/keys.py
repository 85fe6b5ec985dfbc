"""API keys with scopes, stored hashed in the knowledge store.

A key looks like ``ss_<key_id>_<secret>``. Only its SHA-256 is stored, so a leaked database does not
leak usable keys. Scopes: ``read`` (recommend, search, similar, autocomplete, catalog reads),
``write`` (events), ``admin`` (catalog changes, training, deletion, keys; implies every scope).

One more kind exists only in a server's memory: the storefront's *page key* (scope ``shopper``). It
is public (any visitor of ``/`` can read it), so it acts only for the anonymous shopper of the
browser's session cookie (:mod:`shopsense.service.shoppers`): it reads lists and posts that
shopper's events, nothing else. ``admin`` does not imply it: an operator key names its user.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shopsense.store import KnowledgeStore

READ = "read"
WRITE = "write"
ADMIN = "admin"
SCOPES = (READ, WRITE, ADMIN)
#: the page key's scope: lists and events for the shopper of the browser session only (never stored)
SHOPPER = "shopper"
PREFIX = "ss_"

MISSING_KEY = "missing API key: send it as `X-API-Key: <key>` or `Authorization: Bearer <key>`"
INVALID_KEY = "invalid or revoked API key"


@dataclass(frozen=True)
class ApiKey:
    """A verified key: its public id and scopes."""

    key_id: str
    scopes: frozenset[str]
    name: str | None = None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or ADMIN in self.scopes

    @property
    def is_shopper(self) -> bool:
        """The storefront's page key: acts for the session cookie's shopper, never for a named user."""
        return SHOPPER in self.scopes


def presented_key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The API key a request carries: ``X-API-Key``, else an ``Authorization: Bearer`` token.
    ``headers`` are the ASGI scope's raw (lower-case name, value) byte pairs."""
    bearer = None
    for name, value in headers:
        if name == b"x-api-key" and value:
            return value.decode("latin-1")
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                bearer = token.strip()
    return bearer


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def check_scopes(scopes: Iterable[str]) -> list[str]:
    """Validated, de-duplicated scopes; a ValueError lists the valid ones."""
    out = list(dict.fromkeys(s.strip().lower() for s in scopes if s.strip()))
    bad = [s for s in out if s not in SCOPES]
    if bad or not out:
        raise ValueError(f"invalid scope(s) {bad or '(none)'}; valid: {', '.join(SCOPES)}")
    return out


def new_key() -> tuple[str, str]:
    """A fresh (key_id, full key)."""
    key_id = secrets.token_hex(4)
    return key_id, f"{PREFIX}{key_id}_{secrets.token_urlsafe(24)}"


def create_key(store: KnowledgeStore, scopes: Sequence[str], name: str | None = None) -> tuple[str, str]:
    """Create a key with ``scopes`` in the store; returns (key_id, key). The key is shown once, never stored."""
    scopes = check_scopes(scopes)
    key_id, key = new_key()
    store.add_api_key(key_id, hash_key(key), scopes, name)
    return key_id, key


class KeyRing:
    """Verifies presented keys against the store, with a short cache so a hot path costs one hash.

    ``extra`` keys live only in memory (the page key of the storefront); revocations in the store take
    effect within ``ttl_s`` seconds.
    """

    def __init__(self, store: KnowledgeStore, ttl_s: float = 5.0) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._extra: dict[str, ApiKey] = {}
        self._lock = threading.Lock()

    def add_ephemeral(self, scopes: Sequence[str], name: str, key: str | None = None) -> str:
        """A key valid for this process only (never written to the store); ``key`` reuses one made
        by a parent process so every worker of one server accepts the same page key. ``scopes`` may
        be ``[SHOPPER]`` (the page key) or stored scopes."""
        if key is None or not key.startswith(PREFIX) or key.count("_") < 2:
            key = new_key()[1]
        key_id = key.split("_")[1]
        valid = [SHOPPER] if list(scopes) == [SHOPPER] else check_scopes(scopes)
        self._extra[hash_key(key)] = ApiKey(key_id, frozenset(valid), name)
        return key

    def verify(self, key: str | None) -> ApiKey | None:
        if not key or not key.startswith(PREFIX) or len(key) > 200:
            return None
        h = hash_key(key)
        if h in self._extra:
            return self._extra[h]
        now = time.monotonic()
        hit = self._cache.get(h)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        row = self.store.find_api_key(h)
        found = None if row is None else ApiKey(row["key_id"], frozenset(row["scopes"]), row["name"])
        with self._lock:
            if len(self._cache) > 10_000:  # bound memory against floods of random keys
                self._cache.clear()
            self._cache[h] = (now, found)
        return found

    def forget(self) -> None:
        """Drop the cache (after a revocation through this process)."""
        with self._lock:
            self._cache.clear()
