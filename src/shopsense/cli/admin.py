"""``shopsense init``, ``shopsense migrate`` and ``shopsense stats``."""

from __future__ import annotations

import json

import typer

from shopsense.cli.context import console, handle_errors, state
from shopsense.cli.main import app


@app.command()
@handle_errors
def init(
    ctx: typer.Context,
    sample_pictures: bool = typer.Option(
        False,
        "--sample-pictures",
        help="Also write the sample shop's generated product pictures into the media folder.",
    ),
) -> None:
    """Create the knowledge base (tables included) if it does not exist yet."""
    st = state(ctx)
    store = st.store(create=True)
    console.print(f"knowledge base ready at {store.safe_url}")
    if sample_pictures:
        from shopsense.data.sample import sample_pictures as write

        n = write(st.settings.media_dir)
        console.print(f"{n} sample product pictures in {st.settings.media_dir}")


@app.command()
@handle_errors
def migrate(ctx: typer.Context) -> None:
    """Bring the knowledge base's tables up to this release's schema (servers refuse an older one).
    Safe while servers run and when already up to date."""
    store = state(ctx).store(create=False)  # opening migrates (and says from which version)
    before, after = store.migrate()
    if store.migrated_from is not None:
        before = store.migrated_from
    if before == after:
        console.print(f"schema version {after}: up to date ({store.safe_url})")
    else:
        console.print(f"schema version {before} -> {after} ({store.safe_url})")


@app.command()
@handle_errors
def stats(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Counts of products, users and events by type."""
    s = state(ctx).store(create=False).stats()
    if as_json:
        typer.echo(json.dumps(s))
        return
    from rich.table import Table

    t = Table(title="knowledge base", show_header=False)
    t.add_row("products", f"{s['products']:,}")
    t.add_row("users", f"{s['users']:,}")
    t.add_row("events", f"{s['events']:,}")
    for k, v in s["events_by_type"].items():
        t.add_row(f"  {k}", f"{v:,}")
    t.add_row("impressions", f"{s['impressions']:,}")
    console.print(t)
