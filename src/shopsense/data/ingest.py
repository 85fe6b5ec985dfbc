"""Files into the knowledge store: read in batches, validate, write, report.

``on_error="fail"`` is all or nothing: the whole file goes through one store transaction that is
rolled back at the first bad batch, so the store ends exactly as it was. ``on_error="skip"`` keeps
the good rows and writes each bad one, with file, line, column and reason, to a rejects file.
Re-ingesting a file changes nothing: products upsert by id (unchanged rows are not rewritten) and
events are de-duplicated by their key (``event_id``, else user, item, type and timestamp).

Within one file a product or user id that comes again replaces the earlier row (the last one wins)
and is counted as ``repeated``, not inserted twice. Events whose ``item_id`` is not in the catalog
are kept (the catalog may arrive later) and counted as ``unknown_items``.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection

from shopsense import columns as C
from shopsense.config import IngestConfig
from shopsense.data.csvfile import SafeWriter
from shopsense.data.pseudonyms import Pseudonymizer
from shopsense.data.readers import detect_format, read_batches
from shopsense.data.schemas import schema_for
from shopsense.data.validation import check_columns, validate_batch
from shopsense.exceptions import RowError, SchemaError
from shopsense.store import KnowledgeStore

POLICIES = ("fail", "skip")
#: row errors kept on the report (all of them go to the rejects file)
MAX_REPORTED_ERRORS = 1000

Progress = Callable[[int], None]


@dataclass
class IngestReport:
    """What one ingest did. ``inserted``: rows new or changed in the store; ``duplicates``: valid
    rows that changed nothing (already stored, or an event repeated in the file); ``repeated``:
    product or user rows replaced by a later row of the same id in the file (the last one is kept);
    ``unknown_items``: events (kept) whose item_id is not in the catalog."""

    kind: str
    path: str
    format: str
    read: int = 0
    inserted: int = 0
    duplicates: int = 0
    repeated: int = 0
    unknown_items: int = 0
    rejected: int = 0
    blank: int = 0
    seconds: float = 0.0
    ignored_columns: list[str] = field(default_factory=list)
    rejects_path: str | None = None
    errors: list[RowError] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["errors"] = [str(e) for e in self.errors]
        d["rows_per_second"] = round(self.rows_per_second, 1)
        return d

    def summary(self) -> str:
        s = (
            f"{self.kind} from {self.path}: read {self.read:,}, inserted {self.inserted:,}, "
            f"duplicates {self.duplicates:,}, rejected {self.rejected:,} in {self.seconds:.2f}s "
            f"({self.rows_per_second:,.0f} rows/s)"
        )
        if self.repeated:
            key = C.ITEM if self.kind == "products" else C.USER
            s += f"; {self.repeated:,} row(s) repeated an earlier {key} in the file: the last one was kept"
        if self.unknown_items:
            s += f"; {self.unknown_items:,} event(s) name an item_id not in the catalog (kept)"
        if self.rejects_path:
            s += f"; rejects written to {self.rejects_path}"
        if self.ignored_columns:
            s += f"; ignored columns: {', '.join(self.ignored_columns)}"
        return s


def ingest_products(
    store: KnowledgeStore,
    path: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    on_error: str = "fail",
    rejects_path: str | Path | None = None,
    progress: Progress | None = None,
    fmt: str | None = None,
    config: IngestConfig | None = None,
) -> IngestReport:
    """Upsert products from a file (see :func:`ingest` for the options)."""
    return ingest(
        store, "products", path, mapping=mapping, on_error=on_error, rejects_path=rejects_path,
        progress=progress, fmt=fmt, config=config,
    )  # fmt: skip


def ingest_events(
    store: KnowledgeStore,
    path: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    on_error: str = "fail",
    rejects_path: str | Path | None = None,
    progress: Progress | None = None,
    fmt: str | None = None,
    config: IngestConfig | None = None,
    pseudonyms: Pseudonymizer | None = None,
) -> IngestReport:
    """Append events from a file, skipping ones already stored (see :func:`ingest`)."""
    return ingest(
        store, "events", path, mapping=mapping, on_error=on_error, rejects_path=rejects_path,
        progress=progress, fmt=fmt, config=config, pseudonyms=pseudonyms,
    )  # fmt: skip


def ingest_users(
    store: KnowledgeStore,
    path: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    on_error: str = "fail",
    rejects_path: str | Path | None = None,
    progress: Progress | None = None,
    fmt: str | None = None,
    config: IngestConfig | None = None,
    pseudonyms: Pseudonymizer | None = None,
) -> IngestReport:
    """Upsert users and their attributes from a file (see :func:`ingest`)."""
    return ingest(
        store, "users", path, mapping=mapping, on_error=on_error, rejects_path=rejects_path,
        progress=progress, fmt=fmt, config=config, pseudonyms=pseudonyms,
    )  # fmt: skip


def ingest(
    store: KnowledgeStore,
    kind: str,
    path: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    on_error: str = "fail",
    rejects_path: str | Path | None = None,
    progress: Progress | None = None,
    fmt: str | None = None,
    config: IngestConfig | None = None,
    pseudonyms: Pseudonymizer | None = None,
) -> IngestReport:
    """Read ``path`` (CSV, TSV, Parquet, JSONL) as ``kind`` records into ``store``.

    ``mapping`` renames source columns (``{"product_id": "item_id"}``). ``on_error`` is ``"fail"``
    (raise :class:`SchemaError`, store unchanged) or ``"skip"`` (bad rows go to ``rejects_path``,
    default ``<file>.rejects.jsonl`` next to the input; a ``.csv`` path writes CSV). ``pseudonyms``
    maps user ids as every other entry does (``Pseudonymizer.from_settings``; the raw ids otherwise).
    """
    if on_error not in POLICIES:
        raise ValueError(f"unknown error policy {on_error!r}; valid: {', '.join(POLICIES)}")
    schema = schema_for(kind)
    config = config or IngestConfig()
    path = Path(path)
    fmt = detect_format(path, fmt)
    started = time.perf_counter()
    names, batches = read_batches(
        path, fmt=fmt, mapping=mapping, batch_rows=config.batch_rows, max_row_bytes=4 * config.max_field_chars + 4096
    )
    report = IngestReport(kind, str(path), fmt, ignored_columns=check_columns(schema, names, str(path)))
    rejects = _Rejects(Path(rejects_path) if rejects_path else _default_rejects(path))
    write = {"products": store.upsert_products, "events": store.add_events, "users": store.upsert_users}[kind]
    repeats = _Repeats({"products": C.ITEM, "users": C.USER}.get(kind))
    catalog = _Catalog(store) if kind == "events" else None
    try:
        with _gc_paused(), store.transaction() as conn, _bulk(store, kind, conn):
            for batch in batches:
                v = validate_batch(schema, batch, str(path), config)
                n_bad_rows = len({(e.line) for e in v.errors})
                report.read += batch.num_rows - v.blank + len(batch.errors)
                report.blank += v.blank
                if v.errors:
                    if on_error == "fail":
                        raise SchemaError(
                            f"{path}: {n_bad_rows:,} bad row(s); nothing was written "
                            f"(use --on-error skip to keep the good rows)",
                            v.errors,
                        )
                    report.rejected += n_bad_rows
                    rejects.write(v.errors)
                    room = MAX_REPORTED_ERRORS - len(report.errors)
                    report.errors.extend(v.errors[: max(room, 0)])
                if v.table.num_rows:
                    table = pseudonyms.table(v.table) if pseudonyms is not None else v.table
                    if catalog is not None:
                        report.unknown_items += catalog.unknown(table[C.ITEM], conn)
                    df = _write_order(kind, table).to_pandas()
                    fresh, again = repeats.split(df)
                    report.inserted += write(fresh, conn)
                    if len(again):
                        write(again, conn)  # replaces rows written earlier in this file: not new
                report.repeated = repeats.count
                report.duplicates = report.read - report.rejected - report.inserted - report.repeated
                if progress is not None:
                    progress(batch.consumed)
    finally:
        rejects.close()
    report.rejects_path = str(rejects.path) if rejects.count else None
    report.seconds = time.perf_counter() - started
    return report


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Millions of short-lived row tuples set off the cyclic garbage collector again and again
    (about a quarter of the row-conversion time); they hold no cycles, so pause it meanwhile."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _bulk(store: KnowledgeStore, kind: str, conn: Connection) -> AbstractContextManager[None]:
    return store.bulk_events(conn) if kind == "events" else nullcontext()


def _write_order(kind: str, table: pa.Table) -> pa.Table:
    """Events grouped by user, in time order: the store's indexes are then written page by page
    instead of at random (about 1.5x faster bulk ingest). Arrow's sort is stable, so a user's events
    with equal timestamps keep their order in the file (the store breaks timestamp ties by arrival)."""
    if kind != "events" or table.num_rows < 2:
        return table
    return table.take(pc.sort_indices(table, sort_keys=[(C.USER, "ascending"), (C.TIMESTAMP, "ascending")]))


class _Repeats:
    """Rows of one file that repeat an id (products, users): the last row of each id wins.

    Within a batch only the last row of an id is written; a row whose id was written by an earlier
    batch is written apart, so it replaces that row without counting as a new insert. Ids seen are
    kept as sorted 64-bit hashes (8 bytes an id).

    Streaming has no look-ahead, so across batches ``inserted`` counts what each id's first row did:
    re-ingesting a file whose id repeats beyond a batch (50,000 rows) counts that id as changed
    (its first row did overwrite the stored last one, briefly, inside the transaction)."""

    def __init__(self, key: str | None) -> None:
        self.key = key
        self.count = 0
        self._seen = np.zeros(0, dtype=np.uint64)

    def split(self, df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(rows whose id is new to this file, rows whose id an earlier batch already wrote)."""
        if self.key is None:
            return df, df.iloc[:0]
        last = ~df[self.key].duplicated(keep="last").to_numpy()
        self.count += int((~last).sum())
        df = df[last]
        hashes = pd.util.hash_array(df[self.key].to_numpy(dtype=object))
        earlier = np.isin(hashes, self._seen)
        self.count += int(earlier.sum())
        self._seen = np.union1d(self._seen, hashes)
        return df[~earlier], df[earlier]


class _Catalog:
    """Whether events name products the catalog has (each id is looked up once per file)."""

    def __init__(self, store: KnowledgeStore) -> None:
        self.store = store
        self._looked_up = pa.array([], pa.string())
        self._present = pa.array([], pa.string())

    def unknown(self, items: pa.ChunkedArray, conn: Connection) -> int:
        """How many of ``items`` (one per event; null for a search) are not in the catalog."""
        ids = pc.unique(items).drop_null()
        new = ids.filter(pc.invert(pc.is_in(ids, value_set=self._looked_up)))
        if len(new):
            found = self.store.known_items(new.to_pylist(), conn)
            self._looked_up = pa.concat_arrays([self._looked_up, new.cast(pa.string())])
            self._present = pa.concat_arrays([self._present, pa.array(sorted(found), pa.string())])
        named = pc.sum(pc.is_valid(items)).as_py() or 0
        return named - (pc.sum(pc.is_in(items, value_set=self._present)).as_py() or 0)


def _default_rejects(path: Path) -> Path:
    name = path.name
    for suffix in reversed(path.suffixes):
        name = name[: -len(suffix)] if name.endswith(suffix) else name
    return path.with_name(f"{name or path.name}.rejects.jsonl")


class _Rejects:
    """Bad rows with file, line, column and reason; the file is only created when there is one."""

    FIELDS = ("file", "line", "column", "reason", "raw")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._fh: IO[str] | None = None
        self._csv: Any = None

    def write(self, errors: list[RowError]) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115
            if self.path.suffix.lower() in (".csv", ".tsv"):
                delim = "," if self.path.suffix.lower() == ".csv" else "\t"
                self._csv = SafeWriter(self._fh, delimiter=delim)
                self._csv.writerow(self.FIELDS)
        for e in errors:
            rec = (e.file, e.line, e.column or "", e.reason, e.raw)
            if self._csv is not None:
                self._csv.writerow(rec)
            else:
                self._fh.write(json.dumps(dict(zip(self.FIELDS, rec, strict=True)), ensure_ascii=False) + "\n")
        self.count += len(errors)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
