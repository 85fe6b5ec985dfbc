"""Vectorised validation: a raw batch in, the schema's columns and types out, bad rows reported.

Every check runs on whole arrow columns (pyarrow compute, numpy, pandas); Python only loops over
rows that are already known to be bad, to write their messages. Each bad row becomes a
:class:`~shopsense.exceptions.RowError` naming file, line, column and reason.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from shopsense import columns as C
from shopsense.config import IngestConfig
from shopsense.data.ids import has_control, normalize_id_array
from shopsense.data.readers import Batch
from shopsense.data.schemas import FALSE_WORDS, MAX_TIMESTAMP, TRUE_WORDS, Field, Schema
from shopsense.exceptions import RowError, SchemaError

_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


@dataclass
class Validated:
    """The good rows of a batch (schema columns, converted), their lines, and the bad rows."""

    table: pa.Table
    lines: np.ndarray
    errors: list[RowError] = field(default_factory=list)
    blank: int = 0  # rows with every field empty (blank lines): skipped silently

    @property
    def frame(self) -> pd.DataFrame:
        """The good rows as a DataFrame (what the store's write methods take)."""
        return self.table.to_pandas()


def check_columns(schema: Schema, names: Sequence[str], path: str) -> list[str]:
    """Refuse a file that lacks a required column; return the columns the schema does not know (ignored)."""
    missing = [c for c in schema.required_columns if c not in names]
    if missing:
        raise SchemaError(
            f"{path}: missing required {schema.name} column(s) {', '.join(map(repr, missing))}; "
            f"the file has: {', '.join(names) or '(none)'}. Rename with --map SOURCE={missing[0]}"
        )
    return [n for n in names if n not in schema.names]


class _Checks:
    """Bad-row masks with their reasons, collected column by column."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.found: list[tuple[np.ndarray, str | None, str, pa.Array | None]] = []

    def add(self, mask: Any, column: str | None, reason: str, raw: pa.Array | None = None) -> None:
        """``reason`` may hold ``{value}``, filled from ``raw`` for each bad row."""
        m = _mask(mask, self.n)
        if m.any():
            self.found.append((m, column, reason, raw))

    def bad_in(self, column: str) -> np.ndarray:
        """Rows already refused for ``column`` (later rules skip them: one reason per cause)."""
        out = np.zeros(self.n, dtype=bool)
        for m, col, *_ in self.found:
            if col == column:
                out |= m
        return out

    def any_bad(self) -> np.ndarray:
        out = np.zeros(self.n, dtype=bool)
        for m, *_ in self.found:
            out |= m
        return out


def _mask(mask: Any, n: int) -> np.ndarray:
    if isinstance(mask, np.ndarray):
        return mask.astype(bool, copy=False)
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks()
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False).astype(bool, copy=False)


def validate_batch(schema: Schema, batch: Batch, path: str, config: IngestConfig | None = None) -> Validated:
    """Check and convert one batch. Missing optional columns are left out of the frame."""
    config = config or IngestConfig()
    table, n = batch.table, batch.num_rows
    checks = _Checks(n)
    out: dict[str, pa.Array] = {}
    blank = np.ones(n, dtype=bool)
    for name in table.column_names:
        blank &= _mask(_is_empty(_array(table[name])), n)
    for f in schema.fields:
        if f.name not in table.column_names:
            if f.required:  # JSONL: no record of this batch has the key
                checks.add(np.ones(n, dtype=bool), f.name, "required value is missing")
            continue
        arr = _array(table[f.name])
        if f.name in batch.nested and f.kind not in ("tags", "json"):
            arr = _refuse_nested(f, arr, batch.nested[f.name], checks)
        out[f.name] = _convert(f, arr, checks, config)
    if schema.name == "event":
        _event_rules(out, checks, n)
    bad = checks.any_bad() & ~blank
    keep = ~bad & ~blank
    errors = _row_errors(checks, bad, table, batch.lines, path)
    good = pa.table(out).filter(pa.array(keep)) if out else pa.table({})
    return Validated(good, batch.lines[keep], list(batch.errors) + errors, int(blank.sum()))


def _array(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def _is_empty(arr: pa.Array) -> pa.Array:
    if pa.types.is_string(arr.type) or pa.types.is_binary(arr.type) or pa.types.is_large_string(arr.type):
        return pc.or_kleene(pc.is_null(arr), pc.equal(pc.binary_length(arr), 0))
    return pc.is_null(arr)


# ---------------------------------------------------------------------------- conversions
def _convert(f: Field, arr: pa.Array, checks: _Checks, config: IngestConfig) -> pa.Array:
    kind = f.kind
    if kind in ("float", "timestamp") and _is_numeric(arr.type):
        vals = _numeric(f, arr, checks)
    elif kind == "timestamp" and (pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type)):
        vals = _temporal_seconds(arr)
    elif kind == "bool" and pa.types.is_boolean(arr.type):
        vals = arr
    elif kind in ("tags", "json") and not _is_textual(arr.type):
        vals = _container(f, _displayable(arr), checks)
    elif kind == "category" and (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
        vals = pc.binary_join(pc.cast(arr, pa.list_(pa.string())), " > ")
    else:
        text = _text(f, arr, checks)
        if text is None:  # a type that cannot be text: its non-null rows are refused already
            vals = pa.nulls(len(arr), _target_type(f))
        else:
            vals = _from_text(f, _refuse_nul(f, text, checks), checks)
    if f.required:
        empty = _mask(_is_empty(vals), len(vals)) & ~checks.bad_in(f.name)
        checks.add(empty, f.name, f"empty {f.name}" if f.kind == "id" else "required value is missing")
    if vals.type == pa.string():
        limit = config.max_id_chars if kind in ("id", "event_type") else config.max_field_chars
        if kind not in ("tags", "json"):
            lengths = pc.utf8_length(vals)
            checks.add(pc.greater(lengths, limit), f.name, f"field too long: more than {limit:,} characters")
        else:
            checks.add(pc.greater(pc.binary_length(vals), limit), f.name, f"field too long: more than {limit:,} bytes")
    if kind == "float" and f.min_value is not None:
        checks.add(pc.less(vals, f.min_value), f.name, f"must be >= {f.min_value:g}, got {{value}}", arr)
    if kind == "timestamp":
        checks.add(
            pc.greater(vals, MAX_TIMESTAMP), f.name, "timestamp {value} is after 2200: milliseconds? give seconds", arr
        )
        checks.add(pc.less(vals, 0), f.name, "timestamp {value} is before 1970", arr)
    return vals


_EXPECTED = {
    "id": "an id",
    "text": "text",
    "float": "a number",
    "timestamp": "a timestamp",
    "bool": "true or false",
    "event_type": "an event type",
    "category": "a category path or a list of its levels",
}


def _refuse_nested(f: Field, arr: pa.Array, nested: np.ndarray, checks: _Checks) -> pa.Array:
    """A JSON object or array where a single value belongs (JSONL ``{"item_id": {"a": 1}}``) is
    refused, not stored as its JSON text; a category given as a list of levels is joined."""
    if f.kind == "category":
        return _category_lists(f, arr, nested, checks)
    objects = nested & _mask(pc.starts_with(arr.cast(pa.string()), "{"), len(arr))
    checks.add(objects, f.name, f"expected {_EXPECTED[f.kind]}, found a JSON object")
    checks.add(nested & ~objects, f.name, f"expected {_EXPECTED[f.kind]}, found a JSON array")
    return pc.if_else(pa.array(nested), pa.scalar(None, arr.type), arr)


def _category_lists(f: Field, arr: pa.Array, nested: np.ndarray, checks: _Checks) -> pa.Array:
    values = arr.cast(pa.string()).to_pylist()
    bad = np.zeros(len(values), dtype=bool)
    for i in np.flatnonzero(nested):
        levels = json.loads(values[i])
        if isinstance(levels, list) and all(isinstance(x, str | int | float) for x in levels):
            values[i] = " > ".join(str(x).strip() for x in levels if str(x).strip()) or None
        else:
            values[i], bad[i] = None, True
    checks.add(bad, f.name, f"expected {_EXPECTED['category']}, found a JSON object or nested list")
    return pa.array(values, pa.string())


def _refuse_nul(f: Field, text: pa.Array, checks: _Checks) -> pa.Array:
    """Text with a NUL byte is refused, not stripped: it nearly always means a UTF-16 or binary file
    read as UTF-8, and PostgreSQL cannot store it."""
    nul = _mask(pc.match_substring(text, "\x00"), len(text))
    if not nul.any():
        return text
    checks.add(nul, f.name, "contains a NUL byte (\\x00): is the file UTF-16 or binary? Save it as UTF-8 text")
    return pc.if_else(pa.array(nul), pa.scalar(None, pa.string()), text)


def _target_type(f: Field) -> pa.DataType:
    return {"float": pa.float64(), "timestamp": pa.float64(), "bool": pa.bool_()}.get(f.kind, pa.string())


def _is_numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _is_textual(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t)


def _temporal_seconds(arr: pa.Array) -> pa.Array:
    """Unix seconds of a timestamp or date column, from its raw counts (converting units first would
    overflow for dates far out; those are refused by the range checks instead)."""
    t = arr.type
    if pa.types.is_date32(t):
        return pc.multiply(arr.cast(pa.int32()).cast(pa.float64()), 86400.0)
    raw = pc.cast(arr.cast(pa.int64()), pa.float64(), safe=False)  # beyond 2**53 a float rounds
    if pa.types.is_date64(t):
        return pc.divide(raw, 1e3)
    return pc.divide(raw, {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[t.unit])


def _numeric(f: Field, arr: pa.Array, checks: _Checks) -> pa.Array:
    vals = pc.cast(arr, pa.float64(), safe=False)  # an int64 beyond 2**53 rounds, as a float must
    nan = pc.is_nan(vals)
    checks.add(pc.is_inf(vals), f.name, "not a finite number: {value}", arr)
    return pc.if_else(pc.or_(nan, pc.is_inf(vals)), pa.scalar(None, pa.float64()), vals)


def _text(f: Field, arr: pa.Array, checks: _Checks) -> pa.Array | None:
    """Any column as UTF-8 text (numbers and booleans formatted); None if the type cannot be text."""
    t = arr.type
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        try:
            return pc.cast(arr, pa.string())
        except pa.ArrowInvalid:
            return _decode_slow(f, arr, checks)
    if pa.types.is_string(t):
        return arr
    if pa.types.is_large_string(t):
        return pc.cast(arr, pa.string())
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        return pc.cast(arr, pa.string())
    if pa.types.is_floating(t):
        if f.kind in ("id", "text", "event_type"):
            # a whole number an int64 holds (1e20 and inf are not ids a float column kept exactly)
            whole = pc.and_(pc.equal(pc.floor(arr), arr), pc.less(pc.abs(arr), 2.0**63))
            whole = pc.fill_null(whole, True)
            checks.add(pc.invert(whole), f.name, "expected an id or text, found the number {value}", arr)
            return pc.cast(pc.cast(pc.if_else(whole, arr, None), pa.int64()), pa.string())
        return pc.cast(arr, pa.string())
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.string())
    checks.add(pc.invert(pc.is_null(arr)), f.name, f"wrong type: expected {f.kind}, found {t}")
    return None


def _decode_slow(f: Field, arr: pa.Array, checks: _Checks) -> pa.Array:
    """The rare path: some value is not UTF-8. Find which, refuse those rows."""
    out: list[str | None] = []
    bad = np.zeros(len(arr), dtype=bool)
    for i, v in enumerate(arr.to_pylist()):
        if v is None:
            out.append(None)
            continue
        try:
            out.append(v.decode("utf-8"))
        except UnicodeDecodeError:
            out.append(None)
            bad[i] = True
    checks.add(bad, f.name, "not valid UTF-8 text")
    return pa.array(out, pa.string())


def _from_text(f: Field, text: pa.Array, checks: _Checks) -> pa.Array:
    kind = f.kind
    if kind == "id":  # the one rule for ids (HTTP paths, bodies and the CLI apply it too)
        text = normalize_id_array(text)
        checks.add(has_control(text), f.name, "an id holds a control character: {value}", text)
    elif kind in ("event_type", "float", "timestamp", "bool"):
        text = pc.utf8_trim_whitespace(text)
    text = pc.if_else(pc.equal(pc.binary_length(text), 0), pa.scalar(None, pa.string()), text)
    if kind == "event_type":
        text = pc.utf8_lower(text)
        unknown = pc.and_(pc.invert(pc.is_in(text, pa.array(C.EVENT_TYPES))), pc.is_valid(text))
        checks.add(unknown, f.name, f"unknown event type {{value}}; valid: {', '.join(C.EVENT_TYPES)}", text)
        return text
    if kind == "float":
        ok = pc.match_substring_regex(text, _NUMBER)
        checks.add(pc.invert(ok), f.name, "not a number: {value}", text)
        vals = pc.cast(pc.if_else(ok, text, pa.scalar(None, pa.string())), pa.float64())
        # "1e999" has a number's form but no finite value (a typed column's inf is refused the same way)
        checks.add(pc.is_inf(vals), f.name, "not a finite number: {value}", text)
        return pc.if_else(pc.is_inf(vals), pa.scalar(None, pa.float64()), vals)
    if kind == "timestamp":
        return _timestamp_text(f, text, checks)
    if kind == "bool":
        low = pc.utf8_lower(text)
        yes, no = pc.is_in(low, pa.array(TRUE_WORDS)), pc.is_in(low, pa.array(FALSE_WORDS))
        checks.add(
            pc.and_(pc.is_valid(low), pc.invert(pc.or_(yes, no))), f.name, "not a boolean (true/false): {value}", text
        )
        return pc.if_else(yes, True, pc.if_else(no, False, pa.scalar(None, pa.bool_())))
    if kind in ("tags", "json"):
        return _container(f, text, checks)
    return text


def _timestamp_text(f: Field, text: pa.Array, checks: _Checks) -> pa.Array:
    """Unix seconds or ISO 8601 (naive times are UTC) -> float unix seconds."""
    numeric = pc.fill_null(pc.match_substring_regex(text, _NUMBER), False)
    secs = pc.cast(pc.if_else(numeric, text, pa.scalar(None, pa.string())), pa.float64()).to_numpy(zero_copy_only=False)
    iso = pc.and_(pc.is_valid(text), pc.invert(numeric))
    iso_np = _mask(iso, len(text))
    if iso_np.any():
        idx = np.flatnonzero(iso_np)
        raw = pd.Series(text.take(pa.array(idx)).to_pylist(), dtype=object)
        parsed = pd.to_datetime(raw, format="ISO8601", utc=True, errors="coerce")
        ok = parsed.notna().to_numpy()
        epoch = pd.Timestamp(0, tz="UTC")
        secs = secs.copy()
        secs[idx[ok]] = ((parsed[ok] - epoch) / pd.Timedelta(seconds=1)).to_numpy(dtype=float)
        bad = np.zeros(len(text), dtype=bool)
        bad[idx[~ok]] = True
        checks.add(bad, f.name, "bad timestamp {value}: expected ISO 8601 or unix seconds", text)
    return pa.array(secs, pa.float64(), from_pandas=True)


def _container(f: Field, arr: pa.Array, checks: _Checks) -> pa.Array:
    """Tags and attributes as canonical JSON text (sorted keys: re-ingest hashes the same)."""
    out: list[str | None] = []
    bad: list[int] = []
    reasons: dict[int, str] = {}
    textual = _is_textual(arr.type)
    for i, v in enumerate(arr.to_pylist()):
        if v is None:
            out.append(None)
            continue
        try:
            out.append(_tags_json(v, textual) if f.kind == "tags" else _attributes_json(v, textual))
        except ValueError as e:
            out.append(None)
            bad.append(i)
            reasons[i] = str(e)
    by_reason: dict[str, list[int]] = {}
    for i in bad:
        by_reason.setdefault(reasons[i], []).append(i)
    for reason, rows in by_reason.items():
        mask = np.zeros(len(arr), dtype=bool)
        mask[rows] = True
        checks.add(mask, f.name, reason)
    return pa.array(out, pa.string())


def _tags_json(v: Any, textual: bool) -> str | None:
    if textual:
        s = v.strip()
        if not s:
            return None
        if s.startswith("["):
            try:
                v = json.loads(s)
            except json.JSONDecodeError as e:
                raise ValueError(f"tags: not a valid JSON list: {e.msg}") from None
        else:
            v = s.split("|") if "|" in s else s.split(",")
    if not isinstance(v, list):
        raise ValueError(f"tags: expected a list of strings, found {type(v).__name__}")
    if not all(isinstance(t, str | int | float) and not isinstance(t, bool) for t in v):
        raise ValueError("tags: expected a list of strings")
    tags = [str(t).strip() for t in v if str(t).strip()]
    return json.dumps(tags, ensure_ascii=False)


def _attributes_json(v: Any, textual: bool) -> str | None:
    if textual:
        s = v.strip()
        if not s:
            return None
        try:
            v = json.loads(s)
        except json.JSONDecodeError as e:
            raise ValueError(f"attributes: not valid JSON: {e.msg}") from None
    if isinstance(v, list) and all(isinstance(p, tuple | list) and len(p) == 2 for p in v):
        v = dict(v)  # arrow map type arrives as key/value pairs
    if not isinstance(v, dict):
        raise ValueError(f"attributes: expected a JSON object, found {type(v).__name__}")
    return json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)


# ---------------------------------------------------------------------------- row rules
def _event_rules(out: dict[str, pa.Array], checks: _Checks, n: int) -> None:
    et = out.get(C.EVENT_TYPE)
    if et is None:
        return
    is_search = pc.fill_null(pc.equal(et, C.SEARCH), False)
    item = out.get(C.ITEM, pa.nulls(n, pa.string()))
    no_item = _mask(pc.and_(pc.invert(is_search), pc.is_null(item)), n) & ~checks.bad_in(C.ITEM)
    checks.add(no_item, C.ITEM, "empty item_id (only a search may have none)")
    query = out.get(C.QUERY, pa.nulls(n, pa.string()))
    checks.add(pc.and_(is_search, pc.is_null(query)), C.QUERY, "a search event needs a query")
    value = out.get(C.VALUE, pa.nulls(n, pa.float64()))
    is_rating = pc.fill_null(pc.equal(et, C.RATING), False)
    no_value = _mask(pc.and_(is_rating, pc.is_null(value)), n) & ~checks.bad_in(C.VALUE)
    checks.add(no_value, C.VALUE, "a rating event needs a value")
    # a purchase's value is what was paid (price x quantity): a refund is not a negative purchase
    is_purchase = pc.fill_null(pc.equal(et, C.PURCHASE), False)
    negative = _mask(pc.and_(is_purchase, pc.less(value, 0.0)), n) & ~checks.bad_in(C.VALUE)
    checks.add(negative, C.VALUE, "a purchase's value is the amount paid and must be >= 0, got {value}", value)


# ---------------------------------------------------------------------------- messages
def _row_errors(checks: _Checks, bad: np.ndarray, table: pa.Table, lines: np.ndarray, path: str) -> list[RowError]:
    if not bad.any():
        return []
    idx = np.flatnonzero(bad)
    shown = table.take(pa.array(idx))
    shown = pa.table({name: _displayable(col) for name, col in zip(shown.column_names, shown.columns, strict=True)})
    raws = {int(i): _raw_row(r) for i, r in zip(idx, shown.to_pylist(), strict=True)}
    errors: list[RowError] = []
    for m, column, reason, raw in checks.found:
        rows = np.flatnonzero(m & bad)
        values = None
        if raw is not None and "{value}" in reason:
            values = _displayable(raw.take(pa.array(rows))).to_pylist()
        for j, i in enumerate(rows):
            why = reason.format(value=_show(values[j])) if values is not None else reason
            errors.append(RowError(path, int(lines[i]), column, why, raws[int(i)]))
    errors.sort(key=lambda e: e.line)
    return errors


def _displayable(arr: Any) -> Any:
    """Dates and times as text: Python's datetime cannot hold the far-out ones a file may carry."""
    t = arr.type
    if pa.types.is_temporal(t):
        return arr.cast(pa.string())
    return arr


def _show(v: Any) -> str:
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _raw_row(row: dict[str, Any]) -> str:
    clean = {k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else v) for k, v in row.items()}
    s = json.dumps(clean, ensure_ascii=False, default=str)
    return s if len(s) <= 2000 else s[:2000] + "..."
