"""Kept for imports from before: pseudonyms now live in :mod:`shopsense.data.pseudonyms`, where file
ingest, the dataset loader, the CLI and the service all reach the same function."""

from shopsense.data.pseudonyms import Pseudonymizer

__all__ = ["Pseudonymizer"]
