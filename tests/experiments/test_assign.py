"""Assignment: sticky per user, independent across experiments, by the split's weights."""

from __future__ import annotations

import numpy as np

from shopsense.experiments import Arm, Assigner, Experiment, bucket


def _exp(name: str, salt: str, weights: tuple[float, ...] = (1.0, 1.0), surface: str = "recommend") -> Experiment:
    arms = tuple(
        Arm(n, f"v{i}", w)
        for i, (n, w) in enumerate(zip(("control", "treatment", "third")[: len(weights)], weights, strict=True))
    )
    return Experiment(name, arms, surface, "ab", "running", 0.0, None, salt)


USERS = [f"user-{i}" for i in range(20_000)]


def test_assignment_is_sticky_across_assigners() -> None:
    e = _exp("x", "00" * 16)
    first = [Assigner([e]).assign("for_you", u).arm.name for u in USERS[:500]]
    again = [Assigner([e]).assign("for_you", u).arm.name for u in USERS[:500]]  # another process, same salt
    assert first == again
    assert len(set(first)) == 2
    # the bucket is the keyed hash's, not the user id's order or a process's hash seed
    assert bucket("00" * 16, "user-0") == bucket("00" * 16, "user-0") and 0 <= bucket("00" * 16, "user-0") < 1


def test_experiments_assign_independently() -> None:
    a = Assigner([_exp("a", "11" * 16, surface="for_you")])
    b = Assigner([_exp("b", "22" * 16, surface="for_you")])
    in_a = np.array([a.assign("for_you", u).arm.name == "treatment" for u in USERS])
    in_b = np.array([b.assign("for_you", u).arm.name == "treatment" for u in USERS])
    # independent: the four combinations each hold about a quarter of the users
    for x in (True, False):
        for y in (True, False):
            share = float(((in_a == x) & (in_b == y)).mean())
            assert abs(share - 0.25) < 0.015, (x, y, share)
    # the same salt would assign identically: independence comes from the salts
    same = Assigner([_exp("c", "11" * 16, surface="for_you")])
    assert all(
        same.assign("for_you", u).arm.name == ("treatment" if t else "control")
        for u, t in zip(USERS, in_a, strict=True)
    )


def test_split_ratio_within_tolerance_over_20000_users() -> None:
    for weights in ((50.0, 50.0), (90.0, 10.0), (1.0, 2.0, 1.0)):
        e = _exp("s", "ab" * 16, weights)
        got = Assigner([e]).assign
        names = [got("buy_again", u).arm.name for u in USERS]
        for arm in e.arms:
            share = names.count(arm.name) / len(USERS)
            want = arm.weight / sum(weights)
            # 4 standard errors of a binomial share over 20,000 users
            assert abs(share - want) < 4 * np.sqrt(want * (1 - want) / len(USERS)), (weights, arm.name, share)


def test_only_the_experiments_surfaces_and_users_with_an_id_are_assigned() -> None:
    a = Assigner([_exp("r", "33" * 16, surface="recommend")])
    assert a.assign("for_you", "u1") is not None and a.assign("bought_together", "u1") is not None
    assert a.assign("search", "u1") is None
    assert a.assign("for_you", None) is None
    assert not Assigner([]) and Assigner([]).assign("for_you", "u1") is None


def test_interleave_mode_gives_both_arms() -> None:
    e = Experiment("i", (Arm("a", "v1", 1), Arm("b", "v2", 1)), "search", "interleave", "running", 0.0, None, "44" * 16)
    got = Assigner([e]).assign("search", "u1")
    assert got is not None and got.arm is None and got.experiment is e
