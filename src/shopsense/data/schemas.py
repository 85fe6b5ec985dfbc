"""What a product, event and user record must look like when it comes in from a file.

A :class:`Schema` is a list of :class:`Field` specs keyed by the names in :mod:`shopsense.columns`.
:mod:`shopsense.data.validation` turns a raw batch into these columns and types, vectorised, and
reports every refused row with file, line and column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shopsense import columns as C

#: how a raw value is checked and converted
Kind = Literal["id", "text", "float", "bool", "timestamp", "tags", "json", "event_type", "category"]


@dataclass(frozen=True)
class Field:
    """One column of a record.

    ``required``: the column must be in the file and no row may leave it empty.
    ``column_required``: the column must be in the file, but rows may leave it empty (row rules decide).
    """

    name: str
    kind: Kind
    required: bool = False
    column_required: bool = False
    min_value: float | None = None
    description: str = ""

    @property
    def needs_column(self) -> bool:
        return self.required or self.column_required


@dataclass(frozen=True)
class Schema:
    """The fields of one record kind, in store column order."""

    name: str
    fields: tuple[Field, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.needs_column)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


PRODUCT = Schema(
    "product",
    (
        Field(C.ITEM, "id", required=True, description="unique product id"),
        Field(C.TITLE, "text", required=True),
        Field(C.DESCRIPTION, "text"),
        Field(C.CATEGORY, "category", description='path such as "Kitchen > Appliances"; a list is joined'),
        Field(C.BRAND, "text"),
        Field(C.PRICE, "float", min_value=0.0),
        Field(C.IMAGE_URL, "text"),
        Field(C.TAGS, "tags", description="list, JSON array, or a comma/| separated string"),
        Field(C.ATTRIBUTES, "json", description="free JSON object"),
        Field(C.AVAILABLE, "bool", description="true/false, 1/0, yes/no; empty means available"),
        Field(C.CREATED_AT, "timestamp"),
        Field(C.UPDATED_AT, "timestamp"),
    ),
)

EVENT = Schema(
    "event",
    (
        Field(C.EVENT_ID, "id", description="optional: when given, it is the event's identity"),
        Field(C.USER, "id", required=True),
        Field(C.ITEM, "id", column_required=True, description="empty only for a search"),
        Field(C.EVENT_TYPE, "event_type", required=True, description=" | ".join(C.EVENT_TYPES)),
        Field(
            C.VALUE,
            "float",
            description="rating value; for a purchase the amount paid (price x quantity, >= 0); required for a rating",
        ),
        Field(C.TIMESTAMP, "timestamp", required=True, description="ISO 8601 or unix seconds"),
        Field(C.SESSION, "id"),
        Field(C.QUERY, "text", description="required for a search"),
        Field(C.REQUEST_ID, "id"),
        Field(C.ORDER_ID, "id", description="optional: the order a purchase belongs to"),
    ),
)

USER = Schema(
    "user",
    (
        Field(C.USER, "id", required=True),
        Field(C.ATTRIBUTES, "json"),
    ),
)

SCHEMAS = {"products": PRODUCT, "events": EVENT, "users": USER}

#: accepted spellings of booleans (compared lower-cased, stripped)
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")

#: unix seconds above this are refused: they are almost surely milliseconds (year 2200)
MAX_TIMESTAMP = 7_258_118_400.0


def schema_for(kind: str) -> Schema:
    """The schema of ``products``, ``events`` or ``users``."""
    try:
        return SCHEMAS[kind]
    except KeyError:
        raise ValueError(f"unknown record kind {kind!r}; valid: {', '.join(SCHEMAS)}") from None
