"""Team-draft interleaving (Radlinski, Kurup and Joachims, "How does clickthrough data reflect
retrieval quality?", CIKM 2008): two arms' lists merged into one, each item credited to the arm
(team) that drafted it, so a click is a vote for that arm.

Like two captains choosing players: the arm with fewer picks so far picks next, a coin decides when
they have as many; each picks its highest-ranked item not yet in the list. Each arm thus places
equally many items in expectation, and in expectation as high, whatever the lists are.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class TeamDraft(Generic[T]):
    """The merged list and, per position, the team (0: the first arm, 1: the second) that drafted it."""

    items: list[T]
    teams: list[int]


def team_draft(
    a: Sequence[T], b: Sequence[T], k: int, rng: random.Random, key: Callable[[T], Hashable] = lambda x: x
) -> TeamDraft[T]:
    """Interleave lists ``a`` and ``b`` (best first) into at most ``k`` items; ``key`` identifies an
    item (e.g. its id). When one list has nothing new left, the other fills the rest under its own
    team (the 2008 algorithm stops there; a shorter response would cost the shop more than the few
    extra credits cost the test, and both arms get the same chance of it)."""
    lists = (a, b)
    nxt = [0, 0]
    picks = [0, 0]
    seen: set[Hashable] = set()
    items: list[T] = []
    teams: list[int] = []

    def has_new(t: int) -> bool:
        while nxt[t] < len(lists[t]) and key(lists[t][nxt[t]]) in seen:
            nxt[t] += 1
        return nxt[t] < len(lists[t])

    while len(items) < k:
        left = [t for t in (0, 1) if has_new(t)]
        if not left:
            break
        if len(left) == 2:
            team = 0 if picks[0] < picks[1] else 1 if picks[1] < picks[0] else rng.randrange(2)
        else:
            team = left[0]
        item = lists[team][nxt[team]]
        seen.add(key(item))
        items.append(item)
        teams.append(team)
        picks[team] += 1
    return TeamDraft(items, teams)


def credit(teams: Sequence[int], clicked: Sequence[bool]) -> int:
    """One request's outcome from its teams and which positions were clicked: +1 when the first arm
    got more clicks, -1 when the second did, 0 for a tie (no clicks included)."""
    if len(teams) != len(clicked):
        raise ValueError(f"{len(teams)} teams for {len(clicked)} click flags")
    first = sum(1 for t, c in zip(teams, clicked, strict=True) if c and t == 0)
    second = sum(1 for t, c in zip(teams, clicked, strict=True) if c and t == 1)
    return (first > second) - (first < second)
