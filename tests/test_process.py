"""Importing shopsense changes nothing in the process; the entry points (CLI, server workers) set
the process-wide variables of ``shopsense.process`` before torch or LightGBM load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from shopsense.process import PROCESS_ENV, SERVING_SWITCH_INTERVAL_S, SERVING_THREAD_VARS, process_environment

SRC = Path(__file__).resolve().parents[1] / "src"

#: the library's main modules (entry points included: importing them must not act either)
MODULES = [
    "shopsense",
    "shopsense.config",
    "shopsense.features.text",
    "shopsense.features.image",
    "shopsense.models",
    "shopsense.ranking.pipeline",
    "shopsense.recommend",
    "shopsense.search",
    "shopsense.training",
    "shopsense.similar",
    "shopsense.evaluation.runner",
    "shopsense.service.app",
    "shopsense.cli.main",
]

PROBE = """
import json, logging, os, sys, warnings
env = dict(os.environ)
import numpy, scipy.sparse, scipy.special, pandas, torch  # their own import-time changes are not ours
filters = list(warnings.filters)
threads = (torch.get_num_threads(), torch.get_num_interop_threads())
root = (list(logging.getLogger().handlers), logging.getLogger().level)
for name in sys.argv[1:]:
    __import__(name)
print(json.dumps({
    "env": {k: v for k, v in os.environ.items() if env.get(k) != v},
    "removed": sorted(set(env) - set(os.environ)),
    "filters": [repr(f) for f in warnings.filters if f not in filters],
    "threads": [threads, (torch.get_num_threads(), torch.get_num_interop_threads())],
    "logging": root == (list(logging.getLogger().handlers), logging.getLogger().level),
}))
"""


def _clean_env() -> dict[str, str]:
    # nothing of PROCESS_ENV, nothing of shopsense's: what a program that imports the library starts with
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(SRC),
        "HOME": os.environ.get("HOME", "/tmp"),
    }


def _run(code: str, *args: str, cwd: Path | None = None) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], env=_clean_env(), cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_importing_the_library_changes_nothing_in_the_process():
    seen = _run(PROBE, *MODULES)
    assert seen["env"] == {} and seen["removed"] == []
    assert seen["filters"] == []
    assert seen["threads"][0] == seen["threads"][1]
    assert seen["logging"]


def test_the_cli_sets_the_process_defaults_before_torch_loads(tmp_path: Path):
    code = """
import json, os, sys
from typer.testing import CliRunner
from shopsense.cli.main import app
r = CliRunner().invoke(app, ["--home", sys.argv[1], "init"])
print(json.dumps({"rc": r.exit_code, "env": {k: os.environ.get(k) for k in sys.argv[2:]}, "torch": "torch" in sys.modules}))
"""
    seen = _run(code, str(tmp_path / "kb"), *PROCESS_ENV)
    assert seen["rc"] == 0 and seen["env"] == PROCESS_ENV
    assert not seen["torch"]  # OpenMP reads OMP_WAIT_POLICY when torch loads it: it must come after


def test_a_server_worker_sets_the_process_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from shopsense.config import load_settings
    from shopsense.service.app import app_from_env, worker_environment

    for name, value in worker_environment(load_settings(home=tmp_path / "kb")).items():
        monkeypatch.setenv(name, value)
    for name in (*PROCESS_ENV, *SERVING_THREAD_VARS):
        monkeypatch.delenv(name, raising=False)
    before = {i["prefix"]: i["num_threads"] for i in threadpool_info()}
    switch = sys.getswitchinterval()
    try:
        state = app_from_env().state.shopsense
        state.store.close()
        assert {k: os.environ.get(k) for k in PROCESS_ENV} == PROCESS_ENV
        # BLAS on one thread: on two, OpenBLAS's second thread spun after every small product of a
        # request (2.4 ms of CPU for a 0.3 ms product)
        assert {i["internal_api"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"} == {
            "openblas": 1
        }
    finally:
        threadpool_limits(limits=before)  # the rest of the test session keeps its own settings
        sys.setswitchinterval(switch)


def test_libraries_loaded_after_a_server_starts_get_one_thread_too():
    """scipy's OpenBLAS and LightGBM's and torch's OpenMP load with the model version, after the
    server limited the pools already loaded: on two threads a second one spun beside every request
    (an incremental version's /recommend: 3.1 ms on the main thread, 6.1 ms of CPU in all)."""
    code = """
import json
from shopsense.process import serving_threads
serving_threads()
import numpy, scipy.sparse, lightgbm, torch, sys
from threadpoolctl import threadpool_info
pools = sorted({i["num_threads"] for i in threadpool_info()})
print(json.dumps({"pools": pools, "torch": torch.get_num_threads(), "switch": sys.getswitchinterval()}))
"""
    seen = _run(code)
    assert seen == {"pools": [1], "torch": 1, "switch": SERVING_SWITCH_INTERVAL_S}


def test_a_value_the_user_chose_is_kept():
    assert process_environment({"OMP_WAIT_POLICY": "ACTIVE"}).get("OMP_WAIT_POLICY") is None
    assert process_environment({}) == PROCESS_ENV


def test_only_entry_points_write_the_environment():
    """A lazy write (an encoder setting HF_HUB_OFFLINE when it loads) changes the process as much as
    one at import: outside the entry points, the library only reads ``os.environ``."""
    import re

    write = re.compile(r"os\.environ(\.(setdefault|update|pop|clear)\(|\[[^\]]+\]\s*=[^=])|os\.putenv")
    entry_points = ("cli/", "service/", "process.py", "evaluation/peers/sasrec_worker.py")
    library = SRC / "shopsense"
    found = []
    for path in sorted(library.rglob("*.py")):
        rel = path.relative_to(library).as_posix()
        if rel.startswith(entry_points):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if write.search(line) and "SETTINGS_JSON_ENV" not in line:  # settings_from_env: for entry points
                found.append(f"{rel}:{n}: {line.strip()}")
    assert found == []
