"""Every CSV or TSV file the engine writes goes through here, so no cell runs as a spreadsheet formula.

A shop's titles, queries and ids are stored as given (``=HYPERLINK(...)`` is a fine title), but a
spreadsheet opening a CSV runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or
carriage return, which some strip first) as a formula. Such a cell is written with a single quote
in front (OWASP's advice); plain numbers such as ``-1.5`` are left alone. Parquet and JSONL exports
keep values exactly: use them for round trips.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """``value`` with a leading ``'`` when a spreadsheet would take it for a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


class SafeWriter:
    """``csv.writer`` whose rows pass through :func:`safe_cell`."""

    def __init__(self, fh: IO[str], delimiter: str = ",") -> None:
        self._w = csv.writer(fh, delimiter=delimiter)

    def writerow(self, row: Iterable[Any]) -> None:
        self._w.writerow([safe_cell(v) for v in row])


def write_frame(df: pd.DataFrame, path: str | Path, sep: str = ",") -> None:
    """``df`` as CSV (or TSV with ``sep="\\t"``) without its index, text cells made safe."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col].dtype):
            out[col] = out[col].map(safe_cell, na_action="ignore")
    out.to_csv(path, index=False, sep=sep)
