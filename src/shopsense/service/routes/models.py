"""Model versions: ``GET /models``, ``POST /models/{version}/activate`` (roll back/forward), ``POST /train``."""

from __future__ import annotations

from fastapi import APIRouter, Body, HTTPException, Path

from shopsense.exceptions import StoreBusyError, StoreError
from shopsense.service.deps import AdminKey, ReadKey, State
from shopsense.service.redact import without_paths
from shopsense.service.schemas import JobInfo, ModelsResponse, TrainRequest, VersionInfo

router = APIRouter(tags=["models"])


def models_response(state: State) -> ModelsResponse:
    """Every model version with its status, the active one and the one this process serves."""
    df = state.store.versions()
    out = []
    for r in df.to_dict("records"):
        out.append(
            VersionInfo(
                version=str(r["version"]),
                status=str(r["status"]),
                created_at=float(r["created_at"]),
                active=bool(r["active"]),
                served=str(r["version"]) == state.models.version,
                metrics=r.get("metrics") or {},
            )
        )
    failed = {v: without_paths(why) for v, why in state.models.failed.items()}  # the log has the full text
    return ModelsResponse(served_version=state.models.version, versions=out, failed_to_load=failed)


@router.get("/models", response_model=ModelsResponse, dependencies=[ReadKey])
def list_models(state: State) -> ModelsResponse:
    """Every model version (training, complete, failed), which is active and which this process serves."""
    return models_response(state)


@router.post("/models/{version}/activate", response_model=ModelsResponse, dependencies=[AdminKey])
def activate(state: State, version: str = Path(..., min_length=1, max_length=200)) -> ModelsResponse:
    """Serve ``version`` (a complete one): roll back to an older version or forward to a newer one."""
    try:
        state.store.activate_version(version)
    except StoreBusyError:
        raise  # 503 with Retry-After, like every route
    except StoreError as e:
        code = 404 if "unknown" in str(e) else 409
        raise HTTPException(code, str(e)) from None
    state.models.refresh()
    if state.models.version != version:
        why = state.models.failed.get(version, "it did not load")
        raise HTTPException(409, f"version {version!r} is active in the store but this server cannot load it: {why}")
    return models_response(state)


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
