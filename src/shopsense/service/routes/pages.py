"""The storefront (``/``) and dashboard (``/dashboard``): static HTML + vanilla JS, no build step.

How the pages authenticate: when ``service.pages`` is on (the default), the app creates one
*page key* with read + write scopes at start-up. It lives only in the process's memory (never in the
store) and is written into the pages' ``<meta name="shopsense-key">``, like the publishable key of a
payment or analytics script: a browser can search, get recommendations and post its own events, but
never change the catalog, train, delete or manage keys (admin). Turn pages off
(``SHOPSENSE_SERVICE__PAGES=false``) for an API-only deployment.
"""

from __future__ import annotations

import html
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

from shopsense import columns as C
from shopsense.service.deps import ReadKey, State
from shopsense.service.routes.models import _models

router = APIRouter(tags=["pages"])

STATIC = Path(__file__).resolve().parent.parent / "static"
_ASSETS = {"app.js", "storefront.js", "dashboard.js", "style.css"}


@lru_cache(maxsize=8)
def _template(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def _page(state: State, name: str) -> HTMLResponse:
    if not state.settings.service.pages or state.page_key is None:
        raise HTTPException(404, "pages are turned off (service.pages = false)")
    body = _template(name).replace("{{SHOPSENSE_KEY}}", html.escape(state.page_key, quote=True))
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def storefront(state: State) -> HTMLResponse:
    return _page(state, "storefront.html")


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
def dashboard(state: State) -> HTMLResponse:
    return _page(state, "dashboard.html")


@router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> FileResponse:
    if name not in _ASSETS:
        raise HTTPException(404, "not found")
    media = "text/css" if name.endswith(".css") else "application/javascript"
    return FileResponse(STATIC / name, media_type=media)


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


def latest_offline_report(home: Path) -> dict[str, Any] | None:
    """The latest offline evaluation: the benchmark runner's ``reports/results.json`` (under ``<home>``
    or the working folder) as charts, else the newest other JSON report there as it is."""
    folders = [f for f in (home / "reports", Path("reports")) if f.is_dir()]
    files = [p for f in folders for p in f.rglob("*.json")]
    for p in sorted(files, key=lambda p: (p.name == "results.json", p.stat().st_mtime), reverse=True):
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        charts = offline_charts(data) if isinstance(data, dict) else []
        if charts:
            return {"file": str(p), "charts": charts}
        return {"file": str(p), "report": data}
    return None


def online_metrics(state: State) -> dict[str, list[dict[str, Any]]]:
    """CTR and conversion per model version and surface, and per candidate source: impressions joined
    to the events that quote their request_id (:mod:`shopsense.evaluation.online`)."""
    from shopsense.evaluation.online import online_report

    state.impressions.flush()
    return online_report(state.store, by=((C.MODEL_VERSION, C.SURFACE), (C.SOURCE,)))


@router.get("/dashboard/data", dependencies=[ReadKey])
def dashboard_data(state: State) -> dict[str, Any]:
    """Everything the dashboard shows: counts, versions, the latest offline evaluation, online metrics."""
    return {
        "stats": state.store.stats(),
        "models": _models(state).model_dump(),
        "offline": latest_offline_report(state.settings.home),
        "online": online_metrics(state),
    }
