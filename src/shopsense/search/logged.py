"""What training reads from search about its logged lists (:mod:`shopsense.ranking.joint`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from shopsense.search.features import FEATURES

if TYPE_CHECKING:
    from shopsense.search.engine import SearchEngine


class LoggedSearchFeatures:
    """A :class:`~shopsense.ranking.joint.SearchFeaturer`: for a logged search, the features of the
    products it showed as ``engine`` retrieves them now (not personalised: a logged list does not
    record the profile), and the score search serves them with without a joint ranker."""

    names = FEATURES

    def __init__(self, engine: SearchEngine) -> None:
        self.engine = engine

    def __call__(self, query: str, item_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        eng = self.engine
        x = np.full((len(item_ids), len(FEATURES)), np.nan, np.float32)
        served = np.full(len(item_ids), np.nan, np.float32)
        if not query.strip():
            return x, served
        cand = eng.candidates(query, corrected=eng.correct(query))
        s = eng.own_score(cand)
        at = {int(r): i for i, r in enumerate(cand.rows)}
        for j, item in enumerate(item_ids):
            i = at.get(eng.index.row_of.get(str(item), -1))
            if i is not None:
                x[j] = cand.features[i]
                served[j] = s[i]
        return x, served
