"""The randomised slice of traffic that measures position bias: on a small share of responses
(``service.position_swap_share``), the first item trades places with the item at a random position
2..:data:`SWAP_DEPTH` (Joachims, Swaminathan and Schnabel, "Unbiased learning-to-rank with biased
feedback", WSDM 2017: the swap intervention).

Because the swap is random, the item the ranking put first is shown at position k on those requests
and at position 1 on the others, with the same relevance in expectation: the ratio of its click
rates is the ratio of how often shoppers examine the two positions. The impressions of a swapped
response record each item's ranked position (``ranked_position``); the estimator is
:mod:`shopsense.ranking.propensity`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")

#: deepest position (1-based) the first item is swapped with: below it few shoppers look, so a swap
#: there would cost a top item's clicks and measure little
SWAP_DEPTH = 10


def position_swap(items: Sequence[T], share: float, rng: random.Random) -> tuple[list[T], list[int] | None]:
    """``items`` as shown and, when this response was drawn for a swap (probability ``share``), each
    shown item's ranked position (0-based); None when shown as ranked."""
    shown = list(items)
    if share <= 0 or len(shown) < 2 or rng.random() >= share:
        return shown, None
    k = rng.randrange(1, min(len(shown), SWAP_DEPTH))
    shown[0], shown[k] = shown[k], shown[0]
    ranked = list(range(len(shown)))
    ranked[0], ranked[k] = k, 0
    return shown, ranked
