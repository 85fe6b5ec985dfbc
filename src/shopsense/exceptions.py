"""Error types. Each says what went wrong and, where it can, what to do."""

from __future__ import annotations

from dataclasses import dataclass


class ShopsenseError(Exception):
    """Base class of every error the library raises on purpose."""


class ConfigError(ShopsenseError, ValueError):
    """A setting is missing or has a bad value."""


class StoreError(ShopsenseError):
    """The knowledge store cannot be opened or used."""


class UnknownStoreError(StoreError, ValueError):
    """The store URL names a backend that does not exist."""


class StoreBusyError(StoreError):
    """The store is locked by another writer or did not answer in time: retry shortly."""


class InputFileError(ShopsenseError, ValueError):
    """An input file cannot be read at all: missing, a folder, no permission, corrupt or truncated."""


class LinkError(ShopsenseError, ValueError):
    """Two shopper ids cannot be linked: they are the same, or the user was merged into the other before."""


class BackupError(ShopsenseError):
    """A backup cannot be written, or a folder cannot be restored (not a backup, or the target is in use)."""


@dataclass(frozen=True)
class RowError:
    """One bad input row: where it is and why it was refused."""

    file: str
    line: int  # 1-based physical line (CSV/TSV/JSONL) or 1-based row number (Parquet)
    column: str | None
    reason: str
    raw: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        if self.column:
            where += f" column {self.column!r}"
        return f"{where}: {self.reason}"


class SchemaError(ShopsenseError, ValueError):
    """Input data does not fit the schema. Carries the row errors found (possibly truncated)."""

    def __init__(self, message: str, errors: list[RowError] | None = None) -> None:
        self.errors = list(errors or [])
        if self.errors:
            shown = "\n".join(f"  {e}" for e in self.errors[:20])
            more = f"\n  ... and {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
            message = f"{message}\n{shown}{more}"
        super().__init__(message)


class NotFittedError(ShopsenseError, RuntimeError):
    """A model or index is used before it was fitted or loaded."""


class UnknownItemError(ShopsenseError, KeyError):
    """An item id is not in the catalog (or not known to the model)."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else "unknown item"


class UnknownUserError(ShopsenseError, KeyError):
    """A user id is not known."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown user"


class NoModelError(ShopsenseError, RuntimeError):
    """No complete trained model version exists yet: run `shopsense train`."""


class IncompatibleFormatError(ShopsenseError):
    """Saved files (a model version, an engine) were written in a format this release cannot read:
    retrain them, or read them with the release that wrote them."""


class VersionError(ShopsenseError):
    """A model version cannot be used as asked: not complete, or no earlier version to roll back to."""


class UnknownVersionError(VersionError, KeyError):
    """No model version has this name."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown model version"


class DatasetNotFoundError(ShopsenseError, FileNotFoundError):
    """A public dataset is not in the data folder."""


class ExperimentError(ShopsenseError, ValueError):
    """An experiment cannot be started or stopped as asked (the message says why)."""


class UnknownExperimentError(ExperimentError, KeyError):
    """No experiment has that name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
