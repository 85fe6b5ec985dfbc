"""Online experiments (admin scope): ``POST /experiments`` (start), ``GET /experiments``,
``GET /experiments/{name}/report``, ``POST /experiments/{name}/stop``. The same library calls as
``shopsense experiment``; this process applies a start or stop at once, other processes at their
next poll."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Path

from shopsense import experiments
from shopsense.exceptions import ExperimentError, UnknownExperimentError, UnknownVersionError, VersionError
from shopsense.service.deps import AdminKey, State
from shopsense.service.schemas import ExperimentIn, ExperimentInfo

router = APIRouter(tags=["experiments"])

NAME = Path(..., min_length=1, max_length=64, description="the experiment's name")


def _info(e: experiments.Experiment) -> ExperimentInfo:
    return ExperimentInfo(**e.as_dict())


@router.post("/experiments", response_model=ExperimentInfo, status_code=201, dependencies=[AdminKey])
def start(state: State, body: ExperimentIn) -> ExperimentInfo:
    """Start an experiment. 409 when a version is unknown or not complete, or a running experiment
    covers one of its surfaces; 422 when an input is invalid."""
    try:
        exp = experiments.start(
            state.store,
            state.models.home,
            body.name,
            body.arms,
            split=body.split,
            surface=body.surface,
            mode=body.mode,
        )
    except (UnknownVersionError, VersionError) as e:
        raise HTTPException(409, str(e)) from None
    except ExperimentError as e:
        status = 409 if "already runs" in str(e) or "exists already" in str(e) else 422
        raise HTTPException(status, str(e)) from None
    state.models.refresh()  # this process serves it at once
    return _info(exp)


@router.get("/experiments", response_model=list[ExperimentInfo], dependencies=[AdminKey])
def list_experiments(state: State) -> list[ExperimentInfo]:
    """Every experiment, oldest first."""
    return [_info(e) for e in experiments.list_experiments(state.store)]


@router.get("/experiments/{name}/report", dependencies=[AdminKey])
def report(state: State, name: str = NAME) -> dict[str, Any]:
    """Per arm: users, impressions, CTR, add-to-cart and conversion rates, revenue per 1,000
    impressions with 95% intervals (``arms.<name>``); each treatment against the control and the
    sample-ratio check (``comparison``); see docs/experiments.md."""
    from shopsense.evaluation.experiments import experiment_report

    try:
        return experiment_report(state.store, name)
    except UnknownExperimentError as e:
        raise HTTPException(404, str(e)) from None


@router.post("/experiments/{name}/stop", response_model=ExperimentInfo, dependencies=[AdminKey])
def stop(state: State, name: str = NAME) -> ExperimentInfo:
    """Stop a running experiment: its users get the default version again. 404 when unknown, 409
    when stopped already."""
    try:
        exp = experiments.stop(state.store, name)
    except UnknownExperimentError as e:
        raise HTTPException(404, str(e)) from None
    except ExperimentError as e:
        raise HTTPException(409, str(e)) from None
    state.models.refresh()
    return _info(exp)
