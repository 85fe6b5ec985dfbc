"""Team-draft interleaving: each arm contributes equally in expectation, clicks are credited to the
team that drafted the clicked item."""

from __future__ import annotations

import random

import numpy as np

from shopsense.experiments import credit, team_draft


def test_team_draft_follows_the_2008_algorithm() -> None:
    a, b = ["a1", "a2", "a3", "s"], ["s", "b1", "b2", "b3"]
    draft = team_draft(a, b, 6, random.Random(1))
    assert len(draft.items) == 6 and len(set(draft.items)) == 6
    for item, team in zip(draft.items, draft.teams, strict=True):
        # a team only drafts from its own list, its highest-ranked item not yet taken
        assert item in (a if team == 0 else b)
    # picks alternate in rounds: after every second pick both teams have as many
    for n in range(2, 7, 2):
        assert draft.teams[:n].count(0) == draft.teams[:n].count(1)
    # identical lists: the merged list is that list whoever picks
    same = team_draft(a, a, 4, random.Random(5))
    assert same.items == a


def test_each_arm_contributes_equally_in_expectation() -> None:
    rng = random.Random(0)
    k, draws = 10, 4000
    top = np.zeros(2)
    per_position = np.zeros((2, k))
    for _ in range(draws):
        pool = [f"p{i}" for i in range(30)]
        a = rng.sample(pool, 15)
        b = rng.sample(pool, 15)
        d = team_draft(a, b, k, rng)
        for pos, t in enumerate(d.teams):
            per_position[t, pos] += 1
        top[d.teams[0]] += 1
    # every position is drafted by each team about half the time (the first pick is the coin)
    share = per_position[0] / per_position.sum(axis=0)
    assert np.all(np.abs(share - 0.5) < 0.04), share
    assert abs(top[0] / draws - 0.5) < 0.04


def test_clicks_are_credited_to_the_drafting_team() -> None:
    teams = [0, 1, 1, 0]
    assert credit(teams, [True, False, False, False]) == 1  # only the first arm's item clicked
    assert credit(teams, [False, True, True, True]) == -1  # two clicks for the second, one for the first
    assert credit(teams, [True, True, False, False]) == 0  # one each: a tie
    assert credit(teams, [False] * 4) == 0
    draft = team_draft(["x", "y"], ["z", "x"], 3, random.Random(3))
    clicked = [item == "z" for item in draft.items]
    assert credit(draft.teams, clicked) == -1  # z can only come from the second list
