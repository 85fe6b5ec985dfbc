"""No answer of the server names a filesystem path (they tell where the shop keeps its data)."""

from __future__ import annotations

from pathlib import Path

from shopsense.service.redact import without_paths
from tests.service.conftest import Env


def test_absolute_paths_are_replaced_and_routes_and_ids_are_not() -> None:
    msg = "no search index: [Errno 2] No such file or directory: '/srv/shop/models/v1/search/params.json'"
    assert without_paths(msg) == "no search index: [Errno 2] No such file or directory: '<path>'"
    assert without_paths(r"cannot read C:\shop\data\x.json") == "cannot read <path>"
    for kept in ("run `shopsense train` (or POST /train)", "unknown item 'a/b/c'", "see /models/{v}/activate"):
        assert without_paths(kept) == kept


def test_models_and_errors_name_no_paths(env: Env, tmp_path: Path) -> None:
    broken = tmp_path / "models" / "v3"
    broken.mkdir(parents=True)
    (broken / "BROKEN").write_text("")
    env.store.register_version("v3", status="complete", path=str(broken))
    r = env.client.post("/models/v3/activate", headers=env.h("admin"))  # it cannot load: 409 with the reason
    assert r.status_code == 409 and "broken artifact: <path>" in r.json()["detail"]
    m = env.client.get("/models", headers=env.h("read"))
    assert m.json()["failed_to_load"]["v3"] == "ValueError: broken artifact: <path>"
    assert all("path" not in v for v in m.json()["versions"])
    for text in (r.text, m.text):
        assert str(tmp_path) not in text and str(env.settings.home) not in text
