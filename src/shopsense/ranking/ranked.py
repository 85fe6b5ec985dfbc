"""One item of any ranked list the engines answer with (recommend, similar, search)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class RankedItem:
    """A product in a list, best first: its score, the source that put it there and why."""

    item_id: str
    score: float
    source: str
    explanation: str | None = None
    title: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
