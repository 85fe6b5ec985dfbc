"""``shopsense keys create|list|revoke``: API keys for the service (stored hashed)."""

from __future__ import annotations

import typer

from shopsense.cli.context import console, handle_errors, state
from shopsense.cli.main import app

keys_app = typer.Typer(help="API keys for the HTTP service (scopes: read, write, admin).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
@handle_errors
def create(
    ctx: typer.Context,
    scope: list[str] = typer.Option(..., "--scope", help="read, write or admin; repeat or comma-separate."),
    name: str | None = typer.Option(None, "--name", help="A label, e.g. the client using it."),
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from shopsense.service.keys import check_scopes, create_key

    scopes = check_scopes([s for item in scope for s in item.split(",")])
    key_id, key = create_key(state(ctx).store(), scopes, name)
    console.print(f"key id {key_id}, scopes {','.join(scopes)}; the key (shown once):", highlight=False)
    typer.echo(key)


@keys_app.command("list")
@handle_errors
def list_keys(ctx: typer.Context) -> None:
    """Key ids, scopes and names (never the keys)."""
    df = state(ctx).store(create=False).api_keys()
    if df.empty:
        console.print("no keys")
        return
    for r in df.to_dict("records"):
        flag = " (revoked)" if r["revoked"] else ""
        console.print(f"{r['key_id']}  {r['scopes']}  {r['name'] or ''}{flag}", highlight=False)


@keys_app.command("revoke")
@handle_errors
def revoke(ctx: typer.Context, key_id: str = typer.Argument(..., help="The key id shown by `keys list`.")) -> None:
    """Revoke a key (servers stop accepting it within seconds)."""
    if not state(ctx).store(create=False).revoke_api_key(key_id):
        raise ValueError(f"unknown key id {key_id!r}")
    console.print(f"revoked {key_id}")
