"""Benchmark reports: markdown tables for ``docs/benchmarks.md`` and an HTML page with matplotlib charts.

``results`` is the JSON the benchmark runner keeps (``reports/results.json``):
``{"recommendation": {dataset: {"info": {...}, "models": {name: result}}}, "search": {dataset: {...}},
"environment": {...}}``. Only the sections this module owns (``## Recommendation`` and ``## Search``)
are rewritten in the markdown file; every other section is left as it is.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from shopsense.evaluation.protocol import SLICES

REC_COLUMNS = (
    ("hr@10", "HR@10", 4),
    ("ndcg@10", "NDCG@10", 4),
    ("hr@20", "HR@20", 4),
    ("ndcg@20", "NDCG@20", 4),
    ("coverage@10", "Cov@10", 3),
    ("diversity@10", "ILD@10", 3),
    ("novelty@10", "Novelty@10", 2),
    ("popularity_bias@10", "PopBias@10", 2),
    ("fit_seconds", "fit s", 1),
    ("score_seconds", "score s", 1),
    ("tune_seconds", "tune s", 0),
    ("peak_memory_mb", "peak MB", 0),
)
SEARCH_COLUMNS = (
    ("ndcg@10", "NDCG@10", 4),
    ("recall@100", "Recall@100", 4),
    ("mrr", "MRR", 4),
    ("rerank_ndcg@10", "re-rank NDCG@10", 4),
    ("latency_p50_ms", "p50 ms", 2),
    ("latency_p99_ms", "p99 ms", 2),
    ("fit_seconds", "index s", 1),
)


def _cell(v: Any, digits: int) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "–"
    if isinstance(v, float | int):
        return f"{v:,.{digits}f}"
    return str(v)


def _n(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else "?"


def _at(info: dict[str, Any]) -> str:
    """The commit a dataset's run was measured at (runs of other datasets in the same file may be older)."""
    return f" at commit {info['commit']}" if info.get("commit") else ""


def _params(r: dict[str, Any]) -> str:
    p = r.get("params") or {}
    return ", ".join(f"{k}={v}" for k, v in p.items() if k not in ("seed", "threads")) or "–"


def _table(models: dict[str, dict[str, Any]], columns: tuple, extra: bool = True) -> list[str]:
    head = ["model", *[c[1] for c in columns]] + (["chosen on validation"] if extra else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in models.items():
        cells = [f"**{name}**" if name == "engine" else name, *[_cell(r.get(k), d) for k, _, d in columns]]
        if extra:
            cells.append(_params(r))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def recommendation_section(results: dict[str, Any]) -> str:
    """The ``## Recommendation`` section: one table per dataset, then the slices."""
    env = results.get("environment", {})
    out = ["## Recommendation", ""]
    out += [
        "Leave-one-out on each user's chronological sequence (last item = test, second-to-last = validation),",
        "**full ranking over all items**, every training item of the user masked, a test item that repeats one",
        "too (protocol 2: such a user is a miss for every model; each table says how many). Every model is",
        "tuned on validation with a small grid (fit on the training part), refitted on all but the last item",
        "and scored on the last. Slices: users by training-history length, test targets by training popularity",
        "(≤ 5 = long tail). ILD = intra-list diversity (mean pairwise cosine distance of item vectors: MiniLM text",
        "vectors where the set has titles, S3-Rec attribute sets for Beauty). `pop-all` counts popularity over all",
        "interactions, test included, as the S3-Rec code does: it is the protocol check, not a fair peer.",
        "",
        "Command: `make bench` (= `.venv/bin/python benchmarks/run.py`; each table names the options of its run;",
        f"`--quick` = one setting per peer, no validation grid). Machine: {env.get('machine', '?')}. Timings are",
        "wall seconds on a shared, noisy 2-core machine: compare within one table only.",
        "",
    ]
    if env.get("versions"):
        out += ["Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()), ""]
    for name, block in results.get("recommendation", {}).items():
        info = block.get("info", {})
        out += [f"### {name}", ""]
        if info:
            out += [
                f"{_n(info.get('users'))} users, {_n(info.get('items'))} items, "
                f"{_n(info.get('interactions'))} interactions; {_n(info.get('test_users'))} test users. "
                f"Run {info.get('date', '?')}{_at(info)}"
                f"{' (--quick: one setting per peer, no grid)' if info.get('quick') else ''}."
                + (f" Command: `{info['command']}`." if info.get("command") else "")
                + (f" {info['note']}" if info.get("note") else "")
                + (f" Failed: {info['failed']}." if info.get("failed") else ""),
                "",
            ]
        out += _table(block.get("models", {}), REC_COLUMNS)
        first: dict[str, Any] = next(iter(block.get("models", {}).values()), {})
        if "repeated_targets" in first:
            out += [
                "",
                f"Protocol {first.get('protocol', 1)}; test users whose target repeats a training item: "
                f"{_n(first['repeated_targets'])}.",
            ]
        out += ["", "NDCG@10 by slice (number of test users in brackets):", ""]
        slice_names = list(SLICES)
        head = ["model", *slice_names]
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for m, r in block.get("models", {}).items():
            cells = []
            for s in slice_names:
                v = (r.get("slices") or {}).get(s, {})
                cells.append(f"{_cell(v.get('ndcg@10'), 4)} ({v.get('n', 0):,})")
            out.append("| " + " | ".join([m, *cells]) + " |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def search_section(results: dict[str, Any]) -> str:
    """The ``## Search`` section: one table per search dataset."""
    env = results.get("environment", {})
    out = ["## Search", ""]
    out += [
        "Each query ranks **all** products. Gain = relevance − 1 for judged products (exponential 2^g − 1),",
        "0 for unjudged; ideal DCG from the query's judged products. Recall@100 counts products with",
        "relevance ≥ 2.5; MRR the first such product. Re-rank NDCG@10 orders only each query's judged",
        "products. Latency: one query at a time, in process; the fused peers (RRF, blend) count both",
        "retrievers plus the fusion. The blend's dense weight is tuned on the evaluated split itself",
        "(optimistic for the blend). The engine's search defaults were chosen on halves of Home Depot's",
        "queries (`search_homedepot.py --choose-defaults`, whose held-out numbers are under Search quality),",
        "so on Home Depot this table is not a held-out number for them either.",
        "",
        f"Command: `make bench` (each table names the options of its run). Machine: {env.get('machine', '?')}.",
        "",
    ]
    for name, block in results.get("search", {}).items():
        info = block.get("info", {})
        out += [f"### {name}", ""]
        if info:
            out += [
                f"{_n(info.get('products'))} products, {_n(info.get('queries'))} judged queries. "
                f"Run {info.get('date', '?')}{_at(info)}."
                + (f" Command: `{info['command']}`." if info.get("command") else "")
                + (f" {info['note']}" if info.get("note") else ""),
                "",
            ]
        models = block.get("models", {})
        out += _table(models, SEARCH_COLUMNS, extra=False)
        blend = models.get("blend")
        if blend and blend.get("dense_weight") is not None:
            out += ["", f"Blend dense weight: {blend['dense_weight']} (tuned on {blend.get('tuned_on', '?')})."]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def update_markdown(path: str | Path, sections: dict[str, str], title: str = "# Benchmarks") -> None:
    """Replace (or append) each ``## <name>`` section of ``path``; other sections are kept verbatim."""
    p = Path(path)
    text = p.read_text(encoding="utf-8") if p.exists() else f"{title}\n\n"
    for heading, body in sections.items():
        pattern = re.compile(rf"^## {re.escape(heading)}[ \t]*\n.*?(?=^## |\Z)", re.S | re.M)
        body = body.rstrip() + "\n\n"
        found = pattern.search(text)
        # spliced, not pattern.sub: a body is text, not a replacement template (backslashes stay)
        text = text[: found.start()] + body + text[found.end() :] if found else text.rstrip() + "\n\n" + body
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text.rstrip() + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------- HTML with charts
def _bar(ax: Any, names: list[str], values: list[float], title: str) -> None:
    colors = ["#d62728" if n == "engine" else "#1f77b4" for n in names]
    ax.bar(range(len(names)), [0 if v is None else v for v in values], color=colors)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_title(title, fontsize=9)


def html_report(results: dict[str, Any], out_dir: str | Path, title: str = "shopsense benchmarks") -> Path:
    """Write ``index.html`` and one PNG per chart into ``out_dir``; returns the HTML path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    parts = [f"<h1>{html.escape(title)}</h1>"]
    env = results.get("environment", {})
    parts.append(f"<p>{html.escape(str(env.get('machine', '')))}<br>{html.escape(str(env.get('versions', '')))}</p>")
    for ds, block in results.get("recommendation", {}).items():
        models = block.get("models", {})
        if not models:
            continue
        names = list(models)
        metrics = [
            ("ndcg@10", "NDCG@10 (accuracy)"),
            ("hr@10", "HR@10"),
            ("coverage@10", "catalog coverage@10"),
            ("diversity@10", "intra-list diversity@10"),
            ("novelty@10", "novelty@10 (bits)"),
            ("popularity_bias@10", "popularity bias@10"),
        ]
        fig, axes = plt.subplots(2, 3, figsize=(13, 7))
        for ax, (key, title) in zip(axes.ravel(), metrics, strict=True):
            _bar(ax, names, [models[n].get(key) for n in names], title)
        fig.suptitle(f"{ds}: accuracy, coverage and diversity per model")
        fig.tight_layout()
        fig.savefig(out / f"rec_{_slug(ds)}.png", dpi=90)
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(13, 4))
        slices = list(SLICES)
        width = 0.8 / max(len(names), 1)
        for i, n in enumerate(names):
            vals = [((models[n].get("slices") or {}).get(s) or {}).get("ndcg@10") or 0 for s in slices]
            ax.bar([j + i * width for j in range(len(slices))], vals, width, label=n)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(slices))])
        ax.set_xticklabels(slices, fontsize=8)
        ax.set_title(f"{ds}: NDCG@10 by slice")
        ax.legend(fontsize=7, ncol=4)
        fig.tight_layout()
        fig.savefig(out / f"slices_{_slug(ds)}.png", dpi=90)
        plt.close(fig)
        parts.append(f"<h2>Recommendation: {html.escape(ds)}</h2>")
        parts.append(f'<img src="rec_{_slug(ds)}.png"><br><img src="slices_{_slug(ds)}.png">')
        parts.append(_html_table(models, REC_COLUMNS))
    for ds, block in results.get("search", {}).items():
        models = block.get("models", {})
        if not models:
            continue
        names = list(models)
        fig, axes = plt.subplots(1, 4, figsize=(14, 3.5))
        for ax, (key, title) in zip(
            axes,
            [("ndcg@10", "NDCG@10"), ("recall@100", "Recall@100"), ("mrr", "MRR"), ("latency_p50_ms", "p50 ms")],
            strict=True,
        ):
            _bar(ax, names, [models[n].get(key) for n in names], title)
        fig.suptitle(f"{ds}: search quality and latency")
        fig.tight_layout()
        fig.savefig(out / f"search_{_slug(ds)}.png", dpi=90)
        plt.close(fig)
        parts.append(f'<h2>Search: {html.escape(ds)}</h2><img src="search_{_slug(ds)}.png">')
        parts.append(_html_table(models, SEARCH_COLUMNS))
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}img{max-width:100%}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>"
    )
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _slug(name: str) -> str:
    """A file name for a dataset's chart (a shop's own data is called "this shop")."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _html_table(models: dict[str, dict[str, Any]], columns: tuple) -> str:
    head = "".join(f"<th>{html.escape(c[1])}</th>" for c in columns)
    rows = []
    for name, r in models.items():
        cells = "".join(f"<td>{_cell(r.get(k), d)}</td>" for k, _, d in columns)
        rows.append(f"<tr><th>{html.escape(name)}</th>{cells}</tr>")
    return f"<table><tr><th>model</th>{head}</tr>{''.join(rows)}</table>"
