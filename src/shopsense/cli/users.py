"""``shopsense users delete|export|opt-out|opt-in|link``: a shopper's rights from the command line,
and the merge of an anonymous shopper into the user they logged in as.

Ids follow the one id rule and are mapped to their pseudonyms (``privacy.pseudonym_secret``) exactly
as at ingest, so the raw id a shop knows finds what was stored under it.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from shopsense.cli.context import console, handle_errors, state
from shopsense.cli.main import app
from shopsense.data.ids import WHITESPACE, normalize_id
from shopsense.data.pseudonyms import Pseudonymizer
from shopsense.exceptions import SchemaError

users_app = typer.Typer(
    help="A shopper's data: delete, export, opt out of personalisation, link an anonymous id.", no_args_is_help=True
)
app.add_typer(users_app, name="users")

_ID = typer.Argument(None, help="The shopper's id as in their events (the raw id, also with pseudonyms on).")


def _ids_from_file(path: Path) -> list[str]:
    """One id a line (UTF-8); blank lines are skipped, each id gets the id rule."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read ids from {path}: {e}") from None
    ids = []
    for n, line in enumerate(lines, 1):
        if not line.strip(WHITESPACE):
            continue
        try:
            normalize_id(line, "user id")
        except SchemaError as e:
            raise SchemaError(f"{path}:{n}: {e}") from None
        ids.append(line)
    return ids


@users_app.command("delete")
@handle_errors
def delete(
    ctx: typer.Context,
    user_id: str | None = _ID,
    from_file: Path | None = typer.Option(None, "--from-file", help="A file of ids to delete, one a line."),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as one JSON object."),
) -> None:
    """Delete shoppers: events, impressions, profile and the vectors of queries only they searched.

    On SQLite the freed bytes are overwritten and the write-ahead log truncated; running servers drop
    what they hold in memory about the shopper at their next deletion or restart (docs/service.md)."""
    if (user_id is None) == (from_file is None):
        raise ValueError("give one user id or --from-file FILE")
    st = state(ctx)
    raws = [user_id] if user_id is not None else _ids_from_file(from_file)  # type: ignore[arg-type]
    stored = Pseudonymizer.from_settings(st.settings).users(raws)
    deletion = st.store(create=False).delete_users(stored, vacuum=st.settings.privacy.postgres_vacuum)
    if as_json:
        typer.echo(json.dumps({"users": len(set(stored)), "deleted": deletion.counts}))
        return
    counts = ", ".join(f"{k} {v:,}" for k, v in deletion.counts.items())
    console.print(f"deleted {len(set(stored)):,} shopper(s): {counts}", highlight=False)


@users_app.command("export")
@handle_errors
def export(
    ctx: typer.Context,
    user_id: str = typer.Argument(..., help="The shopper's id as in their events."),
    out: Path | None = typer.Option(None, "--out", help="Write the JSON to this file instead of stdout."),
) -> None:
    """Everything stored about a shopper as JSON: events, impressions, linked ids, opt-out state."""
    st = state(ctx)
    stored = Pseudonymizer.from_settings(st.settings).user(user_id)
    data = {"given_id": normalize_id(user_id, "user id"), **st.store(create=False).export_user(stored)}
    text = json.dumps(data, ensure_ascii=False, indent=1)
    if out is None:
        typer.echo(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n", encoding="utf-8")
    console.print(f"wrote {out}: {len(data['events']):,} events, {len(data['impressions']):,} impressions")


def _set_opt_out(ctx: typer.Context, user_id: str, opted_out: bool) -> None:
    st = state(ctx)
    st.store(create=False).set_opted_out(Pseudonymizer.from_settings(st.settings).user(user_id), opted_out)
    how = "opted out of personalisation" if opted_out else "personalised again"
    console.print(f"{normalize_id(user_id, 'user id')}: {how}", highlight=False)


@users_app.command("opt-out")
@handle_errors
def opt_out(ctx: typer.Context, user_id: str = typer.Argument(..., help="The shopper's id.")) -> None:
    """Stop personalising for a shopper: non-personal lists for them, and their events shape no one's
    lists (from the next request; trained models from the next training)."""
    _set_opt_out(ctx, user_id, True)


@users_app.command("opt-in")
@handle_errors
def opt_in(ctx: typer.Context, user_id: str = typer.Argument(..., help="The shopper's id.")) -> None:
    """Personalise for a shopper again."""
    _set_opt_out(ctx, user_id, False)


@users_app.command("link")
@handle_errors
def link(
    ctx: typer.Context,
    user_id: str = typer.Argument(..., help="The user the shopper logged in as."),
    anonymous_id: str = typer.Argument(..., help="The id they had before (the storefront's shopper cookie id)."),
    as_json: bool = typer.Option(False, "--json", help="Print what was moved as one JSON object."),
) -> None:
    """Merge an anonymous shopper's events and impressions into a user, so the user's next lists read
    them; export and deletion of the user then cover the anonymous id. Linking again moves only what
    the anonymous id did since. Exit 2 when both ids are one."""
    given, anon = normalize_id(user_id, "user id"), normalize_id(anonymous_id, "anonymous id")
    if given == anon:
        raise ValueError("cannot link a shopper to itself: give the id the shopper used before logging in")
    st = state(ctx)
    pseudonyms = Pseudonymizer.from_settings(st.settings)
    done = st.store(create=False).link_user(pseudonyms.user(given), pseudonyms.user(anon))
    if as_json:
        out = {"user_id": given, "anonymous_id": anon, "events_moved": done.events}
        out |= {"impressions_moved": done.impressions, "already_linked": not done.new, "opted_out": done.opted_out}
        typer.echo(json.dumps(out, ensure_ascii=False))
        return
    again = " (linked before: moved what came since)" if not done.new else ""
    console.print(
        f"linked {anon} into {given}{again}: {done.events:,} events, {done.impressions:,} impressions moved",
        highlight=False,
    )
