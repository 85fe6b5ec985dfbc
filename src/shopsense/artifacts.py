"""Reading the ``params.json`` that every saved artifact folder (index, engine, re-ranker) carries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shopsense.exceptions import IncompatibleFormatError, NotFittedError


def read_params(
    file: Path, *, what: str, format_version: int, missing: str | None = None, remedy: str = ""
) -> dict[str, Any]:
    """The JSON object in ``file``, after checking its ``format_version``.

    ``what`` names the artifact in the error (``"BM25 index at <folder>"``); ``missing`` is the
    message of the :class:`NotFittedError` raised when the file does not exist (without it the
    ``FileNotFoundError`` propagates). Another format raises :class:`IncompatibleFormatError`,
    ending with ``remedy`` (what to do) when given.
    """
    try:
        params: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        if missing is None:
            raise
        raise NotFittedError(missing) from e
    if params.get("format_version") != format_version:
        todo = f": {remedy}" if remedy else ""
        raise IncompatibleFormatError(
            f"{what} has format {params.get('format_version')}, expected {format_version}{todo}"
        )
    return params
