"""Which arm a user is in: sticky, independent across experiments, by the split's weights.

A user's bucket is HMAC-SHA256 keyed by the experiment's own random salt over the user id, read as a
number in [0, 1). The same user always lands in the same bucket of an experiment (sticky, in every
process, with no table of assignments), and two experiments' salts differ, so a user's arm in one
says nothing about their arm in another (independent). A keyed hash, not a plain one: nobody who
knows the user ids but not the salt can pick or predict arms.

The request path asks :meth:`Assigner.assign`: a dict lookup of the surface and, in A/B mode, one
HMAC; the :class:`Assigner` is rebuilt off the request path when the running experiments change
(the service polls them with the served versions).
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from shopsense.experiments.experiment import INTERLEAVE, Arm, Experiment

_SCALE = 1 << 64  # buckets are the hash's first 8 bytes


def bucket(salt: str, user_id: str) -> float:
    """The user's position in [0, 1) for the experiment keyed by ``salt`` (hex)."""
    return _bucket_int(hmac.new(bytes.fromhex(salt), digestmod=hashlib.sha256), user_id) / _SCALE


def _bucket_int(keyed: hmac.HMAC, user_id: str) -> int:
    h = keyed.copy()
    h.update(user_id.encode("utf-8"))
    return int.from_bytes(h.digest()[:8], "big")


@dataclass(frozen=True)
class Assignment:
    """A request's experiment and arm (``arm`` is None in interleave mode: both arms answer)."""

    experiment: Experiment
    arm: Arm | None


class _Running:
    """One running experiment, ready for the request path: the keyed hash and the split's bounds."""

    def __init__(self, experiment: Experiment) -> None:
        self.experiment = experiment
        self.interleave = experiment.mode == INTERLEAVE
        self.keyed = hmac.new(bytes.fromhex(experiment.salt), digestmod=hashlib.sha256)
        total = sum(a.weight for a in experiment.arms)
        bounds, acc = [], 0.0
        for a in experiment.arms[:-1]:
            acc += a.weight
            bounds.append(int(acc / total * _SCALE))
        self.bounds = bounds  # arm i takes buckets below bounds[i] (and at or above bounds[i-1])
        self.assignments = [Assignment(experiment, a) for a in experiment.arms]
        self.both = Assignment(experiment, None)

    def assign(self, user_id: str) -> Assignment:
        if self.interleave:
            return self.both
        return self.assignments[bisect.bisect_right(self.bounds, _bucket_int(self.keyed, user_id))]


class Assigner:
    """The running experiments by surface, for the request path."""

    def __init__(self, experiments: Iterable[Experiment] = ()) -> None:
        self.experiments = tuple(experiments)
        self._by_surface: dict[str, _Running] = {}
        for e in self.experiments:
            running = _Running(e)
            for s in e.surfaces:
                self._by_surface.setdefault(s, running)  # start() refuses overlaps; first wins regardless

    def assign(self, surface: str, user_id: str | None) -> Assignment | None:
        """The experiment and arm of a request for ``user_id`` on list ``surface`` (``for_you``,
        ``search``, ...), or None when no experiment runs there. A request without a user is in no
        experiment: stickiness needs an id."""
        if user_id is None:
            return None
        running = self._by_surface.get(surface)
        return None if running is None else running.assign(user_id)

    def versions(self) -> set[str]:
        """The model versions the running experiments' arms serve."""
        return {a.version for e in self.experiments for a in e.arms}

    def __bool__(self) -> bool:
        return bool(self._by_surface)
