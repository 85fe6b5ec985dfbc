"""``shopsense serve``: the HTTP API, storefront and dashboard on one port."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from shopsense.cli.context import console, handle_errors, state
from shopsense.cli.main import app

if TYPE_CHECKING:
    from shopsense.config import Settings


@app.command()
@handle_errors
def serve(
    ctx: typer.Context,
    host: str | None = typer.Option(None, "--host", help="Interface to listen on (default 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", min=1, max=65535, help="Port (default 8000)."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="Server processes (they share the store)."),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level."),
) -> None:
    """Serve the API (docs at /docs), the storefront (/) and the dashboard (/dashboard)."""
    import uvicorn

    from shopsense.service.app import create_app, flush_when_stopping

    settings = state(ctx).settings
    _refuse_an_outdated_store(settings)
    svc = settings.service
    h, p = host or svc.host, port or svc.port
    console.print(f"shopsense on http://{h}:{p}  (storefront /, dashboard /dashboard, API docs /docs)")
    if workers > 1:
        import os

        from shopsense.service.app import worker_environment
        from shopsense.service.workers import handing_supported, serve_workers

        # every worker runs with exactly these settings (the --config file included), one page key
        # and one shopper-cookie secret: a browser's connections may land on any of them
        os.environ.update(worker_environment(settings))
        if handing_supported():  # each connection goes to the worker with the fewest open ones
            serve_workers(h, p, workers, log_level)
        else:
            uvicorn.run(
                "shopsense.service.app:app_from_env", factory=True, host=h, port=p, workers=workers, log_level=log_level
            )
    else:
        from shopsense.process import serving_threads

        serving_threads()
        web = create_app(settings)
        server = uvicorn.Server(uvicorn.Config(web, host=h, port=p, log_level=log_level, access_log=False))
        flush_when_stopping(server, web)
        server.run()


def _refuse_an_outdated_store(settings: Settings) -> None:
    """Stop here, with one line, on a store older or newer than this release (before any worker starts)."""
    from shopsense.store import open_store

    open_store(settings.store_url, timeout_s=settings.store_timeout_s, migrate=False).close()
