"""Fixtures of the product-understanding tests: one MiniLM load per test session."""

from __future__ import annotations

import pytest

from shopsense.features.text import TextEncoder


@pytest.fixture(scope="session")
def minilm() -> TextEncoder:
    enc = TextEncoder()
    enc.encode(["warm up"])  # load once; every test below shares the process-wide model
    return enc
