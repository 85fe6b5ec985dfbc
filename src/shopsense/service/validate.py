"""HTTP bodies through the same validation as file ingest (:mod:`shopsense.data.validation`).

pydantic has already checked shapes and types (a clear 422 per field); this second pass applies the
ingest rules (id and text limits, category paths, tags and attributes as canonical JSON, a rating
needs a value...) so a row posted over HTTP is stored exactly as the same row from a file would be.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from shopsense import columns as C
from shopsense.config import IngestConfig
from shopsense.data.plain_rows import clean_rows
from shopsense.data.readers import Batch
from shopsense.data.schemas import EVENT, PRODUCT, Schema
from shopsense.data.validation import validate_batch
from shopsense.exceptions import SchemaError

WHERE = "request body"


def _validate(schema: Schema, rows: Sequence[dict[str, Any]], config: IngestConfig) -> pd.DataFrame:
    table = pa.Table.from_pylist(list(rows))
    v = validate_batch(schema, Batch(table, np.arange(1, len(rows) + 1)), WHERE, config)
    if v.errors:
        # lines are 1-based positions in the posted array
        raise SchemaError(f"{len(v.errors)} invalid {schema.name}(s) in the {WHERE}", v.errors)
    return v.frame


def events_frame(rows: Sequence[dict[str, Any]], config: IngestConfig) -> pd.DataFrame:
    """Validated events (pydantic dumps with user ids already mapped and timestamps filled)."""
    return _validate(EVENT, rows, config)


#: batches up to this size first try the per-row path (:func:`clean_events`)
SMALL_BATCH = 64


def clean_events(rows: Sequence[dict[str, Any]], config: IngestConfig) -> list[dict] | None:
    """The validated records of a small batch of plainly valid events, or None: then
    :func:`events_frame` validates (and words any refusal). For the store's ``add_event_rows``."""
    return clean_rows(EVENT, rows, config) if len(rows) <= SMALL_BATCH else None


def products_frame(rows: Sequence[dict[str, Any]], config: IngestConfig) -> pd.DataFrame:
    """Validated products; tags and attributes travel as JSON text (the ingest rules parse them)."""
    prepared = [
        {
            **r,
            C.TAGS: json.dumps(r.get(C.TAGS) or [], ensure_ascii=False),
            C.ATTRIBUTES: json.dumps(r.get(C.ATTRIBUTES) or {}, ensure_ascii=False, sort_keys=True),
        }
        for r in rows
    ]
    return _validate(PRODUCT, prepared, config)
