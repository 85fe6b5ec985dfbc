"""Model versions: ``GET /models``, ``POST /models/{version}/activate`` (roll back/forward),
``POST /models/rollback`` (to the version active before), ``POST /train``."""

from __future__ import annotations

from fastapi import APIRouter, Body, HTTPException, Path

from shopsense import versions
from shopsense.exceptions import UnknownVersionError, VersionError
from shopsense.service.deps import AdminKey, ReadKey, State
from shopsense.service.redact import without_paths
from shopsense.service.schemas import JobInfo, ModelsResponse, TrainRequest, VersionInfo

router = APIRouter(tags=["models"])


def models_response(state: State) -> ModelsResponse:
    """Every model version with its status, the active one and the one this process serves."""
    out = [
        VersionInfo(
            version=v.version,
            status=v.status,
            created_at=v.created_at,
            active=v.active,
            served=v.version == state.models.version,
            metrics=v.metrics,
        )
        for v in versions.list_versions(state.store, state.models.home)
    ]
    failed = {v: without_paths(why) for v, why in state.models.failed.items()}  # the log has the full text
    return ModelsResponse(served_version=state.models.version, versions=out, failed_to_load=failed)


def _serve_now(state: State, version: str) -> ModelsResponse:
    """Load ``version`` (just made active) at once instead of at the next poll."""
    state.models.refresh()
    if state.models.version != version:
        why = state.models.failed.get(version, "it did not load")
        raise HTTPException(409, f"version {version!r} is active in the store but this server cannot load it: {why}")
    return models_response(state)


@router.get("/models", response_model=ModelsResponse, dependencies=[ReadKey])
def list_models(state: State) -> ModelsResponse:
    """Every model version (training, complete, failed), which is active and which this process serves."""
    return models_response(state)


@router.post("/models/rollback", response_model=ModelsResponse, dependencies=[AdminKey])
def rollback(state: State) -> ModelsResponse:
    """Serve the version that was active before the current one (``shopsense versions rollback``);
    409 when there is none."""
    try:
        version = versions.rollback(state.store)
    except VersionError as e:
        raise HTTPException(409, str(e)) from None
    return _serve_now(state, version)


@router.post("/models/{version}/activate", response_model=ModelsResponse, dependencies=[AdminKey])
def activate(state: State, version: str = Path(..., min_length=1, max_length=200)) -> ModelsResponse:
    """Serve ``version`` (a complete one): roll back to an older version or forward to a newer one."""
    try:
        versions.activate(state.store, version)
    except UnknownVersionError as e:
        raise HTTPException(404, str(e)) from None
    except VersionError as e:
        raise HTTPException(409, str(e)) from None
    return _serve_now(state, version)


@router.post("/train", response_model=JobInfo, status_code=202, dependencies=[AdminKey])
def train(state: State, body: TrainRequest | None = Body(None)) -> JobInfo:
    """Start a training in a separate process. The new version is served when it completes;
    a failed or killed training leaves the served version untouched."""
    try:
        job = state.jobs.start(incremental=bool(body and body.incremental))
    except RuntimeError as e:
        raise HTTPException(409, str(e)) from None
    return JobInfo(**job.as_dict())


@router.get("/train", response_model=list[JobInfo], dependencies=[AdminKey])
def train_jobs(state: State) -> list[JobInfo]:
    """Training jobs started by this server, newest last."""
    return [JobInfo(**j.as_dict()) for j in state.jobs.jobs.values()]
