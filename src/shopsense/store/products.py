"""The catalog: products by ``item_id``, written as upserts that skip unchanged rows. A mixin of the
knowledge store (role :class:`~shopsense.store.roles.Catalog`)."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Connection, bindparam, select
from sqlalchemy.sql.elements import ClauseElement

from shopsense import columns as C
from shopsense.data.products import normalize_products
from shopsense.store import tables as T
from shopsense.store.base import StoreBase
from shopsense.store.errors import guarded
from shopsense.store.rows import json_or_none, to_db_rows

_CONTENT_COLS = tuple(c for c in C.PRODUCT_COLUMNS if c not in (C.CREATED_AT, C.UPDATED_AT))
#: what an upsert writes, in this order: the content, its hash, then the times
_UPSERT_COLS = (*_CONTENT_COLS, "row_hash", C.CREATED_AT, C.UPDATED_AT)
_CHUNK = 512  # ids per IN (...) list


@guarded  # driver errors leave these methods as StoreError / StoreBusyError (store/errors.py)
class ProductRows(StoreBase):
    """Mixin of the knowledge store: the catalog."""

    def upsert_products(self, df: pd.DataFrame, conn: Connection | None = None) -> int:
        """Insert or update products by ``item_id``. Rows whose content did not change are left alone.

        ``df`` must be validated already (see :mod:`shopsense.data.validation`). Returns rows written.
        """
        if df.empty:
            return 0
        now = time.time()
        out = pd.DataFrame({c: df[c] if c in df.columns else None for c in _CONTENT_COLS})
        for col in (C.TAGS, C.ATTRIBUTES):
            out[col] = [json_or_none(v) for v in out[col]]
        out[C.AVAILABLE] = out[C.AVAILABLE].fillna(True).astype(bool).astype(int)
        out["row_hash"] = pd.util.hash_pandas_object(
            out.astype(object).where(out.notna(), None).astype(str), index=False
        ).astype(str)
        out[C.CREATED_AT] = df[C.CREATED_AT] if C.CREATED_AT in df.columns else now
        out[C.UPDATED_AT] = df[C.UPDATED_AT] if C.UPDATED_AT in df.columns else now
        out[C.CREATED_AT] = out[C.CREATED_AT].fillna(now)
        out[C.UPDATED_AT] = out[C.UPDATED_AT].fillna(now)
        with self._conn(conn) as c:
            return self.statements.insert_many(
                c, "upsert_products", self._upsert_products, _UPSERT_COLS, to_db_rows(out)
            )

    def _upsert_products(self) -> ClauseElement:
        ins = self.statements.insert("products", _UPSERT_COLS)
        return ins.on_conflict_do_update(
            index_elements=[C.ITEM],
            set_={c: ins.excluded[c] for c in _UPSERT_COLS if c not in (C.ITEM, C.CREATED_AT)},
            where=ins.table.c.row_hash != ins.excluded.row_hash,
        )

    def delete_products(self, item_ids: Sequence[str], conn: Connection | None = None) -> int:
        """Remove products (their events stay: they are history)."""
        with self._conn(conn) as c:
            return c.execute(T.products.delete().where(T.products.c[C.ITEM].in_(list(item_ids)))).rowcount

    def products(self, item_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """The catalog as a DataFrame (tags and attributes decoded, missing values in one shape: see
        :func:`~shopsense.data.products.normalize_products`), ordered by ``item_id``."""
        q = select(*[T.products.c[c] for c in C.PRODUCT_COLUMNS]).order_by(T.products.c[C.ITEM])
        if item_ids is not None:
            q = q.where(T.products.c[C.ITEM].in_(list(item_ids)))
        with self.engine.connect() as conn:
            df = pd.DataFrame(conn.execute(q).fetchall(), columns=list(C.PRODUCT_COLUMNS))
        df[C.TAGS] = [json.loads(v) if isinstance(v, str) and v else [] for v in df[C.TAGS]]
        df[C.ATTRIBUTES] = [json.loads(v) if isinstance(v, str) and v else {} for v in df[C.ATTRIBUTES]]
        return normalize_products(df)

    def get_product(self, item_id: str) -> dict[str, Any] | None:
        """One product as a dict, or None when the catalog has no such ``item_id``."""
        df = self.products([item_id])
        return None if df.empty else df.iloc[0].to_dict()

    def known_items(self, item_ids: Sequence[str], conn: Connection | None = None) -> set[str]:
        """The ones of ``item_ids`` that are in the catalog."""
        ids = list(dict.fromkeys(item_ids))
        found: set[str] = set()
        with self._conn(conn) as c:
            # compiled once per list length and run on the driver: SQLAlchemy's IN expansion per
            # call cost more than the lookups themselves. Lists are padded (with their last id) to a
            # power of two, so a store compiles at most ten of these statements.
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i : i + _CHUNK]
                n = 1 << (len(chunk) - 1).bit_length()
                params = {f"i{k}": chunk[min(k, len(chunk) - 1)] for k in range(n)}
                rows = self.statements.fetch(c, ("known_items", n), functools.partial(_known, n), params)
                found.update(r[0] for r in rows)
        return found


def _known(n: int) -> ClauseElement:
    """``SELECT item_id FROM products WHERE item_id IN (:i0, ..., :i{n-1})``."""
    item = T.products.c[C.ITEM]
    return select(item).where(item.in_([bindparam(f"i{k}") for k in range(n)]))
