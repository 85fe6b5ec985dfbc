"""Model version records: folders resolved against the home, and trainings whose process died reaped
(failed with a reason, temporary folder removed) while live ones are left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from shopsense.config import load_settings
from shopsense.store import KnowledgeStore, open_store
from shopsense.training import train
from shopsense.versions import TRAINER, reap_abandoned, recorded_path, tmp_folder, trainer_info, version_folder
from tests.test_recommend import FAST, _events, _products

# A stand-in trainer: records itself as training version argv[3] (with its pid), writes half of a
# temporary folder, says "ready" and waits to be killed or to finish.
STAND_IN = """
import sys, time
from shopsense.store import open_store
from shopsense.versions import TRAINER, tmp_folder, trainer_info
url, home, version = sys.argv[1:4]
open_store(url).register_version(version, status="training", path="models/" + version, metrics={TRAINER: trainer_info()})
t = tmp_folder(home, version)
t.mkdir(parents=True)
(t / "half-written.npy").write_bytes(b"x")
print("ready", flush=True)
time.sleep(120)
"""


def start_stand_in(store_url: str, home: Path, version: str) -> subprocess.Popen:
    """A live stand-in trainer of ``version`` (ready when this returns)."""
    proc = subprocess.Popen([sys.executable, "-c", STAND_IN, store_url, str(home), version], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    return proc


def kill_9(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _status(store: KnowledgeStore) -> dict[str, str]:
    df = store.versions()  # one read: a record may appear between two
    return dict(zip(df["version"], df["status"], strict=True))


def _manifest(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text("{}")
    return folder


# ---------------------------------------------------------------------------- folders
def test_paths_are_recorded_relative_to_the_home_and_resolved_against_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    home = Path("tr")  # relative, as in `--home tr`
    assert recorded_path(home, home / "models" / "v1") == "models/v1"
    assert recorded_path(home, tmp_path / "elsewhere" / "v1") == str(tmp_path / "elsewhere" / "v1")
    folder = _manifest(tmp_path / "tr" / "models" / "v1")
    monkeypatch.chdir(_manifest(tmp_path / "other"))
    assert version_folder(tmp_path / "tr", "v1", "models/v1") == folder  # from another folder
    assert version_folder(tmp_path / "tr", "v1", None) == folder  # no path recorded


def test_records_written_before_keep_loading(tmp_path, monkeypatch):
    folder = _manifest(tmp_path / "tr" / "models" / "v1")
    monkeypatch.chdir(tmp_path)
    # relative to the folder the training ran in, read from that folder
    assert version_folder(Path("tr"), "v1", "tr/models/v1") == folder
    # an absolute path that still exists
    assert version_folder(Path("/nowhere"), "v1", str(folder)) == folder
    # a home moved or restored elsewhere: its absolute and cwd-relative paths point nowhere now
    moved = _manifest(tmp_path / "restored" / "models" / "v1")
    monkeypatch.chdir(tmp_path / "restored")
    assert version_folder(tmp_path / "restored", "v1", "/old/home/models/v1") == moved
    assert version_folder(tmp_path / "restored", "v1", "tr/models/v1") == moved


# ---------------------------------------------------------------------------- reaping
def test_a_dead_trainer_is_reaped_and_a_live_one_left_alone(tmp_path):
    home = tmp_path / "home"
    store = open_store(f"sqlite:///{home / 'kb.db'}")
    live = start_stand_in(store.url, home, "v-live")
    dead = start_stand_in(store.url, home, "v-dead")
    kill_9(dead)
    try:
        (home / "models" / ".tmp-v-orphan").mkdir()  # no record at all
        reaped = reap_abandoned(store, home)
        assert set(reaped) == {"v-dead"} and "is gone" in reaped["v-dead"]
        assert _status(store) == {"v-live": "training", "v-dead": "failed"}
        failure = store.versions().set_index("version").loc["v-dead", "metrics"]["failure"]
        assert f"trainer process {dead.pid}" in failure
        assert not tmp_folder(home, "v-dead").exists() and not (home / "models" / ".tmp-v-orphan").exists()
        assert (tmp_folder(home, "v-live") / "half-written.npy").exists()
        assert reap_abandoned(store, home) == {}  # nothing more to do
    finally:
        kill_9(live)
    store.close()


def test_a_reused_pid_or_a_silent_other_host_counts_as_dead(sqlite_store, tmp_path):
    me = trainer_info()
    sqlite_store.register_version("v-reused", status="training", metrics={TRAINER: {**me, "proc_start": "1"}})
    far = {"pid": 1, "host": "another-host", "heartbeat": time.time()}
    sqlite_store.register_version("v-far-alive", status="training", metrics={TRAINER: far})
    silent = {**far, "heartbeat": time.time() - 3600}
    sqlite_store.register_version("v-far-silent", status="training", metrics={TRAINER: silent})
    sqlite_store.register_version("v-old-style", status="training")  # no trainer recorded, just started
    reaped = reap_abandoned(sqlite_store, tmp_path)
    expected = {"v-far-silent"} | ({"v-reused"} if me["proc_start"] is not None else set())
    assert set(reaped) == expected
    assert _status(sqlite_store)["v-far-alive"] == "training" and _status(sqlite_store)["v-old-style"] == "training"


def test_a_killed_cli_training_is_reaped_by_the_next_training(tmp_path):
    """A real `shopsense train`, killed with SIGKILL mid-training: the next training marks its version
    failed and removes its temporary folder; a live trainer's version and folder are untouched."""
    home = tmp_path / "home"
    settings = load_settings(home=home)
    store = open_store(settings.store_url)
    store.upsert_products(_products().assign(title=lambda d: d["item_id"]))  # no text: no text model to load
    store.add_events(_events())
    cli = [sys.executable, "-c", "from shopsense.cli.main import main; main()", "--home", str(home), "train"]
    log = tmp_path / "train.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cli, stdout=out, stderr=subprocess.STDOUT, env={**os.environ})
    t0 = time.monotonic()
    while "training" not in _status(store).values():  # a guard against a hang, not a timing check
        assert proc.poll() is None and time.monotonic() - t0 < 600, f"no training started: {log.read_text()}"
        time.sleep(0.02)
    kill_9(proc)
    killed = next(v for v, s in _status(store).items() if s == "training")
    assert store.versions().set_index("version").loc[killed, "metrics"][TRAINER]["pid"] == proc.pid
    tmp_folder(home, killed).mkdir(parents=True, exist_ok=True)  # as if killed while writing its files
    (tmp_folder(home, killed) / "engine.npy").write_bytes(b"half")
    live = start_stand_in(store.url, home, "v-live")
    try:
        result = train(store, settings, config=FAST)
        status = _status(store)
        assert status[killed] == "failed" and status[result.version] == "complete" and status["v-live"] == "training"
        assert "is gone" in store.versions().set_index("version").loc[killed, "metrics"]["failure"]
        assert not tmp_folder(home, killed).exists() and tmp_folder(home, "v-live").exists()
    finally:
        kill_9(live)
    store.close()
