"""Model versions: atomic hot swap, roll back, training in a separate process, failed and killed trainings."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

from tests.service.conftest import Env, make_env

# A stand-in trainer: registers version v2 as training, then either completes and activates it or
# hangs (to be killed). The real one is `shopsense train` (same contract: complete + activate at the end).
TRAINER = """
import os, sys, time, pathlib
from shopsense.store import open_store
s = open_store(os.environ["SHOPSENSE_STORE"])
home = pathlib.Path(os.environ["SHOPSENSE_HOME"]) / "models" / "v2"
home.mkdir(parents=True, exist_ok=True)
s.register_version("v2", status="training", path=str(home))
if sys.argv[1] == "hang":
    (home / "half-written.npy").write_bytes(b"x")
    time.sleep(120)
(home / "params.json").write_text("{}")
s.register_version("v2", status="complete", path=str(home))
s.activate_version("v2")
"""


def _wait(pred, timeout: float = 20.0) -> None:
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("timed out")
        time.sleep(0.05)


def _state(env: Env):
    return env.client.app.state.shopsense


def test_hot_swap_is_atomic_under_load(env: Env) -> None:
    c, hdr = env.client, env.h("read")
    assert c.get("/recommend?user_id=u1", headers=hdr).json()["model_version"] == "v1"
    seen: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            r = c.get("/recommend?user_id=u1&k=2", headers=hdr)
            seen.append((r.status_code, r.json().get("model_version")))

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    env.store.register_version("v2", status="complete")
    env.store.activate_version("v2")
    assert _state(env).models.refresh() is True
    time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join()
    assert all(code == 200 for code, _ in seen)
    assert {v for _, v in seen} <= {"v1", "v2"} and seen[-1][1] == "v2"
    assert c.get("/recommend?user_id=u1", headers=hdr).json()["model_version"] == "v2"
    # roll back through the API
    r = c.post("/models/v1/activate", headers=env.h("admin")).json()
    assert r["served_version"] == "v1"
    assert {v["version"]: v["served"] for v in r["versions"]} == {"v1": True, "v2": False}
    assert c.get("/recommend?user_id=u1", headers=hdr).json()["model_version"] == "v1"
    assert c.post("/models/nope/activate", headers=env.h("admin")).status_code == 404


def test_rollback_serves_the_version_active_before(env: Env) -> None:
    c, admin = env.client, env.h("admin")
    r = c.post("/models/rollback", headers=admin)
    assert r.status_code == 409 and r.json()["detail"] == (
        "no earlier model version to roll back to: no other version was served before this one"
    )
    env.store.register_version("v2", status="complete")
    assert c.post("/models/v2/activate", headers=admin).json()["served_version"] == "v2"
    r = c.post("/models/rollback", headers=admin)
    assert r.status_code == 200 and r.json()["served_version"] == "v1"
    assert {v["version"]: v["active"] for v in r.json()["versions"]} == {"v1": True, "v2": False}
    assert c.get("/recommend?user_id=u1", headers=env.h("read")).json()["model_version"] == "v1"
    assert c.post("/models/rollback", headers=admin).json()["served_version"] == "v2"  # undone


def test_rollback_to_a_version_that_does_not_load_keeps_serving(env: Env, tmp_path: Path) -> None:
    broken = tmp_path / "v0"
    broken.mkdir()
    (broken / "BROKEN").write_text("")
    env.store.register_version("v0", status="complete", path=str(broken))
    env.store.activate_version("v0")
    env.store.activate_version("v1")
    r = env.client.post("/models/rollback", headers=env.h("admin"))
    assert r.status_code == 409 and "cannot load it" in r.json()["detail"]
    assert _state(env).models.version == "v1"


def test_background_poll_picks_up_a_new_version(settings) -> None:
    s = settings.model_copy(update={"service": settings.service.model_copy(update={"reload_interval_s": 0.05})})
    for e in make_env(s):
        e.store.register_version("v2", status="complete")
        e.store.activate_version("v2")
        _wait(lambda e=e: e.client.get("/ready").json()["model_version"] == "v2", 10)


def test_incomplete_or_broken_versions_are_never_served(env: Env, tmp_path: Path) -> None:
    st = _state(env)
    env.store.register_version("v2", status="training")
    assert st.models.refresh() is False and st.models.version == "v1"
    assert env.client.post("/models/v2/activate", headers=env.h("admin")).status_code == 409
    broken = tmp_path / "v3"
    broken.mkdir()
    (broken / "BROKEN").write_text("")
    env.store.register_version("v3", status="complete", path=str(broken))
    env.store.activate_version("v3")
    assert st.models.refresh() is False and st.models.version == "v1"
    m = env.client.get("/models", headers=env.h("read")).json()
    assert m["served_version"] == "v1" and "broken artifact" in m["failed_to_load"]["v3"]
    assert env.client.get("/recommend?user_id=u1", headers=env.h("read")).json()["model_version"] == "v1"


def test_training_in_a_subprocess_completes_and_is_served(settings) -> None:
    for e in make_env(settings, train_command=[sys.executable, "-c", TRAINER, "ok"]):
        r = e.client.post("/train", json={}, headers=e.h("admin"))
        assert r.status_code == 202 and r.json()["status"] == "running"
        _wait(lambda e=e: e.client.get("/train", headers=e.h("admin")).json()[0]["status"] != "running")
        assert e.client.get("/train", headers=e.h("admin")).json()[0]["status"] == "complete"
        _state(e).models.refresh()
        assert e.client.get("/recommend?user_id=u1", headers=e.h("read")).json()["model_version"] == "v2"


def test_killed_training_leaves_the_served_version(settings) -> None:
    for e in make_env(settings, train_command=[sys.executable, "-c", TRAINER, "hang"]):
        job = e.client.post("/train", headers=e.h("admin")).json()
        assert e.client.post("/train", headers=e.h("admin")).status_code == 409  # one at a time
        _wait(lambda e=e: "v2" in set(e.store.versions()["version"]))
        from tests.versions.test_trainers import kill_9, start_stand_in

        cli_training = start_stand_in(e.store.url, e.settings.home, "v-cli")  # started after the job, alive
        proc = _state(e).jobs.jobs[job["job_id"]].proc
        proc.send_signal(signal.SIGKILL)
        _wait(lambda e=e: e.client.get("/train", headers=e.h("admin")).json()[0]["status"] == "failed")
        _wait(lambda e=e: e.store.versions().set_index("version").loc["v2", "status"] == "failed")
        for t in [t for t in threading.enumerate() if t.name == f"train-{job['job_id']}"]:
            t.join()  # the job's bookkeeping is done
        assert e.store.versions().set_index("version").loc["v-cli", "status"] == "training"  # not the job's
        kill_9(cli_training)
        _state(e).models.refresh()
        assert _state(e).models.version == "v1"
        assert e.client.get("/recommend?user_id=u1", headers=e.h("read")).json()["model_version"] == "v1"
        assert e.store.active_version() == "v1"


def test_a_loaded_version_is_kept_out_of_full_garbage_collections(env: Env) -> None:
    """After a load the heap is frozen: a full collection no longer walks the served engines (it
    stopped every request of the process for 0.2 s on the 50k-product set)."""
    import gc

    assert env.client.get("/ready").status_code == 200
    assert gc.get_freeze_count() > 0


def test_server_start_reaps_trainings_whose_process_died(settings) -> None:
    """A training killed while no server watched it (a CLI `shopsense train` under kill -9) is marked
    failed with the reason and loses its temporary folder when a server starts; a live one stays."""
    from shopsense.store import open_store
    from shopsense.versions import tmp_folder
    from tests.versions.test_trainers import kill_9, start_stand_in

    url = open_store(settings.store_url).url
    live = start_stand_in(url, settings.home, "v-live")
    dead = start_stand_in(url, settings.home, "v-dead")
    kill_9(dead)
    try:
        for e in make_env(settings):
            recs = e.store.versions().set_index("version")
            assert recs.loc["v-dead", "status"] == "failed" and recs.loc["v-live", "status"] == "training"
            assert f"trainer process {dead.pid}" in recs.loc["v-dead", "metrics"]["failure"]
            assert not tmp_folder(settings.home, "v-dead").exists() and tmp_folder(settings.home, "v-live").exists()
            assert _state(e).models.version == "v1"
    finally:
        kill_9(live)


# Reads the settings the server hands its trainer the way `shopsense`'s root callback does.
SETTINGS_PROBE = """
import sys
from shopsense.config import settings_from_env
s = settings_from_env()
open(sys.argv[1], "w").write(s.encoder.model if s is not None else "no settings handed over")
"""


def test_a_server_run_training_gets_the_servers_settings(settings, tmp_path: Path) -> None:
    """A setting from the server's --config file (here the encoder) reaches the trainer it starts."""
    configured = settings.model_copy(update={"encoder": settings.encoder.model_copy(update={"model": "shop-model"})})
    out = tmp_path / "seen.txt"
    for e in make_env(configured, train_command=[sys.executable, "-c", SETTINGS_PROBE, str(out)]):
        assert e.client.post("/train", json={}, headers=e.h("admin")).status_code == 202
        _wait(lambda e=e: e.client.get("/train", headers=e.h("admin")).json()[0]["status"] != "running")
    assert out.read_text() == "shop-model"
