"""Starting, stopping and listing experiments in the knowledge store: the one path for the CLI and
HTTP. Servers see a change at their next poll of the served versions."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from pathlib import Path

from shopsense.exceptions import ExperimentError, UnknownExperimentError, UnknownVersionError, VersionError
from shopsense.experiments.experiment import (
    AB,
    INTERLEAVE,
    MODES,
    Experiment,
    check_name,
    parse_arms,
    parse_split,
    surfaces_of,
)
from shopsense.store import KnowledgeStore
from shopsense.store.experiments import RUNNING
from shopsense.versions import MANIFEST, list_versions


def start(
    store: KnowledgeStore,
    home: Path,
    name: str,
    arms: Sequence[str] | dict[str, str],
    *,
    split: str | Sequence[float] | None = None,
    surface: str = "recommend",
    mode: str = AB,
) -> Experiment:
    """Start experiment ``name`` with ``arms`` (``["control=V1", "treatment=V2"]``, control first).

    Refused with the reason (ExperimentError, UnknownVersionError or VersionError) when an input is
    invalid, a version is unknown or not complete (or its files are gone), interleaving is asked of
    other than two arms, or a running experiment already covers one of the surfaces (a request is in
    at most one experiment)."""
    check_name(name)
    if mode not in MODES:
        raise ExperimentError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")
    pairs = parse_arms(arms)
    if mode == INTERLEAVE and len(pairs) != 2:
        raise ExperimentError(f"interleaving mixes exactly two arms' lists, got {len(pairs)}")
    weights = parse_split(split, len(pairs))
    lists = set(surfaces_of(surface))
    _check_versions(store, home, [v for _, v in pairs])
    for other in running(store):
        shared = lists.intersection(other.surfaces)
        if shared:
            raise ExperimentError(
                f"experiment {other.name!r} already runs on {', '.join(sorted(shared))}: stop it first "
                "(a request is in at most one experiment)"
            )
    record = {
        "name": name,
        "arms": [{"name": n, "version": v, "weight": w} for (n, v), w in zip(pairs, weights, strict=True)],
        "surface": surface,
        "mode": mode,
        "status": RUNNING,
        "started_at": time.time(),
        "stopped_at": None,
        "salt": secrets.token_hex(16),
    }
    store.add_experiment(record)
    return Experiment.from_record(record)


def _check_versions(store: KnowledgeStore, home: Path, wanted: list[str]) -> None:
    known = {v.version: v for v in list_versions(store, home)}
    for version in wanted:
        v = known.get(version)
        if v is None:
            raise UnknownVersionError(f"unknown model version {version!r} (see `shopsense versions list`)")
        if v.status != "complete":
            raise VersionError(
                f"model version {version!r} is {v.status}, not complete: only a complete version is served"
            )
        if v.folder is not None and not (v.folder / MANIFEST).exists():
            raise VersionError(f"model version {version!r} has no artifacts left on disk: train or restore it first")


def stop(store: KnowledgeStore, name: str) -> Experiment:
    """Stop a running experiment: its users get the default version again. Its impressions stay,
    so it can still be reported. UnknownExperimentError, or ExperimentError when already stopped."""
    exp = get(store, name)
    if not store.stop_experiment(name, time.time()):
        raise ExperimentError(f"experiment {name!r} is {exp.status} already")
    return get(store, name)


def get(store: KnowledgeStore, name: str) -> Experiment:
    """One experiment by name (UnknownExperimentError when there is none)."""
    for e in list_experiments(store):
        if e.name == name:
            return e
    raise UnknownExperimentError(f"no experiment named {name!r} (see `shopsense experiment list`)")


def list_experiments(store: KnowledgeStore) -> list[Experiment]:
    """Every experiment, oldest first."""
    return [Experiment.from_record(r) for r in store.experiment_records()]


def running(store: KnowledgeStore) -> list[Experiment]:
    """The running experiments, oldest first."""
    return [Experiment.from_record(r) for r in store.experiment_records(RUNNING)]
