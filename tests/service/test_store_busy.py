"""A store locked by another process: 503 with Retry-After and a clear message, never a 500."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from shopsense.config import load_settings
from tests.service.conftest import make_env


def test_a_held_write_lock_is_503_with_retry_after(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", store_timeout_s=0.1)
    for env in make_env(settings):
        holder = sqlite3.connect(make_url(settings.store_url).database, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            event = {"user_id": "u1", "item_id": "p1", "event_type": "view"}
            r = env.client.post("/events", json=event, headers=env.h("write"))
            assert r.status_code == 503, r.text
            assert r.headers["Retry-After"].isdigit()
            assert "busy" in r.json()["detail"] and "retry" in r.json()["detail"]
            assert str(tmp_path) not in r.text  # the store's path is logged, not answered
            assert env.client.get("/recommend?user_id=u1", headers=env.h("read")).status_code == 200  # reads go on
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        r = env.client.post("/events", json=event, headers=env.h("write"))
        assert r.status_code == 200 and r.json()["stored"] == 1
