"""The one rule for ids (users, products, sessions, events), wherever they come in.

File ingest, HTTP bodies, path and query parameters and the CLI all pass ids through here, so the
id a shopper's events are stored under is the id every route and command finds them by: surrounding
whitespace is removed (the Unicode whitespace Python's ``str.isspace`` knows, the same characters
for one string and for an Arrow column); what remains must be non-empty and free of control
characters. Anything else (``a/b``, ``100%``, ``zoë``, inner spaces) is kept exactly as given.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from shopsense.exceptions import SchemaError

#: every character ``str.isspace`` accepts (a test checks this list against all of Unicode)
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
#: C0 controls and DEL: invisible, and a NUL ends a string in some drivers and tools
CONTROL = r"[\x00-\x1f\x7f]"
_CONTROL = re.compile(CONTROL)


def normalize_id(raw: str, what: str = "id") -> str:
    """``raw`` as it is stored; raises :class:`SchemaError` (naming ``what``) for an empty id or one
    holding a control character."""
    value = raw.strip(WHITESPACE)
    if not value:
        raise SchemaError(f"empty {what}: an id needs a character other than whitespace")
    if _CONTROL.search(value):
        raise SchemaError(f"{what} {value!r} holds a control character; ids are printable text")
    return value


def normalize_id_array(values: pa.Array) -> pa.Array:
    """:func:`normalize_id` for a whole string column (empty results become null; callers check
    :func:`has_control` and emptiness with their own messages)."""
    trimmed = pc.utf8_trim(values, characters=WHITESPACE)
    return pc.if_else(pc.equal(pc.binary_length(trimmed), 0), pa.scalar(None, pa.string()), trimmed)


def has_control(values: pa.Array) -> pa.Array:
    """Which values hold a control character (refused, as :func:`normalize_id` refuses them)."""
    return pc.match_substring_regex(values, CONTROL)
