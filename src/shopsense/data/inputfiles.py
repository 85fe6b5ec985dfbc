"""Input files that cannot be read at all become one error line naming the file.

Rows that do not fit the schema are :mod:`shopsense.data.validation`'s business (file, line,
column); this is for the file itself: missing, a folder, no permission, corrupt or truncated gzip or
Parquet, bytes that are not UTF-8. Every reader of an input file (ingest, evaluate's queries and
judgements) runs inside :func:`input_errors`, so the CLI exits 2 with one line instead of a traceback.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa

from shopsense.exceptions import InputFileError, ShopsenseError


@contextmanager
def input_errors(path: str | Path, what: str = "file") -> Iterator[None]:
    """Any I/O or decoding failure of the block becomes one :class:`InputFileError` line naming
    ``path`` (missing, a folder, no permission, corrupt or truncated gzip/Parquet, bad bytes)."""
    try:
        yield
    except ShopsenseError:
        raise
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, pa.ArrowException, csv.Error) as e:
        raise InputFileError(f"{path}: {_why(Path(path), what, e)}") from e


def _why(path: Path, what: str, e: BaseException) -> str:
    reason = " ".join(str(e).split()) or type(e).__name__
    if isinstance(e, FileNotFoundError) and not path.exists():
        return f"no such {what}"
    if isinstance(e, IsADirectoryError) or path.is_dir():
        return f"is a folder, not a {what}"
    if isinstance(e, PermissionError):
        return f"permission denied: this user cannot read the {what}"
    if isinstance(e, EOFError):
        return f"the {what} ends early (truncated or still being written?): {reason}"
    if isinstance(e, gzip.BadGzipFile | zlib.error) or (path.suffix.lower() == ".gz" and isinstance(e, OSError)):
        return f"not a readable gzip {what} (corrupt?): {reason}"
    if isinstance(e, UnicodeDecodeError):
        return f"not valid UTF-8 text (byte {e.start}): save the {what} as UTF-8"
    kind = "Parquet " if path.suffix.lower() in (".parquet", ".pq") else ""
    return f"cannot read the {kind}{what} (corrupt or truncated?): {reason}"
