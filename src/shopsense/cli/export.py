"""``shopsense export --format parquet DIR``: the catalog and events as a Parquet snapshot."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from shopsense.cli.context import console, fail, handle_errors, progress_bar, state
from shopsense.cli.main import app

FORMATS = ("parquet",)


@app.command()
@handle_errors
def export(
    ctx: typer.Context,
    folder: Path = typer.Argument(..., help="Folder to write (created; a snapshot there is replaced)."),
    fmt: str = typer.Option("parquet", "--format", help=f"Snapshot format: {', '.join(FORMATS)}."),
    batch_size: int = typer.Option(100_000, "--batch-size", min=1, help="Events read and written at a time."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
) -> None:
    """Write products and events (opted-out shoppers' left out) for batch engines such as Spark,
    streamed in batches: the event table is never in memory at once."""
    from shopsense.data.export import export_parquet

    if fmt not in FORMATS:
        raise fail(f"unknown format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    store = state(ctx).store(create=False)
    with progress_bar("export events", total=store.count_events()) as advance:
        report = export_parquet(store, folder, batch_size=batch_size, progress=advance)
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
        return
    console.print(
        f"exported {report.products:,} products and {report.events:,} events to {report.folder} "
        f"in {report.seconds:.1f}s",
        highlight=False,
    )
