"""Which served version answers a list request, and what to log of it: the default version outside
experiments, the user's arm's version in an A/B experiment, both arms' versions merged by team-draft
in an interleaving one (:mod:`shopsense.experiments`)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shopsense.experiments import Assignment, team_draft
from shopsense.experiments.position_swap import position_swap
from shopsense.ranking.ranked import RankedItem
from shopsense.service.engines import Served


@dataclass(frozen=True)
class Shown:
    """A response's list and what its impressions record."""

    items: list[RankedItem]
    model_version: str | None  # the response's (an interleaved list: the first arm's)
    experiment: str | None = None
    arm: str | None = None  # the response's arm (None outside an experiment and when interleaved)
    item_versions: Sequence[str | None] | None = None  # interleaved: per item, its team's version
    item_arms: Sequence[str] | None = None  # interleaved: per item, its team
    ranked_positions: Sequence[int] | None = None  # a randomised position swap: each item's ranked position

    @property
    def logged_versions(self) -> str | None | Sequence[str | None]:
        return self.item_versions if self.item_versions is not None else self.model_version

    @property
    def logged_arms(self) -> str | None | Sequence[str | None]:
        return self.item_arms if self.item_arms is not None else self.arm


@dataclass(frozen=True)
class Routing:
    """The served versions to ask (one, or two when interleaving) and how to merge their lists."""

    served: tuple[Served, ...]
    assignment: Assignment | None = None
    swap_share: float = 0.0  # outside experiments: the share of responses in the position-bias slice

    def merge(self, lists: Sequence[list[RankedItem]], k: int, request_id: str) -> Shown:
        """One list from the answers of :attr:`served` (in that order); outside an experiment, on
        a ``swap_share`` of requests, with its first item swapped (:mod:`~shopsense.experiments.position_swap`)."""
        a = self.assignment
        if a is None:
            if not self.swap_share:
                return Shown(lists[0], self.served[0].version)
            # seeded by the request id like the interleaving's coin flips: a repeated request id, the same list
            items, ranked = position_swap(lists[0], self.swap_share, random.Random(request_id))
            return Shown(items, self.served[0].version, ranked_positions=ranked)
        exp = a.experiment
        if a.arm is not None:
            return Shown(lists[0], a.arm.version, exp.name, a.arm.name)
        # the request id seeds the coin flips: a repeated request id gives the same list
        draft = team_draft(lists[0], lists[1], k, random.Random(request_id), key=lambda it: it.item_id)
        arms = exp.arms
        return Shown(
            draft.items,
            arms[0].version,
            exp.name,
            None,
            item_versions=[arms[t].version for t in draft.teams],
            item_arms=[arms[t].name for t in draft.teams],
        )


def routing(models: Any, default: Served, surface: str, user_id: str | None, swap_share: float = 0.0) -> Routing:
    """Who answers ``user_id`` on list ``surface``: ``models`` is the app's
    :class:`~shopsense.service.models_state.ModelState`, ``default`` the served default version;
    ``swap_share`` of the answers outside experiments are in the position-bias slice."""
    live = models.experiments
    a = live.assign(surface, user_id)
    if a is None:
        return Routing((default,), swap_share=swap_share)
    if a.arm is not None:
        return Routing((live.served(a.arm.version),), a)
    return Routing(tuple(live.served(arm.version) for arm in a.experiment.arms), a)
