"""``shopsense experiment start|list|report|stop``: online experiments (the CLI side of
``/experiments``). Running servers pick a change up at their next poll of the served versions."""

from __future__ import annotations

import json
import time
from typing import Any

import typer

from shopsense.cli.context import handle_errors, state
from shopsense.cli.main import app

experiment_app = typer.Typer(
    help="Online experiments: serve versions side by side (A/B or interleaved) and compare them.",
    no_args_is_help=True,
)
app.add_typer(experiment_app, name="experiment")

AFTER = "running servers pick it up within seconds"


@experiment_app.command("start")
@handle_errors
def start(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A new name: letters, digits, '_', '.', '-'."),
    arm: list[str] = typer.Option(
        ..., "--arm", help="NAME=VERSION, given once per arm; the first is the control (e.g. control=V1)."
    ),
    split: str | None = typer.Option(
        None, "--split", help="Weights per arm in --arm order, e.g. 50,50 (default: equal)."
    ),
    surface: str = typer.Option(
        "recommend",
        "--surface",
        help="recommend (every recommendation list), search, both/all (those and search), or one list: "
        "for_you, continue_shopping, buy_again, bought_together, complete_the_cart.",
    ),
    mode: str = typer.Option(
        "ab", "--mode", help="ab (each user sticks to one arm) or interleave (two arms' lists merged)."
    ),
) -> None:
    """Start experiment NAME: serve each arm's model version to its share of users."""
    from shopsense import experiments

    st = state(ctx)
    exp = experiments.start(
        st.store(create=False), st.settings.home, name, arm, split=split, surface=surface, mode=mode
    )
    arms = ", ".join(f"{a.name}={a.version} ({a.weight:g})" for a in exp.arms)
    typer.echo(f"experiment {exp.name} started ({exp.mode} on {exp.surface}): {arms}; {AFTER}")


@experiment_app.command("list")
@handle_errors
def list_(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print one JSON object per line.")
) -> None:
    """Every experiment, oldest first."""
    from shopsense import experiments

    found = experiments.list_experiments(state(ctx).store(create=False))
    if as_json:
        for e in found:
            typer.echo(json.dumps(e.as_dict()))
        return
    if not found:
        typer.echo("no experiments: start one with `shopsense experiment start`")
        return
    for e in found:
        began = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.started_at))
        arms = " ".join(f"{a.name}={a.version}" for a in e.arms)
        typer.echo(f"{e.name}  {e.status:8}  {e.mode:10}  {e.surface:9}  {began}  {arms}")


@experiment_app.command("report")
@handle_errors
def report(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The experiment (`experiment list`)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON (arms.<name>, comparison)."),
) -> None:
    """Per arm: users, impressions, CTR, add-to-cart and conversion rates, revenue per 1,000
    impressions with 95% intervals; each treatment against the control; the sample-ratio check."""
    from shopsense.evaluation.experiments import experiment_report

    rep = experiment_report(state(ctx).store(create=False), name)
    if as_json:
        typer.echo(json.dumps(rep, indent=2))
        return
    typer.echo(_text(rep))


@experiment_app.command("stop")
@handle_errors
def stop(ctx: typer.Context, name: str = typer.Argument(..., help="A running experiment.")) -> None:
    """Stop experiment NAME: its users get the default version again (its report stays)."""
    from shopsense import experiments

    exp = experiments.stop(state(ctx).store(create=False), name)
    typer.echo(f"experiment {exp.name} stopped; {AFTER}")


def _text(rep: dict[str, Any]) -> str:
    exp, cmp = rep["experiment"], rep["comparison"]
    lines = [f"experiment {exp['name']} ({exp['status']}, {exp['mode']} on {exp['surface']})"]
    for name, a in rep["arms"].items():
        lines.append(f"  {name} ({a['version']}): {a['users']} users, {a['impressions']} impressions")
        for m in ("ctr", "add_to_cart_rate", "conversion_rate", "revenue_per_1000"):
            lines.append(f"    {m:17} {_ci(a[m])}")
    for name, metrics in cmp["arms"].items():
        lines.append(f"  {name} vs {cmp['control']}:")
        for m, c in metrics.items():
            rel = "n/a" if c["relative_difference"] is None else f"{c['relative_difference']:+.1%}"
            p = "n/a" if c["p_value"] is None else f"{c['p_value']:.4f}"
            lines.append(f"    {m:17} {rel:>8}  p={p}")
    if "interleaving" in cmp:
        il = cmp["interleaving"]
        wins = ", ".join(f"{k} {v}" for k, v in il["wins"].items())
        p = "n/a" if il["p_value"] is None else f"{il['p_value']:.4f}"
        lines.append(f"  interleaving: {il['requests']} requests, wins {wins}, ties {il['ties']}, sign test p={p}")
    srm = cmp["srm"]
    verdict = "MISMATCH: do not trust this report" if srm["mismatch"] else "ok"
    p = "n/a" if srm["p_value"] is None else f"{srm['p_value']:.4g}"
    lines.append(
        f"  sample ratio: observed {srm['observed']} vs expected {[round(x, 1) for x in srm['expected']]}: p={p} {verdict}"
    )
    return "\n".join(lines)


def _ci(m: dict[str, Any]) -> str:
    if m["value"] is None:
        return "n/a"
    if m["ci_low"] is None:
        return f"{m['value']:.4f}"
    return f"{m['value']:.4f}  [{m['ci_low']:.4f}, {m['ci_high']:.4f}]"
