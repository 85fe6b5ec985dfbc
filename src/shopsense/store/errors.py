"""Driver errors become store errors at the store's boundary, here and nowhere else.

Every public method of :class:`~shopsense.store.sql.KnowledgeStore` and of each of its role mixins
runs inside :func:`driver_errors` (applied by :func:`guarded` to each class), so a caller sees :class:`StoreBusyError` (locked, timed out: worth a
retry) or :class:`StoreError`, never a SQLAlchemy, sqlite3 or psycopg exception. The HTTP layer
answers both with 503 and ``Retry-After``; the CLI exits 2 with one line.
"""

from __future__ import annotations

import functools
import inspect
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from shopsense.exceptions import ShopsenseError, StoreBusyError, StoreError

T = TypeVar("T", bound=type)


def _driver_errors() -> tuple[type[BaseException], ...]:
    # SQLAlchemy's wrappers of driver errors and its pool's own (a pool timeout, a dropped connection);
    # its other errors are mistakes in our code, not the database's state, and stay tracebacks
    found: tuple[type[BaseException], ...] = (
        sa_exc.DBAPIError,
        sa_exc.TimeoutError,
        sa_exc.DisconnectionError,
        sqlite3.Error,
    )
    psycopg = sys.modules.get("psycopg")  # only loaded when a PostgreSQL store was opened
    if psycopg is not None:
        found += (psycopg.Error,)
    return found


def _is_busy(e: BaseException) -> bool:
    """Locked, timed out or cut off: the same call may well work in a moment."""
    orig = e.orig if isinstance(e, sa_exc.DBAPIError) and e.orig is not None else e
    if isinstance(e, sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return True
    if isinstance(orig, sqlite3.OperationalError):
        text = str(orig).lower()
        return "locked" in text or "busy" in text
    psycopg = sys.modules.get("psycopg")
    # PostgreSQL's OperationalError family: lock and statement timeouts, deadlocks, serialisation
    # failures, lost connections, a server starting or shutting down
    return psycopg is not None and isinstance(orig, psycopg.OperationalError)


def _safe(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a URL that never parsed: say nothing more than the scheme
        return url.split(":", 1)[0] + ":…"


def to_store_error(e: BaseException, url: str, timeout_s: float | None = None) -> StoreError:
    """``e`` (a driver error) as the store's own error, with one readable line about it."""
    orig = e.orig if isinstance(e, sa_exc.DBAPIError) and e.orig is not None else e
    reason = " ".join(str(orig).split()) or type(orig).__name__
    if _is_busy(e):
        waited = f" after waiting {timeout_s:g} s" if timeout_s else ""
        return StoreBusyError(
            f"knowledge store {_safe(url)} is busy ({reason}){waited}: another process is writing to it; "
            f"retry when it has finished, or raise store_timeout_s"
        )
    return StoreError(f"knowledge store {_safe(url)} failed: {reason}")


@contextmanager
def driver_errors(url: str, timeout_s: float | None = None) -> Iterator[None]:
    """Run the block; a driver error leaving it becomes a :class:`StoreError`."""
    try:
        yield
    except ShopsenseError:
        raise
    except _driver_errors() as e:
        raise to_store_error(e, url, timeout_s) from e


def guarded(cls: T) -> T:
    """Wrap every public method of ``cls`` (and ``__init__``) in :func:`driver_errors`, reading the
    URL and timeout from the instance's ``url`` and ``timeout_s``. Methods made by ``@contextmanager``
    stay context managers, guarded around the caller's block too (its commit included)."""
    for name, fn in list(vars(cls).items()):
        if (name.startswith("_") and name != "__init__") or not inspect.isfunction(fn):
            continue
        inner = getattr(fn, "__wrapped__", None)
        if inner is not None and inspect.isgeneratorfunction(inner):
            wrap = _guard_context
        elif inspect.isgeneratorfunction(fn):
            wrap = _guard_iter
        else:
            wrap = _guard_call
        setattr(cls, name, wrap(fn))
    return cls


def _where(obj: Any) -> tuple[str, float | None]:
    return str(getattr(obj, "url", "?")), getattr(obj, "timeout_s", None)


def _guard_call(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except ShopsenseError:
            raise
        except _driver_errors() as e:
            raise to_store_error(e, *_where(self)) from e

    call.__store_guarded__ = True  # type: ignore[attr-defined]
    return call


def _guard_iter(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A generator method: guarded while the caller iterates (where its statements run)."""

    @functools.wraps(fn)
    def gen(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        try:
            yield from fn(self, *args, **kwargs)
        except ShopsenseError:
            raise
        except _driver_errors() as e:
            raise to_store_error(e, *_where(self)) from e

    gen.__store_guarded__ = True  # type: ignore[attr-defined]
    return gen


def _guard_context(fn: Callable[..., Any]) -> Callable[..., Any]:
    @contextmanager
    def cm(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        with driver_errors(*_where(self)), fn(self, *args, **kwargs) as value:
            yield value

    out = functools.wraps(fn)(cm)
    out.__store_guarded__ = True  # type: ignore[attr-defined]
    return out


def is_guarded(fn: Any) -> bool:
    """Whether ``fn`` is a method :func:`guarded` wrapped (for tests that every public one is)."""
    return bool(getattr(fn, "__store_guarded__", False))
