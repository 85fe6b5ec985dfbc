"""Training in a separate process, started by ``POST /train``.

The server never trains in its own process: a crash or a kill of the trainer cannot take the
server down, and the trainer only makes a version servable by completing and activating its record
in the store (see :mod:`shopsense.service.models_state`). When a job exits unsuccessfully, any
version it left in ``training`` state is marked ``failed`` so the dashboard says what happened.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shopsense.config import SETTINGS_JSON_ENV, Settings, settings_json
from shopsense.store import KnowledgeStore
from shopsense.versions import TRAINER, reap_abandoned

log = logging.getLogger("shopsense.service")

#: the CLI in a fresh interpreter (`python -m shopsense.cli.main` would not register the command modules)
CLI = [sys.executable, "-c", "from shopsense.cli.main import main; main()"]


@dataclass
class Job:
    job_id: str
    command: list[str]
    started_at: float
    log_path: Path
    incremental: bool = False
    returncode: int | None = None
    finished_at: float | None = None
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def status(self) -> str:
        if self.returncode is None:
            return "running"
        return "complete" if self.returncode == 0 else "failed"

    def as_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "status": self.status,
            "incremental": self.incremental,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "returncode": self.returncode,
            "pid": self.proc.pid if self.proc else None,
        }


def default_command(store_url: str, home: Path, incremental: bool) -> list[str]:
    """:func:`shopsense.training.train` on the same store and home, in a fresh interpreter
    (store and home travel in ``SHOPSENSE_STORE`` / ``SHOPSENSE_HOME``)."""
    cmd = [sys.executable, "-c", "from shopsense.service.training_jobs import main; main()"]
    if incremental:
        cmd.append("--incremental")
    return cmd


def main() -> None:
    """Entry point of a trainer process: train, publish and activate a new version, exit 0; any
    failure exits non-zero (the version is then marked failed and never served)."""
    from shopsense.config import load_settings, settings_from_env
    from shopsense.store import open_store
    from shopsense.training import train

    settings = settings_from_env() or load_settings()  # the server's, its --config file included
    store = open_store(settings.store_url, timeout_s=settings.store_timeout_s, pool=settings.store_pool())
    result = train(
        store, settings, incremental="--incremental" in sys.argv[1:], progress=lambda m: print(m, flush=True)
    )
    print(f"version {result.version} complete", flush=True)


class TrainingJobs:
    """Starts and watches trainer processes; at most one runs at a time."""

    def __init__(
        self,
        store: KnowledgeStore,
        store_url: str,
        home: Path,
        command: list[str] | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.store = store
        self.settings = settings  # the server's: its trainers train with them (its --config file included)
        self.store_url = store_url
        self.home = Path(home)
        self.command = command  # tests replace the trainer
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def running(self) -> Job | None:
        return next((j for j in self.jobs.values() if j.returncode is None), None)

    def start(self, incremental: bool = False) -> Job:
        """Start a trainer; raises RuntimeError when one is already running."""
        with self._lock:
            if self.running() is not None:
                raise RuntimeError("a training job is already running")
            job_id = uuid.uuid4().hex[:12]
            cmd = list(self.command) if self.command else default_command(self.store_url, self.home, incremental)
            logs = self.home / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            log_path = logs / f"train-{job_id}.log"
            env = {**os.environ, "SHOPSENSE_STORE": self.store_url, "SHOPSENSE_HOME": str(self.home)}
            if self.settings is not None:
                env[SETTINGS_JSON_ENV] = settings_json(self.settings)
            with open(log_path, "wb") as fh:
                proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            job = Job(job_id, cmd, time.time(), log_path, incremental, proc=proc)
            self.jobs[job_id] = job
        threading.Thread(target=self._watch, args=(job,), daemon=True, name=f"train-{job_id}").start()
        return job

    def _watch(self, job: Job) -> None:
        assert job.proc is not None
        rc = job.proc.wait()
        job.finished_at = time.time()
        job.returncode = rc
        if rc != 0:
            self._mark_abandoned(job.started_at, job.proc.pid, rc)
            self.reap()  # its temporary folder

    def _mark_abandoned(self, since: float, pid: int, returncode: int) -> None:
        """Versions a dead trainer left half-done become ``failed`` (never served either way); a
        version another live trainer records as its own (a CLI training) is not this job's."""
        try:
            df = self.store.versions()
            for _, row in df[(df["status"] == "training") & (df["created_at"] >= since - 1)].iterrows():
                trainer = (row["metrics"] or {}).get(TRAINER)
                if isinstance(trainer, dict) and trainer.get("pid") != pid:
                    continue
                metrics = {**(row["metrics"] or {}), "failure": f"trainer exited with status {returncode}"}
                self.store.register_version(str(row["version"]), status="failed", path=row["path"], metrics=metrics)
        except Exception:  # bookkeeping only: the served version is safe regardless
            pass

    def reap(self) -> dict[str, str]:
        """Trainings whose process died (here or in an earlier server or CLI run) become ``failed`` and
        lose their temporary folders; live ones are left alone (:func:`shopsense.versions.reap_abandoned`)."""
        try:
            return reap_abandoned(self.store, self.home)
        except Exception as e:  # bookkeeping only: never stops the server from starting
            log.warning("abandoned trainings not reaped: %s", e)
            return {}

    def stop_all(self) -> None:
        for j in self.jobs.values():
            if j.returncode is None and j.proc is not None:
                j.proc.terminate()
