"""Anonymous shoppers merged into users: the storefront's cookie id is the user id of a shopper who
has not logged in; when they do, their events become the user's (``POST /users/{id}/link``,
``shopsense users link``).

A link moves the anonymous id's events and impressions to the user, in one transaction, and records
the pair in ``user_links`` with the time. Linking the same pair again moves only what the anonymous id
did since (nothing, usually). An opt-out on either id holds for the merged shopper: a link never
undoes one. The user's export lists the ids merged into them, and deleting the user deletes whatever
is still stored under those ids, and the links (:mod:`~shopsense.store.users`). Ids here are stored
ids (pseudonyms when pseudonymisation is on).

The moved events keep their ``event_key`` (which names the anonymous id when the event had no
``event_id``): a replay of one of them, from a server's journal or a client retrying, is still
recognised as already stored.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, inspect, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from shopsense import columns as C
from shopsense.exceptions import LinkError, StoreError
from shopsense.store import tables as T
from shopsense.store.base import StoreBase
from shopsense.store.errors import guarded

_CHUNK = 500  # ids per IN (...) list


@dataclass(frozen=True)
class Link:
    """What one link did: rows moved from the anonymous id to the user by this call."""

    user_id: str
    anonymous_id: str
    events: int
    impressions: int
    new: bool  # False: the pair was linked before (this call moved only what came since)
    opted_out: bool  # the user's opt-out flag after the link


@guarded  # driver errors leave these methods as StoreError / StoreBusyError (store/errors.py)
class LinkRows(StoreBase):
    """Mixin of the knowledge store: anonymous ids linked to users (role
    :class:`~shopsense.store.roles.Shoppers`)."""

    def _migrate(self) -> None:
        """A store made before links gets the ``user_links`` table."""
        super()._migrate()
        try:
            if "user_links" not in inspect(self.engine).get_table_names():
                T.user_links.create(self.engine, checkfirst=True)
        except SQLAlchemyError as e:
            if "user_links" not in inspect(self.engine).get_table_names():  # not another process's doing
                raise StoreError(f"cannot upgrade the store's schema: {e}") from e

    def link_user(self, user_id: str, anonymous_id: str) -> Link:
        """Merge ``anonymous_id``'s events and impressions into ``user_id`` and record the link.

        Raises :class:`~shopsense.exceptions.LinkError` when both are one id, or when the user was
        merged into the anonymous id before (the merge would go round in a circle)."""
        if user_id == anonymous_id:
            raise LinkError("cannot link a shopper to itself: give the anonymous id the shopper used before logging in")
        e, i, u = T.events, T.impressions, T.users
        now = time.time()
        with self.engine.begin() as c:
            new = (
                c.execute(
                    text(
                        f"INSERT INTO user_links ({C.ANONYMOUS_ID}, {C.USER}, {C.LINKED_AT}) VALUES (:a, :u, :t) "
                        f"ON CONFLICT ({C.ANONYMOUS_ID}, {C.USER}) DO NOTHING"
                    ),
                    {"a": anonymous_id, "u": user_id, "t": now},
                ).rowcount
                > 0
            )
            # checked after the insert, which holds the write lock: no link made meanwhile escapes it
            if user_id in merged_ids(c, [anonymous_id]):
                raise LinkError(
                    "the user was merged into this anonymous id before; link them the other way round "
                    "(the anonymous id as the user)"
                )
            n_events = c.execute(update(e).where(e.c[C.USER] == anonymous_id).values({C.USER: user_id})).rowcount
            n_shown = c.execute(update(i).where(i.c[C.USER] == anonymous_id).values({C.USER: user_id})).rowcount
            anon_out = c.execute(select(u.c[C.OPTED_OUT]).where(u.c[C.USER] == anonymous_id)).scalar()
            c.execute(  # a user not seen before gets a row: the flag below needs one
                text(
                    f"INSERT INTO users ({C.USER}, {C.CREATED_AT}, {C.OPTED_OUT}) VALUES (:u, :t, 0) "
                    f"ON CONFLICT ({C.USER}) DO NOTHING"
                ),
                {"u": user_id, "t": now},
            )
            if anon_out:  # the anonymous shopper opted out: so is the merged one
                c.execute(update(u).where(u.c[C.USER] == user_id).values({C.OPTED_OUT: 1}))
            opted_out = bool(c.execute(select(u.c[C.OPTED_OUT]).where(u.c[C.USER] == user_id)).scalar())
        return Link(user_id, anonymous_id, max(n_events, 0), max(n_shown, 0), new, opted_out)

    def linked_ids(self, user_id: str) -> list[str]:
        """The anonymous ids merged into ``user_id`` (also through ids merged into those), sorted."""
        with self.engine.connect() as c:
            return sorted(merged_ids(c, [user_id]))


def merged_ids(c: Connection, ids: Sequence[str]) -> set[str]:
    """The anonymous ids merged into any of ``ids``, following links of links, without ``ids``
    themselves (deletion and export take these with the user)."""
    lk = T.user_links
    seen = set(ids)
    found: set[str] = set()
    frontier = list(seen)
    while frontier:
        nxt: list[str] = []
        for s in range(0, len(frontier), _CHUNK):
            q = select(lk.c[C.ANONYMOUS_ID]).where(lk.c[C.USER].in_(frontier[s : s + _CHUNK]))
            nxt.extend(a for (a,) in c.execute(q) if a not in seen)
        nxt = list(dict.fromkeys(nxt))
        seen.update(nxt)
        found.update(nxt)
        frontier = nxt
    return found
