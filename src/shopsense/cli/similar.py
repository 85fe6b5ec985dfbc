"""``shopsense similar ITEM_ID``: products like this one, with a reason for each."""

from __future__ import annotations

import json
import sys

import typer

from shopsense.cli.context import console, err_console, handle_errors, state
from shopsense.cli.main import app


@app.command()
@handle_errors
def similar(
    ctx: typer.Context,
    item_id: str = typer.Argument(..., help="The product to find alternatives for."),
    k: int = typer.Option(10, "-k", "--k", min=1, max=1000, help="How many products."),
    category: list[str] | None = typer.Option(None, "--category", help="Only this category (or below it); repeatable."),
    brand: list[str] | None = typer.Option(None, "--brand", help="Only this brand; repeatable."),
    in_stock: bool = typer.Option(False, "--in-stock", help="Only available products."),
    min_price: float | None = typer.Option(None, "--min-price"),
    max_price: float | None = typer.Option(None, "--max-price"),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Products most like ITEM_ID (content vectors, same brand, same category), best first.

    The first call encodes the catalog (only products missing from the embedding cache) and saves the
    index under HOME/index/catalog; later calls reuse it until the catalog changes.
    """
    from shopsense.features.text import TextEncoder
    from shopsense.similar import catalog_index
    from shopsense.similar import similar as find_similar

    st = state(ctx)
    store = st.store(create=False)
    settings, folder = st.served(store)
    encoder = TextEncoder(settings.encoder)  # the served version's own, if it tuned one
    if sys.stderr.isatty():
        err_console.print("[dim]loading the catalog index...[/dim]")
    # the served version's product vectors (its pictures fused in, when it fused them)
    catalog = catalog_index(store, settings, encoder, folder, progress=sys.stderr.isatty())
    filters = {
        "category": category or None,
        "brand": brand or None,
        "available": True if in_stock else None,
        "min_price": min_price,
        "max_price": max_price,
    }
    results = find_similar(item_id, k, filters, catalog=catalog)
    if as_json:
        for r in results:
            typer.echo(json.dumps(r.to_dict(), ensure_ascii=False))
        return
    if not results:
        console.print("no similar products match these filters")
        return
    from rich.table import Table

    t = Table(title=f"similar to {item_id}: {catalog.products['title'].iat[catalog.row(item_id)]}")
    t.add_column("#", justify="right")
    t.add_column("item_id")
    t.add_column("title")
    t.add_column("score", justify="right")
    t.add_column("reason")
    for n, r in enumerate(results, 1):
        t.add_row(str(n), r.item_id, r.title or "", f"{r.score:.3f}", r.reason)
    console.print(t)
