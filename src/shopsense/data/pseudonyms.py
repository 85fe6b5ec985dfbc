"""Keyed hashes of private text: user ids stored as pseudonyms, and the query-vector cache's keys.

With ``privacy.pseudonym_secret`` set, the store never sees a shop's raw user ids: every entry (file
ingest, HTTP, the dataset loader, the CLI) maps the raw id to ``HMAC-SHA256(secret, id)`` through
:meth:`Pseudonymizer.user` before touching the store or the models, so the same raw id always lands on
the same stored id (recommendations, search personalisation, export and deletion all work) while the
store alone cannot be linked back to the shop's customers. Without a secret ids are stored as given
(after :func:`~shopsense.data.ids.normalize_id`).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from shopsense import columns as C
from shopsense.data.ids import normalize_id

if TYPE_CHECKING:
    from shopsense.config import Settings

PREFIX = "u_"


def keyed_hash(key: bytes, text: str, chars: int = 40) -> str:
    """Hex HMAC-SHA256 of ``text`` under ``key`` (first ``chars`` hex digits): without the key, a
    guess of ``text`` cannot be checked against the hash."""
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()[:chars]


class Pseudonymizer:
    """Maps raw user ids to stored ids (normalised only, when no secret is configured)."""

    def __init__(self, secret: str | None) -> None:
        self._key = secret.encode("utf-8") if secret else None

    @classmethod
    def from_settings(cls, settings: Settings) -> Pseudonymizer:
        return cls(settings.privacy.pseudonym_secret)

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def user(self, raw: str) -> str:
        """The id under which ``raw`` is stored (raises ``SchemaError`` for an id the rule refuses)."""
        uid = normalize_id(raw, "user id")
        if self._key is None:
            return uid
        return PREFIX + keyed_hash(self._key, uid)

    def users(self, raws: list[str]) -> list[str]:
        cache: dict[str, str] = {}
        out = []
        for r in raws:
            if r not in cache:
                cache[r] = self.user(r)
            out.append(cache[r])
        return out

    def table(self, table: pa.Table) -> pa.Table:
        """``table`` with its ``user_id`` column (if any) mapped; each distinct id is hashed once."""
        if self._key is None or C.USER not in table.column_names:
            return table
        i = table.column_names.index(C.USER)
        col = table.column(i).combine_chunks()
        if not len(col):
            return table
        dictionary = col.dictionary_encode()
        mapped = pa.array(self.users(dictionary.dictionary.to_pylist()), pa.string())
        return table.set_column(i, C.USER, pc.take(mapped, dictionary.indices))

    def frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` with its ``user_id`` column (if any) normalised and mapped (rows that did not come
        through validation: the ids get the one rule here)."""
        if C.USER not in df.columns or df.empty:
            return df
        codes, uniques = pd.factorize(df[C.USER])
        mapped = pd.Series(self.users([str(u) for u in uniques]), dtype=object)
        return df.assign(**{C.USER: mapped.to_numpy()[codes]})
