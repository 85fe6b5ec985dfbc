"""One human-readable reason per recommended item, from the source that proposed it.

"because you viewed X" (item-to-item sources: the history item with the strongest link),
"often bought next after X" (sequential), "similar to X" / "matches your search 'q'" (content),
"popular in C" / "trending now" (popularity), "new: similar to X" (a cold product).
"""

from __future__ import annotations

import numpy as np

from shopsense import columns as C
from shopsense.models.base import Model
from shopsense.models.item_item import ItemItemModel

VERB = {
    C.VIEW: "viewed",
    C.CLICK: "clicked",
    C.FAVORITE: "saved",
    C.ADD_TO_CART: "added to your cart",
    C.PURCHASE: "bought",
    C.RATING: "rated",
}


def strongest_link(model: Model | None, item: int, history: np.ndarray) -> int | None:
    """Position in ``history`` of the item most linked to ``item`` (latest wins ties), or None."""
    if not isinstance(model, ItemItemModel) or model.sim is None or not len(history):
        return None
    best, best_w = None, 0.0
    for pos in range(len(history) - 1, -1, -1):
        h = int(history[pos])
        if h < 0 or h >= model.n_items:
            continue
        nb, w = model.neighbors_of(h)
        hit = np.flatnonzero(nb == item)
        if len(hit) and w[hit[0]] > best_w:
            best, best_w = pos, float(w[hit[0]])
    return best


def most_similar(vectors: np.ndarray | None, item: int, history: np.ndarray) -> int | None:
    """Position in ``history`` of the item whose text is closest to ``item``."""
    if vectors is None or not len(history) or item >= len(vectors):
        return None
    h = history[history < len(vectors)]
    if not len(h):
        return None
    sims = vectors[h] @ vectors[item]
    return int(np.flatnonzero(history < len(vectors))[int(np.argmax(sims))])


def explain(
    source: str,
    item: int,
    history: np.ndarray,
    event_types: list[str],
    titles: np.ndarray,
    *,
    model: Model | None = None,
    vectors: np.ndarray | None = None,
    query: str | None = None,
    category: str | None = None,
) -> str:
    """The reason for recommending ``item`` (indices into ``titles``) given the user's ``history``."""

    def named(pos: int | None) -> str | None:
        if pos is None:
            return None
        verb = VERB.get(event_types[pos], "viewed") if pos < len(event_types) else "viewed"
        return f"because you {verb} {quote(titles[history[pos]])}"

    if source in ("ease", "itemknn", "covisit"):
        return named(strongest_link(model, item, history)) or named(len(history) - 1) or "popular right now"
    if source == "sequential" and len(history):
        return f"often chosen next after {quote(titles[history[-1]])}"
    if source == "als":
        return "liked by shoppers with tastes like yours"
    if source == "search":
        return f"matches your search {quote(query or '')}"
    if source in ("content", "cold"):
        pos = most_similar(vectors, item, history)
        if query and (pos is None or source == "content"):
            return f"similar to your search {quote(query)}"
        prefix = "new: " if source == "cold" else ""
        return (
            f"{prefix}similar to {quote(titles[history[pos]])}"
            if pos is not None
            else f"{prefix}matches your interests"
        )
    if source == "popular_in_category" and category:
        return f"popular in {category}"
    if source == "trending":
        return "trending now"
    return "popular with other shoppers"


def quote(text: object) -> str:
    """A product title or query as an explanation quotes it: in curly quotes, cut at 60 characters."""
    s = str(text) if text is not None else ""
    return f"“{s[:60]}…”" if len(s) > 60 else f"“{s}”"
