"""Online experiments: several model versions served at once, each user sticky to one arm (A/B), or
two versions' lists interleaved in one response (team-draft).

- :mod:`~shopsense.experiments.experiment`: what an experiment is (arms, split, surfaces, mode), validated;
- :mod:`~shopsense.experiments.assign`: which arm a user is in (a keyed hash), the request path's lookup;
- :mod:`~shopsense.experiments.lifecycle`: start, stop and list experiments in the knowledge store;
- :mod:`~shopsense.experiments.interleave`: team-draft interleaving and crediting clicks to teams.

The report (per-arm metrics with intervals, tests) is measurement: :mod:`shopsense.evaluation.experiments`.
"""

from shopsense.experiments.assign import Assigner, Assignment, bucket
from shopsense.experiments.experiment import MODES, Arm, Experiment, surface_choices, surfaces_of
from shopsense.experiments.interleave import TeamDraft, credit, team_draft
from shopsense.experiments.lifecycle import get, list_experiments, running, start, stop

__all__ = [
    "MODES",
    "Arm",
    "Assigner",
    "Assignment",
    "Experiment",
    "TeamDraft",
    "bucket",
    "credit",
    "get",
    "list_experiments",
    "running",
    "start",
    "stop",
    "surface_choices",
    "surfaces_of",
    "team_draft",
]
