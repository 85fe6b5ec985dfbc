"""Growth to 10M events (issue 19, point 4): every stage of a synthetic shop at several sizes, the
local trainer against Spark ``local[2]``, the server at each size, and how each stage grows.

    HF_HUB_OFFLINE=1 nice -n 19 .venv/bin/python benchmarks/scale.py \
        --sizes 1000000,3000000,10000000 --products 100000 --users-at-top 1000000 \
        --work /tmp/shopsense-scale --json reports/scale.json

The shop (:func:`service_load.make_products` and :func:`service_load.make_events`): ``--products``
products with real titles (so the text encoder, the content source and the vector index run), and
at each size ``events`` events from ``users = users_at_top * events / top size`` shoppers (the same
events per shopper at every size: a shop grows by its shoppers). Each size gets its own home:

1. **ingest**: ``shopsense ingest products`` and ``shopsense ingest events`` from Parquet files;
2. **trainers**, each ``shopsense train`` in its own process, one after the other on the same store:
   ``local`` (the default engine: every source; the text encoder's fine-tuning off unless
   ``--finetune``, since its cost is bounded by ``[finetune] max_seconds`` and ``max_pairs``, not by the
   events), ``local-sparse`` and ``spark`` (``--engine spark --master local[2]``), both with
   ``[engine] sources = "sparse"`` and ALS as in ``benchmarks/spark_parity.py``, so the two build the
   same sources and compare stage by stage;
3. **index build**: ``shopsense search-index`` (the product vectors are already in the embedding
   cache from the first training, so this is the index itself: BM25, spelling, HNSW);
4. **serving**, for each version trained (activated in turn): ``shopsense serve --workers 2``, the RSS
   of each worker once ready and after the load, and ``/recommend`` for random known shoppers at
   ``--rate`` requests/s offered (``benchmarks/loadgen.py``, open loop, 32 connections).

Stages and their memory: every command is a child process; its stderr progress messages (``shopsense
train`` prints one per stage; inside the local trainer a hook of this script adds one per model fit,
the popularity and held-out split, and the bought-together table, since the engine's metrics keep
only the total) mark the stages, and a sampler reads the RSS and CPU time of the child's whole
process tree (Spark's JVM and Python workers included) every ``--sample-s`` seconds: per stage the
wall time, the CPU seconds and the peak of the summed RSS. The exact peak RSS of the largest process
comes from ``wait4``. A child whose tree passes ``--max-rss-gb`` is stopped and reported as having run
out of memory in the stage it was in; a child that fails is reported with its exit status and last
lines, and the run goes on. Each child is bounded by ``--stage-timeout``.

Printed: one markdown table per size, the growth exponents (least squares of log time and of log
peak RSS on log events, over the sizes run), and an estimate of where a cluster wins, with its
assumptions (written by ``scale_report.py``, which ``--report`` runs on saved JSON files). Not a
test: at the sizes of the issue it runs for hours (see ``docs/deploy.md``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale_report import TRAINERS, SizeRun, Stage, StepResult, exponents, render, report_from_json  # noqa: E402

HERE = Path(__file__).resolve()
GB = 1024**3
SPARSE_TOML = """[engine]
sources = "sparse"

[engine.als]
factors = {factors}
iterations = {iterations}
"""


# ---------------------------------------------------------------------- hooks (inside a child)
def _install_fit_hooks() -> None:
    """Inside ``shopsense train`` (local trainer): one stderr line as each model's fit, the popularity
    and held-out split, and the bought-together table begin, and ``[scale] end`` when each ends, so
    the parent can time and measure them apart. Class methods are wrapped (instances stay plain)."""
    from shopsense.models.complements import Complements
    from shopsense.ranking.pipeline import Engine

    depth = [0]

    def wrap(cls: type, method: str, label: str) -> None:
        # on the concrete class, even when the method is inherited (item-kNN and EASE share a base)
        orig = getattr(cls, method, None)
        if orig is None or getattr(orig, "_scale_wrapped", False):
            return

        def timed(self: Any, *a: Any, **k: Any) -> Any:
            outer = depth[0] == 0
            if outer:
                print(f"[scale] {label}", file=sys.stderr, flush=True)
            depth[0] += 1
            try:
                return orig(self, *a, **k)
            finally:
                depth[0] -= 1
                if outer:
                    print("[scale] end", file=sys.stderr, flush=True)

        timed._scale_wrapped = True  # type: ignore[attr-defined]
        setattr(cls, method, timed)

    new_models = Engine._new_models

    def hooked_new_models(self: Engine, item_vectors: Any) -> dict:
        models = new_models(self, item_vectors)
        for name, m in models.items():
            wrap(type(m), "fit", f"fit {name}")
            wrap(type(m), "train_sequences", f"fit {name}")  # the sequential model's refit
        return models

    Engine._new_models = hooked_new_models  # type: ignore[method-assign]
    orig_fit = Engine.fit

    def engine_fit(self: Engine, *a: Any, **k: Any) -> Engine:
        print("[scale] popularity and held-out split", file=sys.stderr, flush=True)
        return orig_fit(self, *a, **k)

    Engine.fit = engine_fit  # type: ignore[method-assign]
    wrap(Complements, "fit", "complements")


def _child_cli(args: list[str]) -> None:
    """``scale.py _cli ARGS``: ``shopsense ARGS`` with the fit hooks installed."""
    _install_fit_hooks()
    from shopsense.cli.main import main as cli_main

    sys.argv = ["shopsense", *args]
    cli_main()


def _child_generate(out: Path, n_products: int, n_events: int, n_users: int) -> None:
    """``scale.py _generate OUT PRODUCTS EVENTS USERS``: the shop as Parquet (a child, so the parent
    stays small)."""
    import numpy as np
    from service_load import make_events, make_products

    rng = np.random.default_rng(7)
    out.mkdir(parents=True, exist_ok=True)
    products = make_products(n_products, rng)
    products.to_parquet(out / "products.parquet.tmp", index=False)
    events = make_events(products, n_events, n_users, rng)
    events.to_parquet(out / "events.parquet.tmp", index=False, row_group_size=500_000)
    (out / "products.parquet.tmp").rename(out / "products.parquet")
    (out / "events.parquet.tmp").rename(out / "events.parquet")
    (out / "meta.json").write_text(
        json.dumps({"products": n_products, "events": n_events, "users": n_users, "seed": 7, "generator": "v1"})
    )


# ---------------------------------------------------------------------- process tree sampling
def _proc_table() -> dict[int, tuple[int, float, float]]:
    """pid -> (ppid, RSS bytes, CPU seconds) of every process (Linux /proc)."""
    tick, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                with open(f"/proc/{d}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
                # after the name: state ppid ... utime(11) stime(12) ... rss(21, pages)
                out[int(d)] = (int(fields[1]), int(fields[21]) * page, (int(fields[11]) + int(fields[12])) / tick)
    return out


def _tree(root: int, table: dict[int, tuple[int, float, float]]) -> list[int]:
    kids: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        if p in table:
            out.append(p)
            todo.extend(kids.get(p, ()))
    return out


@dataclass
class Sample:
    t: float
    rss: float  # bytes, the whole tree
    cpu: float  # seconds, cumulative over every process of the tree seen so far


def run_step(
    name: str,
    cmd: list[str],
    env: dict[str, str],
    *,
    timeout_s: float,
    max_rss: float,
    sample_s: float,
    stage_of: Any = None,
    log: Path | None = None,
) -> StepResult:
    """Run ``cmd`` as a child (its own process group), sample its tree, split its run into stages at
    the stderr lines ``stage_of(line)`` names (None: not a stage boundary), stop it past ``max_rss``
    bytes or ``timeout_s`` seconds."""
    load = list(os.getloadavg())
    t0 = time.monotonic()
    p = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, text=True, bufsize=1
    )
    marks: list[tuple[float, str]] = [(0.0, "start-up")]
    err_lines: list[str] = []
    out_lines: list[str] = []
    samples: list[Sample] = []
    stop = threading.Event()
    why: list[str] = []
    logf = open(log, "a") if log else None  # noqa: SIM115

    def read_err() -> None:
        assert p.stderr is not None
        for line in p.stderr:
            now = time.monotonic() - t0
            line = line.rstrip("\n")
            err_lines.append(line)
            if logf:
                logf.write(f"{now:9.1f} {line}\n")
                logf.flush()
            label = stage_of(line) if stage_of else None
            if label is not None:
                marks.append((now, label))

    def read_out() -> None:
        assert p.stdout is not None
        for line in p.stdout:
            out_lines.append(line.rstrip("\n"))
            del out_lines[:-200]

    def sample() -> None:
        cpu_seen: dict[int, float] = {}
        while not stop.is_set():
            table = _proc_table()
            pids = _tree(p.pid, table)
            if pids:
                for pid in pids:
                    cpu_seen[pid] = max(cpu_seen.get(pid, 0.0), table[pid][2])
                rss = sum(table[pid][1] for pid in pids)
                samples.append(Sample(time.monotonic() - t0, rss, sum(cpu_seen.values())))
                if rss > max_rss and not why:
                    why.append(
                        f"stopped: its processes held {rss / GB:.2f} GB, over --max-rss-gb {max_rss / GB:.2f}, "
                        f"in stage '{marks[-1][1]}'"
                    )
                    _kill(p)
            if time.monotonic() - t0 > timeout_s and not why:
                why.append(f"stopped: still running after --stage-timeout {timeout_s:.0f} s, in stage '{marks[-1][1]}'")
                _kill(p)
            stop.wait(sample_s)

    threads = [threading.Thread(target=f, daemon=True) for f in (read_err, read_out, sample)]
    for th in threads:
        th.start()
    try:
        _, status, usage = os.wait4(p.pid, 0)
    except BaseException:  # Ctrl-C: the child has its own session and would outlive this process
        _kill(p)
        raise
    p.returncode = os.waitstatus_to_exitcode(status)
    end = time.monotonic() - t0
    stop.set()
    _kill(p)  # anything of its group left behind (Spark's JVM when the driver died)
    for th in threads:
        th.join(timeout=10)
    if logf:
        logf.close()
    stages = _stages(marks, samples, end)
    rc = p.returncode
    ok = rc == 0 and not why
    failure = None
    if not ok:
        tail = " | ".join(x for x in err_lines[-6:] if x.strip())[-900:]
        reason = why[0] if why else f"exit status {rc}"
        if rc is not None and rc < 0:
            reason += f" (killed by signal {-rc}" + ("; the kernel's OOM killer?" if rc == -9 and not why else "") + ")"
        failure = f"{reason}; last lines: {tail}" if tail else reason
    return StepResult(
        name=name,
        ok=ok,
        returncode=rc,
        seconds=round(end, 2),
        cpu_s=round(samples[-1].cpu if samples else usage.ru_utime + usage.ru_stime, 1),
        peak_rss_mb=round(max((s.rss for s in samples), default=0) / 2**20, 1),
        max_process_rss_mb=round(usage.ru_maxrss / 1024, 1),
        stages=stages,
        failure=failure,
        stdout_tail="\n".join(out_lines[-20:]),
        load_before=[round(x, 2) for x in load],
    )


def _kill(p: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(p.pid, signal.SIGKILL)


def _cpu_at(samples: list[Sample], t: float) -> float:
    """The tree's cumulative CPU seconds at ``t``, interpolated between samples."""
    if not samples or t <= samples[0].t:
        return samples[0].cpu * max(t, 0.0) / samples[0].t if samples and samples[0].t > 0 else 0.0
    for a, b in zip(samples, samples[1:], strict=False):
        if a.t <= t <= b.t:
            return a.cpu + (b.cpu - a.cpu) * (t - a.t) / max(b.t - a.t, 1e-9)
    return samples[-1].cpu


def _stages(marks: list[tuple[float, str]], samples: list[Sample], end: float) -> list[Stage]:
    """Time, CPU and peak RSS between consecutive marks; marks of one name add up (``[scale] end``
    switches to "other")."""
    by_name: dict[str, Stage] = {}
    bounds = [*marks, (end, "")]
    for (t_a, name), (t_b, _) in zip(bounds, bounds[1:], strict=False):
        st = by_name.setdefault(name, Stage(name))
        st.seconds += t_b - t_a
        st.cpu_s += max(0.0, _cpu_at(samples, t_b) - _cpu_at(samples, t_a))
        # the samples inside, or for a stage shorter than the sampling interval the ones around it
        inside = [s for s in samples if t_a <= s.t <= t_b]
        around = inside or [s for s in samples if s.t < t_a][-1:] + [s for s in samples if s.t > t_b][:1]
        if around:
            st.peak_rss_mb = max(st.peak_rss_mb, max(s.rss for s in around) / 2**20)
    out = [st for st in by_name.values() if st.seconds >= 0.05 or st.name != "other"]
    for st in out:
        st.seconds, st.cpu_s, st.peak_rss_mb = round(st.seconds, 2), round(st.cpu_s, 1), round(st.peak_rss_mb, 1)
    return out


# ---------------------------------------------------------------------- stage names
_TIME = re.compile(r"^\s*\d+(\.\d+)?s\s+")


def train_stage(phase: list[str]) -> Any:
    """A stage namer for ``shopsense train``'s stderr (both trainers; ``phase`` remembers whether the
    sources are being fitted on the held-out split or on all data)."""
    rules = [
        (r"^reading events and products", "read the store"),
        (r"^exporting products and events to Parquet", "export to Parquet"),
        (r"^starting Spark", "start Spark, read, count"),
        (r"^text encoder not fine-tuned", None),
        (r"^marked \d+ abandoned", None),
        (r"^fine-tun", "fine-tune the text encoder"),
        (r"^encoding \d+ product texts", "encode product texts"),
        (r"^encoding product texts on the executors", "encode product texts"),  # the Spark job
        (r"^product images are not fused", None),
        (r"^training the sequential model on the held-out split", "fit sequential (held-out)"),  # TorchDistributor
        (r"^training the sequential model on every window", "fit sequential (all data)"),
        (r"^encoding the shoppers' search queries", "encode search queries"),
        (r"^popularity and trend", "popularity"),
        (r"^holding out", "held-out split"),
        (r"^building candidates", "ranker candidates"),
        (r"^training the LambdaRank", "LambdaRank ranker"),
        (r"^tuning the fusion weights", "tune the fusion"),
        (r"^trading a little held-out NDCG", "tune the fusion"),
        (r"^learning which of their own items", "return scorer"),
        (r"^products bought together", "complements"),
        (r"^describing \d+ logged lists", "outcome ranker"),
        (r"^building the version's search index", "version's search index"),
        (r"^writing version", "write and publish"),
        (r"^version \S+ is active", "exit"),
    ]

    def name(line: str) -> str | None:
        if line.startswith("[scale] "):
            msg = line[8:].strip()
            if msg == "end":
                return "other"
            if msg.startswith("fit "):
                return f"{msg} ({phase[0]})"
            return msg
        msg = _TIME.sub("", line).strip()
        m = re.match(r"^fitting (\w+) on (the held-out split|all interactions)", msg)
        if m:
            return f"fit {m.group(1)} ({'held-out' if 'held-out' in m.group(2) else 'all data'})"
        if msg.startswith("refitting sources on all data"):
            phase[0] = "all data"
            return "other"
        for pattern, label in rules:
            if re.match(pattern, msg):
                return label
        return None

    return name


# ---------------------------------------------------------------------- one size
def run_size(a: argparse.Namespace, events: int, users: int) -> SizeRun:
    from service_load import SS

    res = SizeRun(events=events, users=users, products=a.products)
    root = a.work / f"e{events}"
    data, home = root / "data", root / "home"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "SHOPSENSE_HOME": str(home),
        "COLUMNS": "400",  # progress lines unwrapped
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("SHOPSENSE_STORE", None)
    env.pop("SHOPSENSE_CONFIG", None)
    lim = {"timeout_s": a.stage_timeout, "max_rss": a.max_rss_gb * GB, "sample_s": a.sample_s, "log": root / "log.txt"}
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    (root / "log.txt").write_text("")
    say = _say(events)

    # data (not a stage: reused when the files exist)
    meta = data / "meta.json"
    want = {"products": a.products, "events": events, "users": users, "seed": 7, "generator": "v1"}
    if meta.exists() and json.loads(meta.read_text()) == want:
        res.data = {**want, "generated_s": None, "reused": True}
    else:
        shutil.rmtree(data, ignore_errors=True)
        say("generating the shop")
        g = run_step(
            "generate",
            [sys.executable, str(HERE), "_generate", str(data), str(a.products), str(events), str(users)],
            env,
            **lim,
        )
        res.data = {**want, "generated_s": g.seconds, "peak_rss_mb": g.peak_rss_mb, "reused": False}
        if not g.ok:
            res.data["failure"] = g.failure
            say(f"generating failed: {g.failure}")
            return res
    say(f"data: {res.data}")

    # ingest
    for kind in ("products", "events"):
        say(f"ingest {kind}")
        step = run_step(f"ingest {kind}", [*SS, "ingest", kind, str(data / f"{kind}.parquet"), "--json"], env, **lim)
        res.steps[f"ingest {kind}"] = step
        _report_step(say, step)
        if not step.ok:
            return res

    # trainers
    cfg = {}
    finetune = "" if a.finetune else "\n[finetune]\nenabled = false\n"
    cfg["local"] = root / "local.toml"
    cfg["local"].write_text(finetune)
    for t in ("local-sparse", "spark"):
        cfg[t] = root / f"{t}.toml"
        cfg[t].write_text(SPARSE_TOML.format(factors=a.als_factors, iterations=a.als_iterations) + finetune)
    for trainer in a.trainers:
        args = ["--config", str(cfg[trainer]), "train", "--json"]
        if trainer == "spark":
            args += ["--engine", "spark", "--master", a.master]
            for c in a.spark_conf:
                args += ["--conf", c]
            cmd = [*SS, *args]
        else:
            cmd = [sys.executable, str(HERE), "_cli", *args]
        say(f"train: {trainer}")
        step = run_step(f"train {trainer}", cmd, env, stage_of=train_stage(["held-out"]), **lim)
        res.steps[f"train {trainer}"] = step
        _report_step(say, step)
        if step.ok:
            with contextlib.suppress(ValueError, IndexError):
                summary = json.loads(step.stdout_tail.strip().splitlines()[-1])
                res.versions[trainer] = summary["version"]
                res.manifest[trainer] = {
                    k: summary.get(k)
                    for k in (
                        "train_seconds",
                        "fit_seconds",
                        "fit_seconds_by_source",
                        "n_users",
                        "n_items",
                        "n_interactions",
                        "heldout_ndcg@10_fusion",
                        "heldout_ndcg@10_single",
                    )
                    if k in summary
                }

    # index build
    if not a.skip_index:
        say("search-index")
        step = run_step("search-index", [*SS, "search-index"], env, **lim)
        res.steps["search-index"] = step
        _report_step(say, step)

    # serving
    if not a.skip_serving:
        for trainer, version in res.versions.items():
            if trainer not in a.serve:
                continue
            say(f"serve: {trainer} ({version})")
            res.serving[trainer] = serve(a, home, env, version, users)
            say(f"serve: {res.serving[trainer]}")
    return res


def _say(events: int) -> Any:
    def say(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')} {events:,} events] {msg}", flush=True)

    return say


def _report_step(say: Any, step: StepResult) -> None:
    if step.ok:
        say(f"{step.name}: {step.seconds:.1f} s, peak RSS {step.peak_rss_mb:,.0f} MB")
    else:
        say(f"{step.name} FAILED: {step.failure}")


def serve(a: argparse.Namespace, home: Path, env: dict[str, str], version: str, users: int) -> dict:
    """Activate ``version``, start ``shopsense serve --workers N``, RSS per worker, /recommend open loop."""
    from server_procs import Workers, rss_mb
    from service_load import SS, free_port, run_loadgen, start_server, wait_ready

    from shopsense.service.keys import create_key
    from shopsense.store import open_store

    out: dict[str, Any] = {"version": version, "workers": a.workers, "rate": a.rate, "seconds": a.load_seconds}
    r = subprocess.run([*SS, "versions", "activate", version], env=env, capture_output=True, text=True, timeout=300)
    if r.returncode:
        return {**out, "failure": f"activate: {r.stderr.strip()[-300:]}"}
    store = open_store(f"sqlite:///{home / 'shopsense.db'}")
    key = create_key(store, ["read"], "scale")[1]
    store.close()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    server = start_server(home, port, a.workers, similar=False)  # its environment: ours, HOME set
    try:
        while True:  # bounded: the server's exit or --stage-timeout ends the wait
            try:
                ready = wait_ready(base, timeout=60)
                break
            except RuntimeError as e:
                if server.poll() is not None or time.monotonic() - t0 > a.stage_timeout:
                    log = (home / "serve.log").read_text(errors="replace")[-600:]
                    return {**out, "failure": f"{e}, exit status {server.poll()}: {log}"}
        out["ready_s"] = round(time.monotonic() - t0, 1)
        out["served_version"] = ready.get("model_version")
        if out["served_version"] != version:
            out["failure"] = f"the server loaded {out['served_version']!r}, not {version}"
            return out
        workers = Workers(server.pid)
        workers.update()
        pids = list(workers.slots.values())
        out["parent_rss_mb"] = rss_mb(server.pid)
        out["worker_rss_mb_ready"] = [rss_mb(p) for p in pids]
        path_users = max(users, 1)
        run_loadgen(base, "recommend", 0, 4, 3, key, path_users, [], closed=True)  # warm-up
        peak = dict.fromkeys(pids, 0.0)
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                for p in pids:
                    peak[p] = max(peak[p], rss_mb(p) or 0.0)
                done.wait(0.5)

        th = threading.Thread(target=watch, daemon=True)
        th.start()
        load = run_loadgen(base, "recommend", a.rate, 32, a.load_seconds, key, path_users, [])
        done.set()
        th.join()
        out["worker_rss_mb_peak"] = [peak[p] for p in pids]
        out["load"] = {k: v for k, v in load.items() if k != "by_tag"}
        out["load_average"] = os.getloadavg()
    except Exception as e:  # noqa: BLE001 - reported, the run goes on
        out["failure"] = f"{type(e).__name__}: {e}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _kill(server)
    return out


# ---------------------------------------------------------------------- main
def _ints(v: str) -> list[int]:
    return [int(float(x)) for x in v.split(",") if x]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_cli":
        return _child_cli(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "_generate":
        out, n_p, n_e, n_u = sys.argv[2:6]
        return _child_generate(Path(out), int(n_p), int(n_e), int(n_u))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=_ints, default=[1_000_000, 3_000_000, 10_000_000], help="events, comma-separated")
    ap.add_argument("--products", type=int, default=100_000)
    ap.add_argument("--users-at-top", type=int, default=1_000_000, help="shoppers at the largest size")
    ap.add_argument("--work", type=Path, default=Path("/tmp/shopsense-scale"))
    ap.add_argument("--trainers", default=",".join(TRAINERS), help=f"comma-separated, of {', '.join(TRAINERS)}")
    ap.add_argument("--skip-spark", action="store_true", help="leave out the spark trainer")
    ap.add_argument("--skip-serving", action="store_true")
    ap.add_argument("--skip-index", action="store_true", help="no `shopsense search-index`")
    ap.add_argument("--serve", default=",".join(TRAINERS), help="whose versions are served (comma-separated)")
    ap.add_argument("--finetune", action="store_true", help="let the local trainer fine-tune the text encoder")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument(
        "--spark-conf",
        action="append",
        default=None,
        help="Spark KEY=VALUE (repeatable; default spark.driver.memory=8g: in local mode it bounds the executors too)",
    )
    ap.add_argument("--als-factors", type=int, default=32)
    ap.add_argument("--als-iterations", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rate", type=int, default=200, help="/recommend requests/s offered")
    ap.add_argument("--load-seconds", type=int, default=30)
    ap.add_argument("--stage-timeout", type=float, default=4 * 3600, help="seconds any one child may run")
    ap.add_argument("--max-rss-gb", type=float, default=None, help="stop a child past this (default 85%% of RAM)")
    ap.add_argument("--sample-s", type=float, default=0.5, help="RSS sampling interval")
    ap.add_argument("--executors", type=_ints, default=[4, 8, 16], help="cluster sizes of the estimate")
    ap.add_argument("--keep", action="store_true", help="keep each size's home")
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--report",
        type=Path,
        nargs="+",
        help="print the report of earlier runs' --json files (their sizes together: one size per run is fine); "
        "run nothing",
    )
    a = ap.parse_args()
    if a.report:
        return print(report_from_json(a.report, a.executors))
    a.trainers = [t for t in a.trainers.split(",") if t and not (a.skip_spark and t == "spark")]
    bad = set(a.trainers) - set(TRAINERS)
    if bad:
        ap.error(f"unknown trainers: {', '.join(sorted(bad))}")
    a.serve = [t for t in a.serve.split(",") if t]
    a.spark_conf = a.spark_conf if a.spark_conf is not None else ["spark.driver.memory=8g"]
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB
    a.max_rss_gb = a.max_rss_gb or round(0.85 * mem_gb, 1)
    a.work.mkdir(parents=True, exist_ok=True)
    for var in ("SHOPSENSE_STORE", "SHOPSENSE_CONFIG", "SHOPSENSE_SETTINGS_JSON"):
        os.environ.pop(var, None)  # every child uses its size's home and embedded store
    os.environ["HF_HUB_OFFLINE"] = "1"
    from server_procs import cpu_model

    t0 = time.monotonic()
    top = max(a.sizes)
    head = {
        "command": "python benchmarks/scale.py " + " ".join(sys.argv[1:]),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(mem_gb, 1),
        "load_average_start": os.getloadavg(),
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": subprocess.run(
            ["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
    }
    print(json.dumps(head), flush=True)
    runs: list[SizeRun] = []
    for events in sorted(a.sizes):
        users = max(1, round(a.users_at_top * events / top))
        if users > events:
            print(f"note: {users:,} shoppers for {events:,} events (lower --users-at-top)", flush=True)
        try:
            runs.append(run_size(a, events, users))
        finally:
            if not a.keep:  # the generated Parquet files stay in --work for the next run
                shutil.rmtree(a.work / f"e{events}" / "home", ignore_errors=True)
        _write(a, head, runs, t0)
    ex = exponents(runs)
    text = render(head, runs, a.trainers, (time.monotonic() - t0) / 60, a.executors)
    print("\n" + text)
    _write(a, head, runs, t0, ex, text)


def _write(a: argparse.Namespace, head: dict, runs: list[SizeRun], t0: float, ex: Any = None, text: str = "") -> None:
    if not a.json:
        return
    a.json.parent.mkdir(parents=True, exist_ok=True)
    out = {
        **head,
        "minutes": round((time.monotonic() - t0) / 60, 1),
        "sizes": [asdict(r) for r in runs],
        "exponents": ex,
        "report": text,
    }
    a.json.write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
