"""``shopsense versions list|activate|rollback``: the model versions, and which one is served
(the CLI side of ``GET /models``, ``POST /models/{version}/activate`` and ``POST /models/rollback``)."""

from __future__ import annotations

import json
import time

import typer

from shopsense.cli.context import handle_errors, state
from shopsense.cli.main import app

versions_app = typer.Typer(help="Model versions: list them, choose the one to serve, roll back.", no_args_is_help=True)
app.add_typer(versions_app, name="versions")

#: metrics shown by `versions list` when a version has them
SHOWN_METRICS = ("heldout_ndcg@10_fusion", "n_items", "n_users")
AFTER = "running servers switch to it within seconds"


@versions_app.command("list")
@handle_errors
def list_versions(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print one JSON object per line.")
) -> None:
    """Every model version, oldest first: its status, when it was made, and which is served."""
    from shopsense import versions

    st = state(ctx)
    store = st.store(create=False)
    found = versions.list_versions(store, st.settings.home)
    served = {v.version for v in versions.served_versions(store, st.settings.home)}
    if as_json:
        for v in found:
            typer.echo(json.dumps({**v.as_dict(), "served": v.version in served}, default=str))
        return
    if not found:
        typer.echo("no model versions: run `shopsense train`")
        return
    for v in found:
        made = time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created_at))
        mark = "served" if v.version in served else ""
        shown = "  ".join(f"{k}={_short(v.metrics[k])}" for k in SHOWN_METRICS if k in v.metrics)
        failure = v.metrics.get("failure", "") if v.status == "failed" else ""
        typer.echo(f"{v.version}  {v.status:8}  {made}  {mark:6}  {shown or failure}".rstrip())  # one line each


@versions_app.command("activate")
@handle_errors
def activate(
    ctx: typer.Context, version: str = typer.Argument(..., help="A complete version (`versions list`).")
) -> None:
    """Serve VERSION: roll back to an older version or forward to a newer one."""
    from shopsense import versions

    versions.activate(state(ctx).store(create=False), version)
    typer.echo(f"version {version} is active; {AFTER}")


@versions_app.command("rollback")
@handle_errors
def rollback(ctx: typer.Context) -> None:
    """Serve the version that was active before the current one (a second rollback undoes the first)."""
    from shopsense import versions

    version = versions.rollback(state(ctx).store(create=False))
    typer.echo(f"rolled back: version {version} is active; {AFTER}")


def _short(x: object) -> str:
    return f"{x:.4f}" if isinstance(x, float) else str(x)
