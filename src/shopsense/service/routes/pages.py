"""The storefront (``/``) and dashboard (``/dashboard``): static HTML + vanilla JS, no build step.

How the pages authenticate. The storefront: when ``service.pages`` is on (the default), the app
creates one *page key* at start-up (scope ``shopper``, :mod:`shopsense.service.keys`). It lives only
in the server's memory and is written into the storefront's ``<meta name="shopsense-key">``, like the
publishable key of a payment script, so anyone can read it. It therefore acts only for the shopper of
the browser session: the page load (or the first API call) sets a signed, http-only cookie with an
anonymous shopper id (:mod:`shopsense.service.shoppers`), and with the page key the server uses that
id, whatever user a request names. It reads lists and the catalog, posts its shopper's events, and
nothing else. The dashboard embeds no key: the operator enters an API key with the read scope
(kept in the tab's sessionStorage), and ``/dashboard/data`` refuses the page key. Turn pages off
(``SHOPSENSE_SERVICE__PAGES=false``) for an API-only deployment.
"""

from __future__ import annotations

import html
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

from shopsense import columns as C
from shopsense.exceptions import UnknownExperimentError
from shopsense.service.deps import ReadKey, State
from shopsense.service.routes.experiments import NAME
from shopsense.service.routes.models import models_response
from shopsense.service.shoppers import new_shopper_id

router = APIRouter(tags=["pages"])

STATIC = Path(__file__).resolve().parent.parent / "static"
_ASSETS = {"app.js", "storefront.js", "dashboard.js", "experiments.js", "style.css"}


@lru_cache(maxsize=8)
def _template(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def _pages_on(state: State) -> None:
    if not state.settings.service.pages or state.page_key is None:
        raise HTTPException(404, "pages are turned off (service.pages = false)")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def storefront(request: Request, state: State) -> HTMLResponse:
    _pages_on(state)
    shopper = state.shoppers.read(request)
    first_visit = shopper is None
    shopper = shopper or new_shopper_id()
    body = (
        _template("storefront.html")
        .replace("{{SHOPSENSE_KEY}}", html.escape(state.page_key or "", quote=True))
        .replace("{{SHOPSENSE_SHOPPER}}", html.escape(shopper, quote=True))
    )
    response = HTMLResponse(body, headers={"Cache-Control": "no-store"})
    if first_visit:  # the browser's shopper from now on (the page shows the id; scripts cannot read the cookie)
        state.shoppers.set_cookie(request, response, shopper)
    return response


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
def dashboard(state: State) -> HTMLResponse:
    _pages_on(state)
    return HTMLResponse(_template("dashboard.html"), headers={"Cache-Control": "no-store"})


@router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> FileResponse:
    if name not in _ASSETS:
        raise HTTPException(404, "not found")
    media = "text/css" if name.endswith(".css") else "application/javascript"
    return FileResponse(STATIC / name, media_type=media)


#: what ``/media/`` serves: pictures only (no SVG: it can carry scripts)
MEDIA_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}


@router.get("/media/{path:path}", include_in_schema=False)
def media(path: str, state: State) -> FileResponse:
    """A product picture from the media folder (``[images] media_dir``): what relative ``image_url``
    values name, shown by the storefront. Nothing outside that folder, and pictures only."""
    root = state.settings.media_dir.resolve()
    kind = MEDIA_TYPES.get(Path(path).suffix.lower())
    try:
        target = (root / path).resolve()
    except (OSError, ValueError):
        raise HTTPException(404, "not found") from None
    if kind is None or not target.is_relative_to(root) or not target.is_file():
        raise HTTPException(404, "not found")
    return FileResponse(target, media_type=kind, headers={"Cache-Control": "public, max-age=86400"})


#: metrics charted per section of the benchmark results (``reports/results.json``)
CHARTED = {
    "recommendation": ("ndcg@10", "hr@10", "coverage@10", "diversity@10"),
    "search": ("ndcg@10", "recall@100", "latency_p99_ms"),
}


def offline_charts(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Bar charts (one per section, dataset and metric; one bar per model) from the benchmark
    runner's results (``{"recommendation": {dataset: {"models": {name: {metric: value}}}}, ...}``)."""
    charts = []
    for section, metrics in CHARTED.items():
        for dataset, block in (results.get(section) or {}).items():
            models = (block or {}).get("models") or {}
            for m in metrics:
                bars = [
                    [name, float(r[m])]
                    for name, r in models.items()
                    if isinstance(r, dict) and isinstance(r.get(m), int | float) and math.isfinite(r[m])
                ]
                if bars:
                    charts.append({"section": section, "dataset": dataset, "metric": m, "bars": bars})
    return charts


#: the offline evaluation the dashboard shows: the benchmark runner's results
#: (``benchmarks/run.py --reports <home>/reports``), nothing else from any folder
RESULTS = Path("reports") / "results.json"
_MAX_RESULTS_BYTES = 50_000_000


def latest_offline_report(home: Path, store: Any = None) -> dict[str, Any] | None:
    """The latest offline evaluation of each kind (recommendation, search) as bar charts (names and
    numbers of the metrics in :data:`CHARTED` only), or None when there is none: per kind, the newer of
    the shop's own evaluation kept in the knowledge base (``shopsense evaluate recommend|search``
    without files) and ``<home>/reports/results.json`` (the benchmark runner's).

    Only that one file is read, and only its charted metrics leave the server: never another JSON
    placed in the folder, never the working directory's ``reports``, never the file's path."""
    found: list[tuple[float, str, Any]] = []
    for kind in ("recommend", "search"):
        kept = store.latest_evaluation(kind) if store is not None else None
        if kept is not None:
            found.append((kept["created_at"], f"evaluation {kept['evaluation_id']} of this shop", kept["result"]))
    p = home / RESULTS
    try:
        if p.is_file() and p.stat().st_size <= _MAX_RESULTS_BYTES:
            found.append((p.stat().st_mtime, RESULTS.name, json.loads(p.read_text(encoding="utf-8"))))
    except (OSError, ValueError):
        pass
    newest_first = [(at, name, offline_charts(data) if isinstance(data, dict) else []) for at, name, data in found]
    newest_first.sort(key=lambda f: -f[0])
    charts: list[dict[str, Any]] = []
    names: list[str] = []
    written_at = 0.0
    for section in CHARTED:  # each kind from the newest source that has it
        for at, name, its_charts in newest_first:
            mine = [c for c in its_charts if c["section"] == section]
            if mine:
                charts += mine
                names += [name] if name not in names else []
                written_at = max(written_at, at)
                break
    return {"name": ", ".join(names), "written_at": written_at, "charts": charts} if charts else None


def online_metrics(state: State) -> dict[str, list[dict[str, Any]]]:
    """CTR and conversion per model version and surface, and per candidate source: impressions joined
    to the events that quote their request_id (:mod:`shopsense.evaluation.online`)."""
    from shopsense.evaluation.online import online_report

    state.impressions.flush()
    return online_report(state.store, by=((C.MODEL_VERSION, C.SURFACE), (C.SOURCE,)))


def experiments_panel(state: State) -> list[dict[str, Any]]:
    """Every experiment, newest first: a running one with its report and the report over time
    (:func:`shopsense.evaluation.experiments.experiment_report`), a stopped one as its record only
    (the page asks ``/dashboard/experiments/{name}`` when it is opened: its numbers no longer
    change, and computing every old report on each refresh would grow without bound)."""
    from shopsense.evaluation.experiments import experiment_report
    from shopsense.experiments import list_experiments
    from shopsense.store.experiments import RUNNING

    out: list[dict[str, Any]] = []
    for exp in reversed(list_experiments(state.store)):
        if exp.status == RUNNING:
            out.append(experiment_report(state.store, exp.name, over_time=True))
        else:
            out.append({"experiment": exp.as_dict()})
    return out


@router.get("/dashboard/data", dependencies=[ReadKey])
def dashboard_data(state: State) -> dict[str, Any]:
    """Everything the dashboard shows: counts, versions, the latest offline evaluation, online
    metrics, and the experiments."""
    return {
        "stats": state.store.stats(),
        "models": models_response(state).model_dump(),
        "offline": latest_offline_report(state.settings.home, state.store),
        "online": online_metrics(state),  # flushes the logged impressions first
        "experiments": experiments_panel(state),
        "search": search_counts(state),
    }


def search_counts(state: Any) -> dict[str, Any]:
    """Searches this server process answered that found nothing as typed, and those that found
    nothing even relaxed (:mod:`shopsense.search.relax`); Prometheus' ``/metrics`` has the same
    counters per process, to sum across workers."""
    from shopsense.service.routes.search import NO_MATCH, ZERO_RESULTS

    return {
        "searches": state.metrics.answered("/search"),
        "no_match": int(state.metrics.counter(NO_MATCH)),
        "zero_results": int(state.metrics.counter(ZERO_RESULTS)),
    }


@router.get("/dashboard/experiments/{name}", dependencies=[ReadKey])
def dashboard_experiment(state: State, name: str = NAME) -> dict[str, Any]:
    """One experiment's report and its report over time, for the dashboard (read scope; the
    admin-scope ``/experiments/{name}/report`` gives the same report)."""
    from shopsense.evaluation.experiments import experiment_report

    state.impressions.flush()
    try:
        return experiment_report(state.store, name, over_time=True)
    except UnknownExperimentError as e:
        raise HTTPException(404, str(e)) from None
