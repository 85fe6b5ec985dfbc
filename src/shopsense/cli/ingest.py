"""``shopsense ingest products|events|users FILE``: validated, streamed loading into the knowledge base."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from shopsense.cli.context import console, err_console, fail, handle_errors, progress_bar, state
from shopsense.cli.main import app
from shopsense.data.ingest import IngestReport, ingest
from shopsense.data.pseudonyms import Pseudonymizer
from shopsense.data.readers import FORMATS, parse_mapping, progress_total
from shopsense.exceptions import SchemaError

ingest_app = typer.Typer(help="Load products, events or users from CSV, TSV, Parquet or JSONL (optionally .gz).")
app.add_typer(ingest_app, name="ingest")

_MAP = typer.Option(None, "--map", help="Rename a source column: SOURCE=TARGET, e.g. product_id=item_id (repeatable).")
_ON_ERROR = typer.Option("fail", "--on-error", help="fail: store unchanged on any bad row; skip: keep good rows.")
_REJECTS = typer.Option(None, "--rejects", help="Where skipped rows go (.jsonl or .csv); default FILE.rejects.jsonl.")
_FORMAT = typer.Option(None, "--format", help=f"File format when the extension does not say: {', '.join(FORMATS)}.")
_JSON = typer.Option(False, "--json", help="Print the report as one JSON object.")


def _run(
    ctx: typer.Context,
    kind: str,
    path: Path,
    mapping: list[str] | None,
    on_error: str,
    rejects: Path | None,
    fmt: str | None,
    as_json: bool,
) -> None:
    st = state(ctx)
    store = st.store(create=True)
    try:
        with progress_bar(f"ingest {kind}", total=progress_total(path, fmt)) as advance:
            report = ingest(
                store,
                kind,
                path,
                mapping=parse_mapping(mapping),
                on_error=on_error,
                rejects_path=rejects,
                progress=advance,
                fmt=fmt,
                config=st.settings.ingest,
                pseudonyms=Pseudonymizer.from_settings(st.settings),
            )
    except SchemaError as e:
        # one line per bad row, as file:line column: reason
        raise fail(str(e)) from None
    _print(report, as_json)


def _print(report: IngestReport, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
    else:
        console.print(report.summary(), highlight=False, soft_wrap=True)
    if report.rejected:
        for e in report.errors[:10]:
            err_console.print(f"  skipped {e}", highlight=False, soft_wrap=True)
        if report.rejected > 10:
            err_console.print(f"  ... {report.rejected - 10:,} more in {report.rejects_path}", highlight=False)


@ingest_app.command("products")
@handle_errors
def products(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="Products file."),
    mapping: list[str] | None = _MAP,
    on_error: str = _ON_ERROR,
    rejects: Path | None = _REJECTS,
    fmt: str | None = _FORMAT,
    as_json: bool = _JSON,
) -> None:
    """Upsert products by item_id (unchanged products are left alone)."""
    _run(ctx, "products", path, mapping, on_error, rejects, fmt, as_json)


@ingest_app.command("events")
@handle_errors
def events(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="Events file."),
    mapping: list[str] | None = _MAP,
    on_error: str = _ON_ERROR,
    rejects: Path | None = _REJECTS,
    fmt: str | None = _FORMAT,
    as_json: bool = _JSON,
) -> None:
    """Append events; events already stored (same event_id, or user+item+type+timestamp) are skipped."""
    _run(ctx, "events", path, mapping, on_error, rejects, fmt, as_json)


@ingest_app.command("users")
@handle_errors
def users(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="Users file."),
    mapping: list[str] | None = _MAP,
    on_error: str = _ON_ERROR,
    rejects: Path | None = _REJECTS,
    fmt: str | None = _FORMAT,
    as_json: bool = _JSON,
) -> None:
    """Upsert users and their attributes."""
    _run(ctx, "users", path, mapping, on_error, rejects, fmt, as_json)
