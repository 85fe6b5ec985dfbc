"""What every CLI command shares: settings, the store, and turning errors into exit codes."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from shopsense.config import Settings, load_settings
from shopsense.exceptions import SchemaError, ShopsenseError
from shopsense.store import KnowledgeStore, open_store

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

#: exit status for bad input or bad settings (usage errors are typer's own 2 as well)
EXIT_BAD_INPUT = 2


@dataclass
class CliState:
    """Options given before the command (``shopsense --store URL CMD``)."""

    settings: Settings
    _store: KnowledgeStore | None = field(default=None, repr=False)

    def store(self, *, create: bool = True) -> KnowledgeStore:
        if self._store is None:
            self._store = open_store(
                self.settings.store_url,
                create=create,
                timeout_s=self.settings.store_timeout_s,
                pool=self.settings.store_pool(),
            )
        return self._store

    def served(self, store: KnowledgeStore) -> tuple[Settings, Path | None]:
        """The settings the served version answers with (its own fine-tuned text encoder, if any)
        and its folder; the settings and None before any training."""
        from shopsense.exceptions import NoModelError
        from shopsense.versions import encoder_settings, served_folder

        try:
            folder = served_folder(store, self.settings.home)
        except NoModelError:
            return self.settings, None
        return encoder_settings(self.settings, folder), folder


def state(ctx: typer.Context) -> CliState:
    """The CliState of the running command (built by the root callback)."""
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState(load_settings())
    return root.obj


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print ``message`` on stderr and return the Exit to raise."""
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def handle_errors(fn: F) -> F:
    """Turn library errors into a message on stderr and exit code 2 (bad input, a busy or broken
    store). A file the library did not name itself (an ``OSError``) is named from the error."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SchemaError as e:
            raise fail(str(e)) from None  # one line per bad row, as file:line column: reason
        except (ShopsenseError, ValueError, OSError, EOFError) as e:
            raise fail(_one_line(e)) from None

    return wrapper  # type: ignore[return-value]


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    if isinstance(e, OSError) and e.filename and str(e.filename) not in text:
        text = f"{e.filename}: {text}"
    return text


@contextmanager
def progress_bar(description: str, total: float | None) -> Iterator[Callable[[float], None]]:
    """A rich progress bar on stderr; yields ``advance(n)``. Silent when stderr is not a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=not sys.stderr.isatty(),
    ) as p:
        task = p.add_task(description, total=total)
        yield lambda n: p.advance(task, n)
