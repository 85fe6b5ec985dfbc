"""Streaming readers for CSV, TSV, Parquet and JSONL (optionally ``.gz``), in batches.

A file is never read whole: CSV/TSV go through ``pyarrow.csv.open_csv``, Parquet through
``ParquetFile.iter_batches`` and JSONL line by line. Every :class:`Batch` carries the source line of
each row (physical line for text formats, 1-based row for Parquet) so that errors name file, line
and column. Text columns are read as raw bytes; :mod:`shopsense.data.validation` decodes them and
reports non-UTF-8 values with their line.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from shopsense.data.inputfiles import input_errors
from shopsense.exceptions import InputFileError, RowError, SchemaError

FORMATS = ("csv", "tsv", "parquet", "jsonl")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet"}
_EXTENSIONS |= {".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass
class Batch:
    """Rows of one file, as read: ``table`` (columns already renamed by the mapping) and the
    source ``lines`` of its rows. ``errors`` are rows the reader could not parse at all (they are
    not in ``table``). ``consumed`` is progress in the reader's unit (bytes or rows). ``nested``
    marks, per column, the rows whose value was a JSON object or array (carried as JSON text), so
    that a field that wants an id or a number can refuse it."""

    table: pa.Table
    lines: np.ndarray
    errors: list[RowError] = field(default_factory=list)
    consumed: int = 0
    nested: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def num_rows(self) -> int:
        return self.table.num_rows


def detect_format(path: str | Path, fmt: str | None = None) -> str:
    """``fmt`` when given, else the format named by the extension (``.gz`` is looked through)."""
    if fmt:
        fmt = fmt.lower()
        if fmt == "ndjson":
            fmt = "jsonl"
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
        return fmt
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    if ext not in _EXTENSIONS:
        raise ValueError(
            f"{path}: cannot tell the format from extension {ext or '(none)'!r}; "
            f"use .csv, .tsv, .parquet, .jsonl or .ndjson (optionally .gz), or give --format"
        )
    return _EXTENSIONS[ext]


def parse_mapping(items: list[str] | tuple[str, ...] | None) -> dict[str, str]:
    """``["product_id=item_id", ...]`` -> ``{"product_id": "item_id"}`` (source column -> schema column)."""
    out: dict[str, str] = {}
    for item in items or ():
        src, sep, dst = item.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise ValueError(f"bad column mapping {item!r}: expected SOURCE=TARGET, e.g. product_id=item_id")
        out[src.strip()] = dst.strip()
    return out


def progress_total(path: str | Path, fmt: str | None = None) -> int | None:
    """Size of the work in the unit batches report in ``consumed``: rows for Parquet, bytes otherwise
    (None for a compressed file, whose decompressed size is unknown until it is read)."""
    fmt = detect_format(path, fmt)
    with input_errors(path):
        _check_file(Path(path))
        if fmt == "parquet":
            return int(pq.ParquetFile(path).metadata.num_rows)
        if Path(path).suffix.lower() == ".gz":
            return None
        return Path(path).stat().st_size


def read_batches(
    path: str | Path,
    *,
    fmt: str | None = None,
    mapping: Mapping[str, str] | None = None,
    batch_rows: int = 50_000,
    max_row_bytes: int = 1 << 20,
) -> tuple[list[str], Iterator[Batch]]:
    """Open ``path`` and return its column names (after ``mapping``) and an iterator of batches.

    The header (or, for JSONL, the keys of the first batch) is checked before any row is read. A file
    that cannot be read at all, here or later while batches are read, raises :class:`InputFileError`.
    """
    path = Path(path)
    fmt = detect_format(path, fmt)
    with input_errors(path):
        _check_file(path)
        if fmt == "parquet":
            names, batches = _parquet(path, dict(mapping or {}), batch_rows)
        elif fmt == "jsonl":
            names, batches = _jsonl(path, dict(mapping or {}), batch_rows)
        else:
            delimiter = "," if fmt == "csv" else "\t"
            names, batches = _delimited(path, delimiter, dict(mapping or {}), batch_rows, max_row_bytes)
    return names, _guarded(path, batches)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputFileError(f"{path}: no such file")
    if path.is_dir():
        raise InputFileError(f"{path}: is a folder, not a file")


def _guarded(path: Path, batches: Iterator[Batch]) -> Iterator[Batch]:
    with input_errors(path):
        yield from batches


def _rename(path: Path, names: list[str], mapping: dict[str, str]) -> list[str]:
    missing = [s for s in mapping if s not in names]
    if missing:
        raise SchemaError(
            f"{path}: --map names column(s) {', '.join(map(repr, missing))} not in the file; "
            f"its columns are: {', '.join(names)}"
        )
    out = [mapping.get(n, n) for n in names]
    dup = sorted({n for n in out if out.count(n) > 1})
    if dup:
        raise SchemaError(f"{path}: column(s) {', '.join(map(repr, dup))} appear more than once (after --map)")
    return out


def _slices(table: pa.Table, lines: np.ndarray, batch_rows: int) -> Iterator[tuple[pa.Table, np.ndarray]]:
    for start in range(0, max(table.num_rows, 1), batch_rows):
        yield table.slice(start, batch_rows), lines[start : start + batch_rows]


# ---------------------------------------------------------------------------- Parquet
def _parquet(path: Path, mapping: dict[str, str], batch_rows: int) -> tuple[list[str], Iterator[Batch]]:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise SchemaError(f"{path}: not a readable Parquet file: {e}") from e
    names = _rename(path, list(pf.schema_arrow.names), mapping)

    def gen() -> Iterator[Batch]:
        row = 1
        for rb in pf.iter_batches(batch_size=batch_rows):
            t = pa.Table.from_batches([rb]).rename_columns(names)
            lines = np.arange(row, row + t.num_rows, dtype=np.int64)
            row += t.num_rows
            yield Batch(t, lines, consumed=t.num_rows)

    return names, gen()


# ---------------------------------------------------------------------------- CSV / TSV
def _open_text(path: Path) -> IO[bytes]:
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")  # noqa: SIM115


def _read_header(path: Path, delimiter: str) -> tuple[list[str], int, float, bool]:
    """Column names, the number of physical lines the header takes, the mean line length in bytes,
    and whether the header is all the file holds."""
    with _open_text(path) as raw:
        sample = raw.read(1 << 16)
    whole = len(sample) < 1 << 16
    if sample.startswith(b"\xef\xbb\xbf"):
        sample = sample[3:]
    if not sample.strip():
        raise SchemaError(f"{path}: the file is empty (no header line)")
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as e:
        # a cut multi-byte character at the end of the sample is fine; a bad byte in the header is not
        whole = False
        text = sample[: e.start].decode("utf-8")
        if "\n" not in text and e.start < len(sample) - 4:
            raise SchemaError(f"{path}:1: the header line is not valid UTF-8 (byte {e.start})") from None
    buf = io.StringIO(text)
    reader = csv.reader(buf, delimiter=delimiter)
    try:
        names = next(reader)
    except (StopIteration, csv.Error) as e:
        raise SchemaError(f"{path}:1: cannot read the header line: {e or 'it is not valid UTF-8 text'}") from None
    header_lines = max(reader.line_num, 1)
    names = [n.strip() for n in names]
    if any(not n for n in names):
        raise SchemaError(f"{path}:1: the header has an empty column name: {names}")
    mean_line = len(sample) / max(sample.count(b"\n"), 1)
    # pyarrow cannot skip a header that has no line end after it; there is nothing to read anyway
    return names, header_lines, mean_line, whole and not buf.read().strip()


def _delimited(
    path: Path, delimiter: str, mapping: dict[str, str], batch_rows: int, max_row_bytes: int
) -> tuple[list[str], Iterator[Batch]]:
    src_names, header_lines, mean_line, header_only = _read_header(path, delimiter)
    dup = sorted({n for n in src_names if src_names.count(n) > 1})
    if dup:
        raise SchemaError(f"{path}:1: column(s) {', '.join(map(repr, dup))} appear more than once in the header")
    names = _rename(path, src_names, mapping)
    # a block must hold the longest row; aim at about batch_rows rows per block
    block = int(min(max(batch_rows * mean_line * 1.2, 4 * max_row_bytes, 1 << 20), 1 << 28))
    # Rows with the wrong number of fields are skipped by the parser and reported with their record
    # number (the header is record 1); the lines of everything after them are shifted accordingly.
    bad: list[tuple[int, str, str]] = []  # (record number, text, reason)

    def on_invalid(row: Any) -> str:
        why = f"malformed row: expected {row.expected_columns} fields, found {row.actual_columns}"
        bad.append((int(row.number) if row.number is not None else 0, str(row.text), why))
        return "skip"

    opts = dict(
        read_options=pacsv.ReadOptions(
            column_names=src_names, skip_rows=header_lines, use_threads=False, block_size=block, encoding="utf8"
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=delimiter, newlines_in_values=True, ignore_empty_lines=False, invalid_row_handler=on_invalid
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.binary() for n in src_names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )

    def parse_error(where: str, e: pa.ArrowInvalid, undecodable: list[BaseException]) -> SchemaError:
        also = "; that row is not valid UTF-8 either: save the file as UTF-8" if undecodable else ""
        return SchemaError(f"{path}: {where}: {' '.join(str(e).split())}{also}")

    def gen() -> Iterator[Batch]:
        if header_only:
            return
        stream = pa.input_stream(str(path), compression="detect")
        try:
            with _undecodable_rows(on_invalid) as undecodable:
                reader = pacsv.open_csv(stream, **opts)
        except pa.ArrowInvalid as e:
            raise parse_error(f"cannot parse as {'CSV' if delimiter == ',' else 'TSV'}", e, undecodable) from e
        first_line = header_lines + 1
        done_rows = 0  # good rows before this batch
        done_span = 0  # physical lines those rows take
        resolved = 0  # bad rows already reported
        last_tell = 0
        while True:
            try:
                with _undecodable_rows(on_invalid) as undecodable:
                    rb = reader.read_next_batch()
            except StopIteration:
                break
            except pa.ArrowInvalid as e:
                raise parse_error(f"cannot parse after line {first_line + done_span}", e, undecodable) from e
            t = pa.Table.from_batches([rb]).rename_columns(names)
            # a record spans 1 + the newlines quoted inside its fields
            spans = np.ones(t.num_rows, dtype=np.int64)
            for col in t.columns:
                spans += pc.fill_null(pc.count_substring(col, "\n"), 0).to_numpy(zero_copy_only=False)
            cum = np.concatenate([[0], np.cumsum(spans)])
            lines = first_line + done_span + cum[:-1]
            errors: list[RowError] = []
            if bad:
                # k-th bad row sits after (record - 2 - k) good rows; bad_cum: lines the earlier bad rows take
                compressed = np.array([r for r, _, _ in bad], dtype=np.int64) - 2 - np.arange(len(bad))
                bad_cum = np.concatenate([[0], np.cumsum([1 + txt.count("\n") for _, txt, _ in bad])])
                g = done_rows + np.arange(t.num_rows)
                lines = lines + bad_cum[np.searchsorted(compressed, g, side="right")]
                while resolved < len(bad) and compressed[resolved] <= done_rows + t.num_rows:
                    x = int(np.clip(compressed[resolved] - done_rows, 0, t.num_rows))
                    line = first_line + done_span + int(cum[x]) + int(bad_cum[resolved])
                    _, txt, why = bad[resolved]
                    errors.append(RowError(str(path), line, None, why, txt))
                    resolved += 1
            done_rows += t.num_rows
            done_span += int(cum[-1])
            try:
                tell = stream.tell()
            except (OSError, pa.ArrowException):
                tell = last_tell
            consumed, last_tell = max(tell - last_tell, 0), max(tell, last_tell)
            for i, (part, part_lines) in enumerate(_slices(t, lines, batch_rows)):
                yield Batch(part, part_lines, errors if i == 0 else [], consumed if i == 0 else 0)
        if resolved < len(bad):  # bad rows after the last good one
            bad_cum = np.concatenate([[0], np.cumsum([1 + txt.count("\n") for _, txt, _ in bad])])
            errors = [
                RowError(str(path), first_line + done_span + int(bad_cum[k]), None, bad[k][2], bad[k][1])
                for k in range(resolved, len(bad))
            ]
            yield Batch(pa.table({n: pa.array([], pa.binary()) for n in names}), np.zeros(0, np.int64), errors)
        stream.close()

    return names, gen()


@contextmanager
def _undecodable_rows(handler: Any) -> Iterator[list[BaseException]]:
    """pyarrow decodes a malformed row's text before it calls ``handler``; for a row that is not
    UTF-8 that fails inside pyarrow, which prints it as an ignored exception (a traceback on stderr)
    and then stops with a parse error. Collect those failures instead of printing them."""
    seen: list[BaseException] = []
    previous = sys.unraisablehook

    def hook(u: Any) -> None:
        if u.object is handler and isinstance(u.exc_value, UnicodeDecodeError):
            seen.append(u.exc_value)
        else:
            previous(u)

    sys.unraisablehook = hook
    try:
        yield seen
    finally:
        sys.unraisablehook = previous


# ---------------------------------------------------------------------------- JSONL
def _jsonl(path: Path, mapping: dict[str, str], batch_rows: int) -> tuple[list[str], Iterator[Batch]]:
    fh = _open_text(path)
    first = _jsonl_chunk(path, fh, 0, batch_rows)
    if first is None:
        fh.close()
        raise SchemaError(f"{path}: the file has no records")
    keys: dict[str, None] = {}
    for rec in first[0]:
        keys.update(dict.fromkeys(rec))
    names = _rename(path, list(keys), mapping)

    def gen() -> Iterator[Batch]:
        chunk: tuple[list[dict], list[int], list[RowError], int, int] | None = first
        try:
            while chunk is not None:
                records, lines, errors, lineno, nbytes = chunk
                if mapping:
                    records = [{mapping.get(k, k): v for k, v in r.items()} for r in records]
                table, nested = _records_to_table(records)
                yield Batch(table, np.asarray(lines, dtype=np.int64), errors, nbytes, nested)
                chunk = _jsonl_chunk(path, fh, lineno, batch_rows)
        finally:
            fh.close()

    return names, gen()


def _jsonl_chunk(
    path: Path, fh: IO[bytes], lineno: int, batch_rows: int
) -> tuple[list[dict], list[int], list[RowError], int, int] | None:
    records: list[dict] = []
    lines: list[int] = []
    errors: list[RowError] = []
    nbytes = 0
    for raw in fh:
        lineno += 1
        nbytes += len(raw)
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
        except UnicodeDecodeError as e:
            errors.append(
                RowError(str(path), lineno, None, f"not valid UTF-8 (byte {e.start + 1} of the line)", repr(raw[:200]))
            )
            continue
        try:
            rec = json.loads(text)
        except json.JSONDecodeError as e:
            errors.append(RowError(str(path), lineno, None, f"not valid JSON: {e.msg}", text[:200]))
            continue
        if not isinstance(rec, dict):
            errors.append(RowError(str(path), lineno, None, "a line must be a JSON object", text[:200]))
            continue
        records.append(rec)
        lines.append(lineno)
        if len(records) >= batch_rows:
            break
    if not records and not errors and nbytes == 0:
        return None
    return records, lines, errors, lineno, nbytes


def _records_to_table(records: list[dict]) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """Columns from JSON objects: one arrow type per column where the values agree, else text.

    Lists and objects become JSON text (tags and attributes accept it), so a column never becomes
    an arrow struct that would invent keys; the rows where that happened are returned per column."""
    keys: dict[str, None] = {}
    for r in records:
        keys.update(dict.fromkeys(r))
    cols = {}
    nested: dict[str, np.ndarray] = {}
    for k in keys:
        vals = [r.get(k) for r in records]
        is_nested = np.fromiter((isinstance(v, dict | list) for v in vals), dtype=bool, count=len(vals))
        if is_nested.any():
            nested[k] = is_nested
            vals = [_to_text(v) for v in vals]
        try:
            cols[k] = pa.array(vals)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            cols[k] = pa.array([_to_text(v) for v in vals], type=pa.string())
    return pa.table(cols), nested


def _to_text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, dict | list):
        return json.dumps(v, ensure_ascii=False, sort_keys=True)
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
