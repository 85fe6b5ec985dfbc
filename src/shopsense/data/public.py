"""The public evaluation datasets in ``SHOPSENSE_DATA_DIR`` (default ``../shared/data``), as frames.

Each loader returns products and events in the engine's own schema, so the same code path serves a
shop's files and the benchmarks. The sequence datasets carry no timestamps: events get increasing
synthetic timestamps inside each user's sequence (one day apart) so chronology is kept exactly.

Originals for users with internet (the data may not be redistributed with the project):

- scientific: UniSRec's Amazon 2018 Industrial & Scientific split (RUCAIBox/UniSRec, dataset links in its README)
- videogames: LLMRank's Amazon 2018 Video Games split (github.com/RUCAIBox/LLMRank, ``llmrank/dataset/Games``)
- beauty / sports / toys: S3-Rec's Amazon 2014 5-core sequences (github.com/RUCAIBox/CIKM2020-S3Rec, ``data/``)
- movielens-100k: https://grouplens.org/datasets/movielens/100k/
- homedepot: Kaggle "Home Depot Product Search Relevance" (2016) ``train.csv``
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.config import data_dir
from shopsense.exceptions import DatasetNotFoundError

_BASE_TS = 1_400_000_000.0  # synthetic clock start for datasets without timestamps
_DAY = 86_400.0


@dataclass
class PublicDataset:
    """Products, events and (search sets) queries and graded judgements of one public dataset."""

    name: str
    products: pd.DataFrame
    events: pd.DataFrame
    has_text: bool = True  # False: product titles are placeholders (ids), not text to embed
    queries: pd.DataFrame | None = None  # query_id, query
    qrels: pd.DataFrame | None = None  # query_id, item_id, relevance
    description: str = ""
    notes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Spec:
    folder: str
    description: str
    loader: Callable[[Path], PublicDataset]


def _sequence_events(users: list[str], sequences: list[list[str]], event_type: str = C.PURCHASE) -> pd.DataFrame:
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    pos = np.concatenate([np.arange(n) for n in lengths]) if len(lengths) else np.zeros(0)
    return pd.DataFrame(
        {
            C.USER: np.repeat(np.asarray(users, dtype=object), lengths),
            C.ITEM: np.concatenate([np.asarray(s, dtype=object) for s in sequences]) if sequences else [],
            C.EVENT_TYPE: event_type,
            C.TIMESTAMP: _BASE_TS + pos * _DAY,
        }
    )


def _read_sequences_tsv(path: Path) -> tuple[list[str], list[list[str]]]:
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    return df["user_id"].tolist(), [s.split() for s in df["item_id_sequence"]]


def _split_unisrec_text(text: str) -> tuple[str, str | None, str | None]:
    """UniSRec item text is ``title. category. brand.``; split from the right, keep it all if unsure."""
    body = text.strip().rstrip(".").strip()
    parts = body.rsplit(". ", 2)
    if len(parts) < 3:
        return body, None, None
    title, category, brand = (p.strip().rstrip(".").strip() for p in parts)
    return title or body, category or None, brand or None


def _scientific(folder: Path) -> PublicDataset:
    text = pd.read_csv(folder / "Scientific.text", sep="\t", dtype=str, keep_default_na=False, quoting=3)
    idx2asin = pd.read_csv(folder / "Scientific.item2index", sep="\t", header=None, dtype=str, names=["asin", "idx"])
    idx2user = pd.read_csv(folder / "Scientific.user2index", sep="\t", header=None, dtype=str, names=["uid", "idx"])
    split = [_split_unisrec_text(t) for t in text["text:token_seq"]]
    products = pd.DataFrame(
        {
            C.ITEM: text["item_id:token"].to_numpy(dtype=object),
            C.TITLE: [s[0] for s in split],
            C.CATEGORY: [s[1] for s in split],
            C.BRAND: [s[2] for s in split],
        }
    )
    item_of = dict(zip(idx2asin["idx"], idx2asin["asin"], strict=True))
    user_of = dict(zip(idx2user["idx"], idx2user["uid"], strict=True))
    users, seqs = _read_sequences_tsv(folder / "Scientific.full_sequences.tsv")
    events = _sequence_events([user_of[u] for u in users], [[item_of[i] for i in s] for s in seqs])
    return PublicDataset("scientific", products, events, description="Amazon 2018 Industrial & Scientific (UniSRec)")


def _videogames(folder: Path) -> PublicDataset:
    items = pd.read_csv(folder / "Games.item", sep="\t", dtype=str, keep_default_na=False, quoting=3)
    products = pd.DataFrame(
        {
            C.ITEM: items["item_id:token"].to_numpy(dtype=object),
            C.TITLE: items["title:token_seq"].to_numpy(dtype=object),
        }
    )
    users, seqs = _read_sequences_tsv(folder / "Games.full_sequences.tsv")
    events = _sequence_events(users, seqs)
    return PublicDataset("videogames", products, events, description="Amazon 2018 Video Games (LLMRank)")


def _s3rec(stem: str, name: str) -> Callable[[Path], PublicDataset]:
    def load(folder: Path) -> PublicDataset:
        users: list[str] = []
        seqs: list[list[str]] = []
        with open(folder / f"{stem}.txt", encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if parts:
                    users.append(parts[0])
                    seqs.append(parts[1:])
        item_ids = sorted({i for s in seqs for i in s}, key=int)
        maps = folder / f"{stem}_datamaps.json"
        asin = json.loads(maps.read_text())["id2item"] if maps.exists() else {}
        # No titles exist for these sets: the title is a placeholder (ASIN where known) and has_text=False.
        products = pd.DataFrame({C.ITEM: item_ids, C.TITLE: [asin.get(i, f"item {i}") for i in item_ids]})
        return PublicDataset(
            name,
            products,
            _sequence_events(users, seqs),
            has_text=False,
            description=f"Amazon 2014 {stem} 5-core (S3-Rec)",
        )

    return load


def _movielens(folder: Path) -> PublicDataset:
    genres = [g.split("|")[0] for g in (folder / "u.genre").read_text(encoding="latin-1").splitlines() if g.strip()]
    cols = ["item", "title", "release", "video", "url", *genres]
    items = pd.read_csv(folder / "u.item", sep="|", header=None, names=cols, encoding="latin-1", dtype=str)
    flags = items[genres].astype(int).to_numpy()
    category = [", ".join(g for g, f in zip(genres, row, strict=True) if f) or None for row in flags]
    products = pd.DataFrame(
        {C.ITEM: items["item"].to_numpy(dtype=object), C.TITLE: items["title"], C.CATEGORY: category}
    )
    data = pd.read_csv(folder / "u.data", sep="\t", header=None, names=["u", "i", "r", "t"], dtype={"u": str, "i": str})
    events = pd.DataFrame(
        {
            C.USER: data["u"].to_numpy(dtype=object),
            C.ITEM: data["i"].to_numpy(dtype=object),
            C.EVENT_TYPE: C.RATING,
            C.VALUE: data["r"].astype(float),
            C.TIMESTAMP: data["t"].astype(float),
        }
    )
    return PublicDataset("movielens-100k", products, events, description="MovieLens 100K ratings")


def _homedepot(folder: Path) -> PublicDataset:
    prod = pd.read_csv(folder / "products.tsv", sep="\t", dtype=str, keep_default_na=False, quoting=3)
    products = pd.DataFrame(
        {C.ITEM: prod["product_uid"].to_numpy(dtype=object), C.TITLE: prod["product_title"].to_numpy(dtype=object)}
    )
    queries = pd.read_csv(folder / "queries.tsv", sep="\t", dtype=str, keep_default_na=False, quoting=3)
    qrels = pd.read_csv(folder / "qrels.tsv", sep="\t", dtype={"query_id": str, "product_uid": str})
    qrels = pd.DataFrame(
        {"query_id": qrels["query_id"], C.ITEM: qrels["product_uid"], "relevance": qrels["relevance"].astype(float)}
    )
    events = pd.DataFrame({c: pd.Series(dtype=object) for c in (C.USER, C.ITEM, C.EVENT_TYPE)}).assign(
        **{C.TIMESTAMP: pd.Series(dtype=float)}
    )
    return PublicDataset(
        "homedepot",
        products,
        events,
        queries=queries[["query_id", "query"]],
        qrels=qrels,
        description="Home Depot search relevance (development split)",
    )


DATASETS: dict[str, _Spec] = {
    "scientific": _Spec("amazon-scientific-unisrec", "Amazon 2018 Industrial & Scientific, item text", _scientific),
    "videogames": _Spec("amazon-videogames-llmrank", "Amazon 2018 Video Games, item titles", _videogames),
    "beauty": _Spec(
        "amazon-beauty-sports-toys-s3rec", "Amazon 2014 Beauty 5-core, no titles", _s3rec("Beauty", "beauty")
    ),
    "sports": _Spec(
        "amazon-beauty-sports-toys-s3rec",
        "Amazon 2014 Sports 5-core, no titles",
        _s3rec("Sports_and_Outdoors", "sports"),
    ),
    "toys": _Spec(
        "amazon-beauty-sports-toys-s3rec", "Amazon 2014 Toys 5-core, no titles", _s3rec("Toys_and_Games", "toys")
    ),
    "movielens-100k": _Spec("movielens-100k", "MovieLens 100K ratings with titles and genres", _movielens),
    "homedepot": _Spec("homedepot-search-relevance", "Home Depot search queries, titles, graded labels", _homedepot),
}


def available(data_folder: str | Path | None = None) -> dict[str, bool]:
    """Which datasets are present in the data folder."""
    base = Path(data_folder) if data_folder else data_dir()
    return {name: (base / spec.folder).is_dir() for name, spec in DATASETS.items()}


def load_dataset(name: str, data_folder: str | Path | None = None) -> PublicDataset:
    """Load one public dataset by name (see :data:`DATASETS`) from the data folder."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    spec = DATASETS[name]
    folder = (Path(data_folder) if data_folder else data_dir()) / spec.folder
    if not folder.is_dir():
        raise DatasetNotFoundError(
            f"dataset {name!r} not found at {folder}; set SHOPSENSE_DATA_DIR to the folder holding {spec.folder}/"
        )
    return spec.loader(folder)
