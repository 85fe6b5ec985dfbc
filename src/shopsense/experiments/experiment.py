"""What an experiment is: named arms (each a model version and a share of users), the surfaces it
runs on, its mode, and the salt of its assignment hash. Validated here, once, for the CLI and HTTP."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from shopsense.exceptions import ExperimentError

AB = "ab"
INTERLEAVE = "interleave"
MODES = (AB, INTERLEAVE)

SEARCH = "search"
#: what ``--surface`` accepts besides one list's name
GROUP_NAMES = ("recommend", SEARCH, "both", "all")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@cache
def groups() -> dict[str, tuple[str, ...]]:
    """What each group name stands for. The lists an experiment can run on: every recommendation
    surface but ``similar`` (its list comes from the catalog index, not from a model version, so
    arms would answer the same), and search."""
    # imported here: importing recommend/ loads the recommender (seconds), which listing or
    # stopping experiments does not need
    from shopsense.recommend.surfaces import SURFACES

    lists = tuple(s for s in SURFACES if s != "similar")
    return {"recommend": lists, SEARCH: (SEARCH,), "both": (*lists, SEARCH), "all": (*lists, SEARCH)}


def surface_choices() -> tuple[str, ...]:
    """Every value ``--surface`` accepts: the groups, then each list's name."""
    return (*GROUP_NAMES, *groups()["recommend"])


def surfaces_of(surface: str) -> tuple[str, ...]:
    """The list names ``surface`` stands for (``recommend``: every recommendation list; ``both`` and
    ``all``: those and search). ExperimentError naming the valid choices otherwise."""
    found = groups()
    if surface in found:
        return found[surface]
    if surface in found["recommend"]:
        return (surface,)
    why = " (similar products come from the catalog, not a model version)" if surface == "similar" else ""
    raise ExperimentError(f"unknown surface {surface!r}{why}; valid: {', '.join(surface_choices())}")


@dataclass(frozen=True)
class Arm:
    """One arm: its name, the model version it serves and its weight in the split."""

    name: str
    version: str
    weight: float


@dataclass(frozen=True)
class Experiment:
    """One experiment's record. The first arm is the control (the report compares the others with it)."""

    name: str
    arms: tuple[Arm, ...]
    surface: str
    mode: str
    status: str  # running | stopped
    started_at: float
    stopped_at: float | None
    salt: str  # hex: the key of this experiment's assignment hash

    @property
    def surfaces(self) -> tuple[str, ...]:
        """The lists it runs on (see :func:`surfaces_of`)."""
        return surfaces_of(self.surface)

    @property
    def control(self) -> Arm:
        return self.arms[0]

    def arm(self, name: str) -> Arm:
        for a in self.arms:
            if a.name == name:
                return a
        raise ExperimentError(f"experiment {self.name!r} has no arm {name!r}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "arms": [{"name": a.name, "version": a.version, "weight": a.weight} for a in self.arms],
            "surface": self.surface,
            "mode": self.mode,
            "status": self.status,
            "started_at": self.started_at,
            "stopped_at": self.stopped_at,
        }

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> Experiment:
        """From a store record (:meth:`KnowledgeStore.experiment_records`)."""
        stopped = r.get("stopped_at")
        return cls(
            name=str(r["name"]),
            arms=tuple(Arm(str(a["name"]), str(a["version"]), float(a["weight"])) for a in r["arms"]),
            surface=str(r["surface"]),
            mode=str(r["mode"]),
            status=str(r["status"]),
            started_at=float(r["started_at"]),
            stopped_at=None if stopped is None else float(stopped),
            salt=str(r["salt"]),
        )


def check_name(name: str) -> str:
    """An experiment's name: 1-64 letters, digits, ``_``, ``.``, ``-`` (it appears in URLs and logs)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ExperimentError(
            f"experiment name {name!r} is not valid: 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    return name


def parse_arms(arms: Sequence[str] | dict[str, str]) -> list[tuple[str, str]]:
    """``["control=v1", "treatment=v2"]`` (or a mapping) as ``[(arm, version), ...]``, in order."""
    pairs: list[tuple[str, str]] = []
    if isinstance(arms, dict):
        pairs = [(str(k).strip(), str(v).strip()) for k, v in arms.items()]
    else:
        for raw in arms:
            name, sep, version = str(raw).partition("=")
            if not sep:
                raise ExperimentError(f"arm {raw!r} is not NAME=VERSION (e.g. control=20261201-120000)")
            pairs.append((name.strip(), version.strip()))
    for name, version in pairs:
        if not _NAME.match(name):
            raise ExperimentError(f"arm name {name!r} is not valid: 1-64 letters, digits, '_', '.' or '-'")
        if not version:
            raise ExperimentError(f"arm {name!r} names no version")
    names = [n for n, _ in pairs]
    if len(set(names)) != len(names):
        raise ExperimentError(f"arm names repeat: {', '.join(names)}")
    if len(pairs) < 2:
        raise ExperimentError("an experiment needs at least two arms (e.g. --arm control=V1 --arm treatment=V2)")
    return pairs


def parse_split(split: str | Sequence[float] | None, n_arms: int) -> list[float]:
    """Weights per arm from ``"50,50"`` (or numbers); equal when None. Each must be a positive
    finite number; they need not add up to 100 (they are shares of their sum)."""
    if split is None:
        return [1.0] * n_arms
    parts = split.split(",") if isinstance(split, str) else list(split)
    try:
        weights = [float(p) for p in parts]
    except (TypeError, ValueError):
        raise ExperimentError(f"split {split!r} is not a list of numbers (e.g. 50,50)") from None
    if len(weights) != n_arms:
        raise ExperimentError(f"split has {len(weights)} weights for {n_arms} arms")
    if not all(0 < w < float("inf") for w in weights):
        raise ExperimentError(f"split weights must be positive numbers, got {split!r}")
    return weights
