"""A Parquet snapshot of the knowledge store: the catalog and every event, for batch engines (Spark).

``export_parquet(store, folder)`` writes::

    folder/products.parquet   the catalog (tags as a list of strings, attributes as JSON text)
    folder/events.parquet     every event that may shape lists (opted-out shoppers' left out), in the
                              store's order (timestamp, then arrival), with the arrival number ``seq``
                              that breaks timestamp ties, one row group per batch read from the store
    folder/snapshot.json      format version and row counts, written last: a folder without it is
                              an unfinished export

Events stream from the store in batches (a server-side cursor on PostgreSQL) into one Parquet
writer, so the whole event table is never in memory at once; the catalog is read whole (what a
trainer holds anyway). The files are written under temporary names and renamed when complete.
:func:`read_products` gives back the frame ``store.products()`` gives.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shopsense import columns as C
from shopsense.artifacts import read_params
from shopsense.data.products import normalize_products
from shopsense.store import KnowledgeStore

#: layout of a snapshot folder; raise it when the files or their columns change
SNAPSHOT_FORMAT = 1
PRODUCTS_FILE = "products.parquet"
EVENTS_FILE = "events.parquet"
MANIFEST_FILE = "snapshot.json"
#: the arrival number of an event in the store: breaks timestamp ties the way the store's reader does
SEQ = "seq"
BATCH = 100_000

_TEXT = pa.string()
EVENT_SCHEMA = pa.schema(
    [
        (C.EVENT_ID, _TEXT),
        (C.USER, _TEXT),
        (C.ITEM, _TEXT),
        (C.EVENT_TYPE, _TEXT),
        (C.VALUE, pa.float64()),
        (C.TIMESTAMP, pa.float64()),
        (C.SESSION, _TEXT),
        (C.QUERY, _TEXT),
        (C.REQUEST_ID, _TEXT),
        (C.ORDER_ID, _TEXT),
        (SEQ, pa.int64()),
    ]
)
PRODUCT_SCHEMA = pa.schema(
    [
        (C.ITEM, _TEXT),
        (C.TITLE, _TEXT),
        (C.DESCRIPTION, _TEXT),
        (C.CATEGORY, _TEXT),
        (C.BRAND, _TEXT),
        (C.PRICE, pa.float64()),
        (C.IMAGE_URL, _TEXT),
        (C.TAGS, pa.list_(_TEXT)),
        (C.ATTRIBUTES, _TEXT),  # JSON text: attribute values mix types, which Parquet columns do not
        (C.AVAILABLE, pa.bool_()),
        (C.CREATED_AT, pa.float64()),
        (C.UPDATED_AT, pa.float64()),
    ]
)


@dataclass
class ExportReport:
    folder: Path
    products: int
    events: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "products": self.products, "events": self.events, "seconds": self.seconds}


def export_parquet(
    store: KnowledgeStore,
    folder: str | Path,
    *,
    batch_size: int = BATCH,
    progress: Callable[[int], None] | None = None,
) -> ExportReport:
    """Write the store's catalog and events to ``folder`` (see the module docstring); ``progress(n)``
    is called with the number of events written after each batch."""
    t0 = time.perf_counter()
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST_FILE).unlink(missing_ok=True)  # unfinished until the manifest is written again
    products = store.products()
    _write_atomic(out / PRODUCTS_FILE, lambda tmp: pq.write_table(_product_table(products), tmp))

    n_events = 0

    def write_events(tmp: Path) -> None:
        nonlocal n_events
        with pq.ParquetWriter(tmp, EVENT_SCHEMA) as writer:
            for batch in store.event_batches(batch_size, include_opted_out=False):
                writer.write_table(_event_table(batch), row_group_size=batch_size)
                n_events += len(batch)
                if progress is not None:
                    progress(len(batch))
            if not n_events:  # a Parquet file with its schema and no rows
                writer.write_table(EVENT_SCHEMA.empty_table())

    _write_atomic(out / EVENTS_FILE, write_events)
    manifest = {"format_version": SNAPSHOT_FORMAT, "products": len(products), "events": n_events}
    _write_atomic(out / MANIFEST_FILE, lambda tmp: tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8"))
    return ExportReport(out, len(products), n_events, time.perf_counter() - t0)


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The snapshot's manifest; an error that says to export again for a missing or other-format one."""
    f = Path(folder)
    return read_params(
        f / MANIFEST_FILE,
        what=f"Parquet snapshot at {f}",
        format_version=SNAPSHOT_FORMAT,
        missing=f"no complete Parquet snapshot at {f}: run `shopsense export --format parquet {f}`",
        remedy="export it again with `shopsense export --format parquet`",
    )


def read_products(folder: str | Path) -> pd.DataFrame:
    """The snapshot's catalog as ``store.products()`` gives it (tags lists, attributes dicts)."""
    df = pq.read_table(Path(folder) / PRODUCTS_FILE).to_pandas()
    df[C.TAGS] = [list(v) if v is not None else [] for v in df[C.TAGS]]
    df[C.ATTRIBUTES] = [json.loads(v) if isinstance(v, str) and v else {} for v in df[C.ATTRIBUTES]]
    return normalize_products(df)


def _event_table(batch: pd.DataFrame) -> pa.Table:
    cols = []
    for f in EVENT_SCHEMA:
        values = batch[f.name].tolist()
        if pa.types.is_floating(f.type):  # NaN and None are both "no value"
            values = [None if v is None or v != v else float(v) for v in values]
        cols.append(pa.array(values, type=f.type))
    return pa.Table.from_arrays(cols, schema=EVENT_SCHEMA)


def _product_table(products: pd.DataFrame) -> pa.Table:
    df = normalize_products(products)
    data: dict[str, list[Any]] = {
        C.TAGS: [[str(t) for t in v] for v in df[C.TAGS]],
        C.ATTRIBUTES: [json.dumps(v, ensure_ascii=False, sort_keys=True) if v else None for v in df[C.ATTRIBUTES]],
    }
    cols = []
    for f in PRODUCT_SCHEMA:
        values = data.get(f.name, df[f.name].tolist())
        if pa.types.is_floating(f.type):
            values = [None if v is None or v != v else float(v) for v in values]
        cols.append(pa.array(values, type=f.type))
    return pa.Table.from_arrays(cols, schema=PRODUCT_SCHEMA)


def _write_atomic(final: Path, write: Callable[[Path], Any]) -> None:
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
