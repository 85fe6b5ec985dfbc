"""Product text: one string per product, built from a template over catalog fields.

The template is a Python format string over product columns (``"{title}. {brand}. {category}"``).
Besides plain columns it understands ``{attributes}`` (every attribute as ``key: value``),
``{attributes.color}`` (one attribute) and ``{tags}`` (comma-separated). A missing or empty field is
dropped together with the separator in front of it, so no ``"nan"``, ``"None"`` or ``". ."`` leaks
into the text the model sees.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from string import Formatter
from typing import Any

import pandas as pd

from shopsense import columns as C
from shopsense.config import EncoderConfig

DEFAULT_TEMPLATE = EncoderConfig().template

#: values that mean "nothing here" (they appear when a missing value went through str())
_MISSING_STRINGS = frozenset({"", "nan", "NaN", "None", "none", "null", "NULL", "<NA>", "NaT"})
#: descriptions can be pages long; the encoder truncates at its max length anyway
MAX_FIELD_CHARS = 2000
_EDGE = re.compile(r"^[\s.,;:|/\-]+|[\s,;:|/\-]+$")
_SPACES = re.compile(r"\s+")


def is_missing(v: Any) -> bool:
    """True for None, NaN/NA, empty containers and the string spellings of missing values."""
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    if isinstance(v, str):
        return v.strip() in _MISSING_STRINGS
    if isinstance(v, list | tuple | set | Mapping):
        return len(v) == 0
    return False


def _text_of(v: Any) -> str:
    if is_missing(v):
        return ""
    if isinstance(v, Mapping):
        parts = [f"{k}: {_text_of(x)}" for k, x in v.items() if not is_missing(x)]
        return "; ".join(p for p in parts if not p.endswith(": "))
    if isinstance(v, list | tuple | set):
        return ", ".join(t for t in (_text_of(x) for x in v) if t)
    if hasattr(v, "tolist") and not isinstance(v, str):  # numpy arrays / scalars
        return _text_of(v.tolist())
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    s = _SPACES.sub(" ", str(v)).strip()
    return "" if s in _MISSING_STRINGS else s[:MAX_FIELD_CHARS]


def _field(row: Mapping[str, Any], name: str) -> str:
    """The text of one template field for one product row."""
    if name.startswith(C.ATTRIBUTES + "."):
        attrs = row.get(C.ATTRIBUTES)
        if not isinstance(attrs, Mapping):
            return ""
        return _text_of(attrs.get(name.split(".", 1)[1]))
    return _text_of(row.get(name))


def parse_template(template: str) -> list[tuple[str, str | None]]:
    """Split a template into (literal before, field name) pairs; validates it."""
    try:
        parts = [(lit, field) for lit, field, _spec, _conv in Formatter().parse(template)]
    except ValueError as e:
        raise ValueError(f"bad product text template {template!r}: {e}") from e
    if not any(f for _, f in parts):
        raise ValueError(f"product text template {template!r} names no field; e.g. '{{title}}. {{brand}}'")
    return parts


def render(row: Mapping[str, Any], parts: list[tuple[str, str | None]]) -> str:
    """Fill a parsed template for one row, dropping missing fields with their leading separator."""
    out: list[str] = []
    for literal, field in parts:
        if field is None:  # trailing literal
            out.append(literal)
            continue
        value = _field(row, field)
        if value:
            out.append(literal if out else literal.lstrip(" .,;:|/-"))
            out.append(value)
    text = _EDGE.sub("", "".join(out))
    return _SPACES.sub(" ", text).strip()


def product_texts(products: pd.DataFrame, template: str | None = None) -> list[str]:
    """One text per product row, in row order (``template`` defaults to ``EncoderConfig().template``)."""
    parts = parse_template(template or DEFAULT_TEMPLATE)
    if products.empty:
        return []
    records = products.to_dict("records")
    return [render(r, parts) for r in records]


def text_hash(text: str) -> str:
    """Stable content hash of a product text (the embedding-cache key with the model id)."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()
