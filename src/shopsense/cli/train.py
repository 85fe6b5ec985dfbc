"""``shopsense train [--incremental] [--engine local|spark]``: fit every model and the ranker, publish a
new model version (on this machine, or the sparse sources on a Spark cluster)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from shopsense.cli.context import console, err_console, fail, handle_errors, state
from shopsense.cli.main import app

ENGINES = ("local", "spark")


@app.command()
@handle_errors
def train(
    ctx: typer.Context,
    incremental: bool = typer.Option(
        False, "--incremental", help="Warm-start from the served version and learn from the events since."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
    engine: str = typer.Option(
        "local",
        "--engine",
        help='local: this process; spark: the sparse sources on Spark ([engine] sources = "sparse").',
    ),
    master: str | None = typer.Option(
        None, "--master", help="Spark master URL (local[2], spark://HOST:7077, ...); --engine spark only."
    ),
    conf: list[str] | None = typer.Option(
        None, "--conf", help="Spark setting KEY=VALUE, e.g. spark.driver.memory=4g (repeatable); --engine spark only."
    ),
    snapshot: Path | None = typer.Option(
        None,
        "--snapshot",
        help="Parquet snapshot to read (`shopsense export`); default: exported now; --engine spark only.",
    ),
    read: str = typer.Option(
        "parquet",
        "--read",
        help="How Spark reads the store: parquet (a snapshot, exported now unless --snapshot) or jdbc "
        "(PostgreSQL read by the executors; needs PostgreSQL's JDBC jar, docs/deploy.md); --engine spark only.",
    ),
    torch_processes: int = typer.Option(
        1,
        "--torch-processes",
        min=1,
        help="PyTorch processes training the sequential model together (TorchDistributor; each takes a "
        "task slot on the executors); --engine spark only.",
    ),
) -> None:
    """Train on the knowledge base and activate the new version (the old one stays served if this fails)."""
    st = state(ctx)
    t0 = time.perf_counter()

    def say(msg: str) -> None:
        err_console.print(f"[dim]{time.perf_counter() - t0:7.1f}s[/dim] {msg}", highlight=False)

    if engine not in ENGINES:
        raise fail(f"unknown engine {engine!r}; valid engines: {', '.join(ENGINES)}")
    if engine == "local" and (master or conf or snapshot or read != "parquet" or torch_processes != 1):
        raise fail("--master, --conf, --snapshot, --read and --torch-processes are for --engine spark")
    if engine == "spark":
        if incremental:
            raise fail("--incremental is for the local trainer; the Spark trainer fits everything again")
        from shopsense.distributed.job import train_on_spark
        from shopsense.distributed.session import parse_conf

        result = train_on_spark(
            st.store(create=False),
            st.settings,
            master=master,
            conf=parse_conf(conf),
            snapshot=snapshot,
            read=read,
            progress=say,
            torch_processes=torch_processes,
        )
    else:
        from shopsense.training import train as run_training

        result = run_training(st.store(create=False), st.settings, incremental=incremental, progress=say)
    summary = {"version": result.version, "path": str(result.path), **result.metrics}
    if as_json:
        typer.echo(json.dumps(summary, default=str))
        return
    console.print(f"trained version [bold]{result.version}[/bold] in {result.metrics['train_seconds']:.1f}s")
    for key in ("n_users", "n_items", "n_interactions", "heldout_ndcg@10_fusion", "heldout_ndcg@10_single"):
        if key in result.metrics:
            console.print(f"  {key}: {result.metrics[key]}", highlight=False)
    out = result.metrics.get("outcomes")
    if isinstance(out, dict):  # what the ranker learned from logged outcomes, and whether it serves
        gain = f", held-out NDCG@10 gain {out['heldout_gain']:+.4f}" if "heldout_gain" in out else ""
        console.print(
            f"  outcomes: {out.get('lists', 0)} logged lists, {out.get('impressions', 0)} impressions{gain}: "
            f"{out.get('chosen', '')}",
            highlight=False,
        )
