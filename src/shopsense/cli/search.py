"""``shopsense search "query"``, ``shopsense search-index`` and ``shopsense autocomplete``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from shopsense.cli.context import console, handle_errors, state
from shopsense.cli.main import app


@app.command("search")
@handle_errors
def search_cmd(
    ctx: typer.Context,
    query: str = typer.Argument(..., help="What to look for."),
    user: str | None = typer.Option(None, "--user", "-u", help="Personalise for this user id."),
    filters: list[str] | None = typer.Option(
        None, "--filter", "-f", help="key=value: category, brand, min_price, max_price, available (repeatable)."
    ),
    k: int = typer.Option(10, "-k", "--k", min=1, max=1000, help="How many products."),
    index: Path | None = typer.Option(None, "--index", help="Search engine folder (default <home>/search)."),
    no_log: bool = typer.Option(False, "--no-log", help="Do not write the search event to the knowledge base."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Search the catalog; the search is logged as the user's event (it shapes their recommendations)."""
    from shopsense.data.pseudonyms import Pseudonymizer
    from shopsense.search import load_or_build, search
    from shopsense.search.filters import parse_filter_args

    st = state(ctx)
    store = st.store(create=False)
    parsed = parse_filter_args(filters)
    settings, version = st.served(store)
    engine = load_or_build(store, settings, index, version=None if index else version)
    uid = Pseudonymizer.from_settings(st.settings).user(user) if user is not None else None  # as at ingest
    res = search(query, store=store, settings=settings, user_id=uid, filters=parsed, k=k, log=not no_log, engine=engine)
    if as_json:
        out = res.to_dict()
        out["products"] = res.products
        console.print_json(json.dumps(out, default=str))
        return
    from rich.table import Table

    if res.relaxed:
        shown = res.showing_results_for or query
        console.print(
            f"no product matches [bold]{query}[/bold]: showing results for [bold]{shown}[/bold], {res.relaxed}"
        )
    elif res.showing_results_for:
        console.print(f"showing results for [bold]{res.showing_results_for}[/bold] (searched: {query})")
    if res.did_you_mean and res.did_you_mean != res.showing_results_for:
        console.print(f"did you mean: [bold]{res.did_you_mean}[/bold]?")
    t = Table(title=f"{len(res.items)} of {res.total} matches   request_id {res.request_id}")
    for col in ("#", "item_id", "title", "score", "matched"):
        t.add_column(col)
    for i, (p, s, m) in enumerate(zip(res.products, res.scores, res.matched_fields, strict=True), 1):
        t.add_row(str(i), str(p["item_id"]), str(p.get("title") or ""), f"{s:.3f}", ", ".join(m))
    console.print(t)
    for name, counts in res.facets.items():
        console.print(f"[dim]{name}:[/dim] " + ", ".join(f"{v} ({n})" for v, n in list(counts.items())[:8]))


@app.command("search-index")
@handle_errors
def search_index_cmd(
    ctx: typer.Context,
    index: Path | None = typer.Option(None, "--index", help="Where to write it (default <home>/search)."),
    lexical_only: bool = typer.Option(False, "--lexical-only", help="No text encoder: BM25 and spelling only."),
    synonyms: Path | None = typer.Option(
        None,
        "--synonyms",
        help="Synonyms file: one comma-separated group per line (fridge, refrigerator); default: search.bm25.synonyms_path.",
    ),
) -> None:
    """(Re)build the search engine from the knowledge base: BM25, vectors, spelling, autocomplete, and a
    re-ranker trained from logged search clicks when there are enough."""
    from shopsense.search import build_from_store, default_index_path

    st = state(ctx)
    store = st.store(create=False)
    config = st.settings.search  # [search] in the settings file, SHOPSENSE_SEARCH__* in the environment
    if synonyms is not None:
        if not synonyms.exists():
            raise FileNotFoundError(f"synonyms file not found: {synonyms}")
        bm25 = config.bm25.model_copy(update={"synonyms_path": str(synonyms.resolve())})
        config = config.model_copy(update={"bm25": bm25})
    engine = build_from_store(store, st.settings, config=config, semantic=not lexical_only)
    path = engine.save(index or default_index_path(st.settings))
    trained = "with a re-ranker trained from clicks" if engine.reranker is not None else "untrained (default fusion)"
    console.print(f"indexed {engine.index.n_products:,} products into {path}, {trained}")


@app.command("autocomplete")
@handle_errors
def autocomplete_cmd(
    ctx: typer.Context,
    prefix: str = typer.Argument(..., help="What has been typed so far."),
    k: int = typer.Option(8, "-k", "--k", min=1, max=100),
    index: Path | None = typer.Option(None, "--index", help="Search engine folder (default <home>/search)."),
) -> None:
    """Suggestions for a typed prefix, from popular past queries and product titles."""
    from shopsense.search import load_or_build

    st = state(ctx)
    store = st.store(create=False)
    settings, version = st.served(store)
    engine = load_or_build(store, settings, index, version=None if index else version)
    for s in engine.autocomplete(prefix, k):
        console.print(s, highlight=False)
