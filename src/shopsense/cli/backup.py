"""``shopsense backup DIR`` and ``shopsense restore DIR``: the knowledge base with its model versions."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from shopsense.cli.context import console, err_console, handle_errors, state
from shopsense.cli.main import app


@app.command("backup")
@handle_errors
def backup_cmd(
    ctx: typer.Context,
    folder: Path = typer.Argument(..., help="A new or empty folder to write the backup into."),
    as_json: bool = typer.Option(False, "--json", help="Print the backup's manifest as one JSON object."),
) -> None:
    """Back up the knowledge base (SQLite: online, safe while the server runs and writes), every
    complete model version, the search index and a manifest. On PostgreSQL: the model versions, and
    how to dump the database with pg_dump."""
    from shopsense.backup import backup

    st = state(ctx)
    m = backup(st.store(create=False), st.settings.home, folder)
    if m["guidance"]:
        err_console.print(m["guidance"], highlight=False, soft_wrap=True)
    if as_json:
        typer.echo(json.dumps(m))
        return
    what = "the database, " if m["database"] else ""
    console.print(f"backed up {what}{len(m['versions'])} model version(s) into {folder}", highlight=False)
    if m["missing_versions"]:
        console.print(f"  without files (skipped): {', '.join(m['missing_versions'])}", highlight=False)


@app.command("restore")
@handle_errors
def restore_cmd(
    ctx: typer.Context,
    folder: Path = typer.Argument(..., help="A folder written by `shopsense backup`."),
    force: bool = typer.Option(
        False, "--force", help="Replace the knowledge base and model versions of a home that is not empty."
    ),
) -> None:
    """Restore a backup into the home (and its store). Stop the server and trainings of that home first."""
    from shopsense.backup import restore

    st = state(ctx)
    m = restore(folder, st.settings.store_url, st.settings.home, force=force)
    if m["guidance"]:
        err_console.print(m["guidance"], highlight=False, soft_wrap=True)
    what = "the database and " if m["database"] else ""
    active = f"; active version {m['active_version']}" if m["active_version"] else ""
    console.print(
        f"restored {what}{len(m['versions'])} model version(s) into {st.settings.home}{active}", highlight=False
    )
