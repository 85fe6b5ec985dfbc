"""``shopsense``: the command-line interface. Each command group lives in its own module."""

from __future__ import annotations

from pathlib import Path

import typer

from shopsense.cli.context import CliState, fail
from shopsense.config import load_settings, settings_from_env
from shopsense.exceptions import ConfigError
from shopsense.process import set_process_defaults

app = typer.Typer(
    name="shopsense",
    help="E-commerce search and recommendation engine on one shared knowledge base.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    store: str | None = typer.Option(
        None, "--store", envvar="SHOPSENSE_STORE", help="Knowledge base URL (sqlite:///… or postgresql://…)."
    ),
    home: Path | None = typer.Option(
        None, "--home", envvar="SHOPSENSE_HOME", help="Folder for the embedded store and model versions."
    ),
    config: Path | None = typer.Option(None, "--config", envvar="SHOPSENSE_CONFIG", help="TOML settings file."),
) -> None:
    set_process_defaults()  # before any command loads torch or LightGBM (see shopsense.process)
    try:
        # a server's trainer gets the server's settings (its --config file included) handed over
        handed = settings_from_env() if config is None else None
        ctx.obj = CliState(handed or load_settings(config, store=store, home=home))
    except ConfigError as e:
        raise fail(str(e)) from None


def _register() -> None:
    # Each module adds its commands to `app`; imported here so `--help` lists them all.
    from shopsense.cli import (  # noqa: F401  # noqa: F401  # noqa: F401
        admin,
        backup,
        datasets,
        evaluate,  # noqa: F401
        experiments,
        export,
        ingest,  # noqa: F401
        keys,
        recommend,
        search,  # noqa: F401
        serve,
        similar,  # noqa: F401
        train,
        users,
        versions,
    )


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    # Run as a script this module is `__main__`, but the command modules register on the imported
    # `shopsense.cli.main.app`: call that one so every command is there.
    from shopsense.cli.main import main as _main

    _main()
