"""Small batches of plainly valid rows, converted without the vectorised validator's fixed cost.

:func:`~shopsense.data.validation.validate_batch` makes ~200 pyarrow calls at 5-25 us each whatever
the batch length, so one event posted over HTTP cost ~6 ms to validate. :func:`clean_rows` only
recognises values that need no conversion rule and returns them as the vectorised path would;
anything in doubt goes the vectorised way, which decides and words every refusal. A property test
(``tests/data/test_plain_rows.py``) holds both paths to the same output.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from shopsense import columns as C
from shopsense.config import IngestConfig
from shopsense.data.ids import CONTROL, WHITESPACE
from shopsense.data.schemas import MAX_TIMESTAMP, Field, Schema

_CONTROL_CHAR = re.compile(CONTROL)


def clean_rows(schema: Schema, rows: Sequence[dict[str, Any]], config: IngestConfig | None = None) -> list[dict] | None:
    """The rows of a small batch converted as :func:`~shopsense.data.validation.validate_batch`
    converts them, when every row is plainly valid (ids and text as given or padded with whitespace,
    numbers in range, known event types); else None, and the caller runs ``validate_batch`` (lists,
    ISO times, a control character, an over-long field all go that way)."""
    config = config or IngestConfig()
    if not rows:
        return None
    keys = rows[0].keys()
    fields = [f for f in schema.fields if f.name in keys]
    present = {f.name for f in fields}
    if any(f.required and f.name not in present for f in schema.fields):
        return None
    out: list[dict] = []
    for row in rows:
        if row.keys() != keys:
            return None
        clean: dict[str, Any] = {}
        for f in fields:
            ok, value = _clean_value(f, row[f.name], config)
            if not ok or (value is None and f.required):
                return None
            clean[f.name] = value
        if schema.name == "event" and not _event_row_ok(clean):
            return None
        out.append(clean)
    return out


def _clean_value(f: Field, v: Any, config: IngestConfig) -> tuple[bool, Any]:
    """(True, converted) for a value that plainly passes ``f``'s rules; (False, None) for any doubt."""
    if v is None:
        return True, None
    kind = f.kind
    if kind in ("id", "text", "event_type"):
        if not isinstance(v, str) or "\x00" in v:
            return False, None
        if kind == "event_type":
            return (v in C.EVENT_TYPES and len(v) <= config.max_id_chars), v
        if kind == "id":
            v = v.strip(WHITESPACE)
            if _CONTROL_CHAR.search(v):
                return False, None
        limit = config.max_id_chars if kind == "id" else config.max_field_chars
        return len(v) <= limit, (v or None)
    if kind in ("float", "timestamp"):
        if isinstance(v, bool) or not isinstance(v, int | float) or abs(v) >= 2.0**53:
            return False, None
        x = float(v)
        if not np.isfinite(x):
            return False, None
        if kind == "timestamp":
            return 0 <= x <= MAX_TIMESTAMP, x
        return (f.min_value is None or x >= f.min_value), x
    if kind == "bool":
        return isinstance(v, bool), v
    return False, None  # tags, attributes, categories: their parsing lives in the vectorised path


def _event_row_ok(row: dict[str, Any]) -> bool:
    """The vectorised validator's event rules (``validation._event_rules``) for one clean row."""
    kind = row.get(C.EVENT_TYPE)
    if kind == C.SEARCH:
        return row.get(C.QUERY) is not None
    if row.get(C.ITEM) is None:
        return False
    value = row.get(C.VALUE)
    if kind == C.PURCHASE:
        return value is None or value >= 0
    return kind != C.RATING or value is not None
