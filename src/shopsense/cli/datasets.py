"""``shopsense datasets list|load``: the public evaluation datasets as files or straight into a knowledge base."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer

from shopsense.cli.context import console, handle_errors, state
from shopsense.cli.main import app
from shopsense.config import data_dir
from shopsense.data.csvfile import write_frame
from shopsense.data.pseudonyms import Pseudonymizer
from shopsense.data.public import DATASETS, PublicDataset, available, load_dataset
from shopsense.store import KnowledgeStore

datasets_app = typer.Typer(help="Public evaluation datasets (from SHOPSENSE_DATA_DIR).", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")

FORMATS = ("csv", "tsv", "parquet", "jsonl")


@datasets_app.command("list")
def list_datasets() -> None:
    """Datasets this version knows, and whether each is present in the data folder."""
    from rich.table import Table

    here = available()
    t = Table(title=f"datasets in {data_dir()}")
    t.add_column("name")
    t.add_column("present")
    t.add_column("what")
    for name, spec in DATASETS.items():
        t.add_row(name, "yes" if here[name] else "no", spec.description)
    console.print(t)


@datasets_app.command("load")
@handle_errors
def load(
    ctx: typer.Context,
    name: str = typer.Argument(..., help=f"one of: {', '.join(DATASETS)}"),
    out: Path | None = typer.Option(None, "--out", help="Write products/events files to this folder."),
    fmt: str = typer.Option("parquet", "--format", help=f"File format for --out: {', '.join(FORMATS)}."),
    into_store: bool = typer.Option(False, "--into-store", help="Load into the knowledge base (--store)."),
) -> None:
    """Turn a public dataset into products and events files, or load it into the knowledge base."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    if out is None and not into_store:
        raise ValueError("say where to put it: --out DIR and/or --into-store")
    ds = load_dataset(name)
    if out is not None:
        for path in write_files(ds, out, fmt):
            console.print(f"wrote {path}")
    if into_store:
        st = state(ctx)
        store = st.store()
        n_products, n_events = load_into_store(ds, store, Pseudonymizer.from_settings(st.settings))
        console.print(f"loaded {name} into {store.safe_url}: {n_products:,} products, {n_events:,} new events")


def write_files(ds: PublicDataset, folder: Path, fmt: str) -> list[Path]:
    """Write the dataset's frames as ``products.<fmt>``, ``events.<fmt>`` (+ ``queries``/``qrels``)."""
    folder.mkdir(parents=True, exist_ok=True)
    frames = {"products": ds.products, "events": ds.events, "queries": ds.queries, "qrels": ds.qrels}
    written = []
    for stem, df in frames.items():
        if df is None or (stem == "events" and df.empty):
            continue
        path = folder / f"{stem}.{fmt}"
        _write(df, path, fmt)
        written.append(path)
    return written


def _write(df: pd.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        df.to_parquet(path, index=False)
    elif fmt == "jsonl":
        df.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        write_frame(df, path, sep="\t" if fmt == "tsv" else ",")


def load_into_store(
    ds: PublicDataset, store: KnowledgeStore, pseudonyms: Pseudonymizer | None = None
) -> tuple[int, int]:
    """Products and events in one transaction (all or nothing), user ids mapped by ``pseudonyms`` as at
    every other entry. Returns (products written, new events)."""
    events = pseudonyms.frame(ds.events) if pseudonyms is not None else ds.events
    with store.transaction() as conn:
        n_products = store.upsert_products(ds.products, conn=conn)
        n_events = store.add_events(events, conn=conn) if len(events) else 0
    return n_products, n_events
