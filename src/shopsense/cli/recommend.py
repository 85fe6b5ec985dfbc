"""``shopsense recommend USER_ID [-k 10] [--category C]``: the list with scores and explanations."""

from __future__ import annotations

import json

import typer

from shopsense.cli.context import console, fail, handle_errors, state
from shopsense.cli.main import app


@app.command()
@handle_errors
def recommend(
    ctx: typer.Context,
    user_id: str = typer.Argument(..., help="External user id (unknown users get popular and trending items)."),
    k: int = typer.Option(10, "-k", "--k", help="How many items."),
    category: str | None = typer.Option(None, "--category", help="Only items in this category (any path level)."),
    query: str | None = typer.Option(None, "--query", help="Context query (used for users without history)."),
    price_min: float | None = typer.Option(None, "--price-min"),
    price_max: float | None = typer.Option(None, "--price-max"),
    diversity: float | None = typer.Option(
        None, "--diversity", help="MMR weight in [0, 1] (default: the settings' online.diversity)."
    ),
    surface: str = typer.Option(
        "for_you",
        "--surface",
        help="Which page's list: for_you, continue_shopping, buy_again, similar, "
        "bought_together, complete_the_cart (see docs/recommendations.md).",
    ),
    item_id: str | None = typer.Option(
        None, "--item", help="The product of a product page (similar, bought_together)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
) -> None:
    """Recommend products for a user from the served model version and the user's latest events."""
    from shopsense.data.pseudonyms import Pseudonymizer
    from shopsense.ranking.rules import Filters
    from shopsense.recommend import Recommender, RecommendRequest
    from shopsense.recommend.surfaces import SURFACES

    if k < 1:
        raise fail(f"-k must be at least 1, got {k}")
    if diversity is not None and not 0 <= diversity <= 1:
        raise fail(f"--diversity must be in [0, 1], got {diversity}")
    if surface not in SURFACES:
        raise fail(f"unknown --surface {surface!r}; valid: {', '.join(SURFACES)}")
    if surface == "similar":
        from shopsense.cli.similar import similar as similar_command

        if not item_id:
            raise fail("--surface similar needs --item (the product of the page)")
        cats = [category] if category else None
        return similar_command(ctx, item_id, k, cats, None, False, price_min, price_max, as_json)
    st = state(ctx)
    rec = Recommender.from_store(st.store(create=False), st.settings)
    uid = Pseudonymizer.from_settings(st.settings).user(user_id)  # stored as at ingest
    filters = Filters(price_min=price_min, price_max=price_max)
    try:
        request = RecommendRequest(
            uid,
            k,
            filters=filters,
            category=category,
            query=query,
            diversity=diversity,
            surface=surface,  # type: ignore[arg-type]  # checked against SURFACES above
            item_id=item_id,
        )
    except ValueError as e:
        raise fail(str(e)) from None
    items = rec.recommend(request)
    if as_json:
        for r in items:
            typer.echo(json.dumps(r.as_dict(), ensure_ascii=False))
        return
    if not items:
        console.print("no recommendations (every candidate was filtered out)")
    for pos, r in enumerate(items, 1):
        console.print(f"{pos:>3}. [bold]{r.item_id}[/bold] {r.title[:60]}  [dim]{r.score:.3f}[/dim]", highlight=False)
        console.print(f"     {r.explanation}", highlight=False)
