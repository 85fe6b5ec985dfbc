"""Who is training a version, and reaping the trainings whose process died.

While a version trains, its record's ``metrics`` hold the trainer's identity (pid, host, process
start, heartbeat). A training killed hard (``kill -9``, a power cut) cannot mark itself failed, so
the next training and the next server start call :func:`reap_abandoned`: a ``training`` record whose
trainer is gone becomes ``failed`` with the reason, and its temporary folder is removed. A trainer
still alive is left alone.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

from shopsense.store import KnowledgeStore
from shopsense.versions.folders import MODELS, TMP_PREFIX

log = logging.getLogger("shopsense.versions")

#: how often a trainer refreshes its heartbeat
HEARTBEAT_S = 60.0
#: a trainer on another host (a shared PostgreSQL store) is presumed dead after this long without
#: a heartbeat; on this host its pid decides. Records without a trainer (written before trainers
#: were recorded) count from their creation.
STALE_AFTER_S = 15 * 60.0
TRAINER = "trainer"


# ---------------------------------------------------------------------------- the trainer's identity
def _process_start(pid: int) -> str | None:
    """When process ``pid`` started, in clock ticks since boot (Linux ``/proc``), else None: tells a
    trainer from an unrelated process that got its pid later (a restarted container)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: count from its closing one
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def trainer_info() -> dict[str, Any]:
    """This process as a trainer: pid, host, process start, heartbeat."""
    pid = os.getpid()
    now = time.time()
    return {"pid": pid, "host": socket.gethostname(), "proc_start": _process_start(pid), "heartbeat": now}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def why_dead(record: dict[str, Any], now: float | None = None) -> str | None:
    """Why the trainer of a ``training`` record is gone, or None while it may be alive."""
    now = time.time() if now is None else now
    metrics = record.get("metrics")
    info = metrics.get(TRAINER) if isinstance(metrics, dict) else None
    if not isinstance(info, dict) or not isinstance(info.get("pid"), int):
        age = now - float(record.get("created_at") or 0)
        if age < STALE_AFTER_S:
            return None
        return f"no trainer recorded and started {age / 60:.0f} min ago"
    pid, host = info["pid"], str(info.get("host"))
    if host == socket.gethostname():
        if not _pid_alive(pid):
            return f"trainer process {pid} on {host} is gone (killed or crashed)"
        start = info.get("proc_start")
        if start is not None and _process_start(pid) not in (None, start):
            return f"trainer process {pid} on {host} is gone (its pid now belongs to another process)"
        return None
    quiet = now - float(info.get("heartbeat") or record.get("created_at") or 0)
    if quiet < STALE_AFTER_S:
        return None
    return f"trainer process {pid} on {host} sent no heartbeat for {quiet / 60:.0f} min"


class Heartbeat:
    """Refreshes a training record's heartbeat every ``HEARTBEAT_S`` until stopped. Stop it before
    the record leaves ``training`` (:meth:`stop` waits for a write in flight), so a late beat never
    turns a finished record back into a training one."""

    def __init__(self, store: KnowledgeStore, version: str, path: str, info: dict[str, Any]) -> None:
        self.store, self.version, self.path, self.info = store, version, path, info
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{version}", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            self.info["heartbeat"] = time.time()
            try:
                self.store.register_version(
                    self.version, status="training", path=self.path, metrics={TRAINER: self.info}
                )
            except Exception as e:  # a missed beat only makes other hosts wait longer
                log.warning("training heartbeat not written: %s", e)


# ---------------------------------------------------------------------------- reaping
def reap_abandoned(store: KnowledgeStore, home: Path) -> dict[str, str]:
    """Mark ``failed`` every ``training`` record whose trainer is gone (the reason goes into its
    metrics as ``failure``) and remove its temporary folder, and temporary folders no live training
    owns. Returns the reaped versions with their reasons."""
    df = store.versions()
    reaped: dict[str, str] = {}
    live: set[str] = set()
    for rec in df[df["status"] == "training"].to_dict("records"):
        version = str(rec["version"])
        why = why_dead(rec)
        if why is None:
            live.add(version)
            continue
        metrics = dict(rec["metrics"]) if isinstance(rec["metrics"], dict) else {}
        metrics["failure"] = (
            f"abandoned: {why}; reaped by process {os.getpid()} at {time.strftime('%FT%TZ', time.gmtime())}"
        )
        store.register_version(version, status="failed", path=None, metrics=metrics)
        reaped[version] = why
        log.warning("model version %s was left in training: marked failed (%s)", version, why)
    root = Path(home) / MODELS
    if root.is_dir():
        for tmp in root.glob(f"{TMP_PREFIX}*"):
            if tmp.is_dir() and tmp.name[len(TMP_PREFIX) :] not in live:
                shutil.rmtree(tmp, ignore_errors=True)
    return reaped
