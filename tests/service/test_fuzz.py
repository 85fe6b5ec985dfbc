"""Fuzz every operation of the OpenAPI spec (schemathesis): whatever the input, never a 500."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pandas as pd
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from shopsense.service.app import create_app
from shopsense.service.keys import create_key
from shopsense.store import open_store
from tests.service.conftest import PRODUCTS, fake_loader

ADMIN_KEY: dict[str, str] = {}


@pytest.fixture
def api_schema(tmp_path) -> Iterator[schemathesis.BaseSchema]:
    from shopsense.config import load_settings

    s = load_settings(home=tmp_path / "home")
    store = open_store(s.store_url)
    store.upsert_products(pd.DataFrame(PRODUCTS))
    store.register_version("v1", status="complete")
    store.activate_version("v1")
    ADMIN_KEY["key"] = create_key(store, ["admin"])[1]
    app = create_app(s, loader=fake_loader(store, s), train_command=[sys.executable, "-c", "pass"])
    app.state.shopsense.models.refresh()
    ADMIN_KEY["app"] = app  # type: ignore[assignment]
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    app.state.shopsense.impressions.stop()
    store.close()


def test_no_input_causes_a_500(api_schema: schemathesis.BaseSchema) -> None:
    # Driven by hand (not schemathesis' pytest plugin) so it runs on any pytest version.
    failures: list[str] = []
    ops = [r.ok() for r in api_schema.get_all_operations()]
    assert len(ops) >= 18

    for op in ops:

        @given(op.as_strategy())
        @settings(
            max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
        )
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(headers={"X-API-Key": ADMIN_KEY["key"]}, checks=[not_a_server_error])

        try:
            run()
        except Exception as e:  # collect every failing operation, then report them together
            failures.append(f"{op.method.upper()} {op.path}: {e}"[:2000])
    assert not failures, "\n\n".join(failures)
    # the fuzzer really reached the routes, with valid and invalid input alike
    counts = ADMIN_KEY["app"].state.shopsense.metrics._requests  # type: ignore[attr-defined]
    routes = {r for (_, r, status) in counts if status.startswith("2")}
    assert len(routes) >= 12, routes
    assert any(status == "422" for (_, _, status) in counts)
