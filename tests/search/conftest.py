"""Fixtures of the search tests: a tiny hand-made catalog with obvious answers, one MiniLM load."""

from __future__ import annotations

import pandas as pd
import pytest

from shopsense.features.text import TextEncoder
from shopsense.search import SearchEngine

CATALOG = [
    # item_id, title, category, brand, price, available
    (
        "p1",
        "Whirlpool 1.6 cu. ft. Countertop Microwave in Stainless Steel",
        "Kitchen > Microwaves",
        "Whirlpool",
        199.0,
        True,
    ),
    ("p2", "Whirlpool 2.0 cu. ft. Over the Range Microwave in White", "Kitchen > Microwaves", "Whirlpool", 299.0, True),
    ("p3", "Samsung 1.1 cu. ft. Countertop Microwave in Black", "Kitchen > Microwaves", "Samsung", 129.0, False),
    (
        "p4",
        "Whirlpool 25 cu. ft. French Door Refrigerator in Fingerprint Resistant Stainless",
        "Kitchen > Refrigerators",
        "Whirlpool",
        1899.0,
        True,
    ),
    ("p5", "LG 28 cu. ft. Side by Side Refrigerator with Ice Maker", "Kitchen > Refrigerators", "LG", 1599.0, True),
    ("p6", "DEWALT 20-Volt MAX Cordless Drill Driver Kit", "Tools > Power Tools", "DEWALT", 149.0, True),
    ("p7", "Milwaukee M18 18-Volt Cordless Hammer Drill", "Tools > Power Tools", "Milwaukee", 179.0, True),
    ("p8", "Ryobi 18-Volt ONE+ Cordless Drill Driver", "Tools > Power Tools", "Ryobi", 79.0, True),
    ("p9", "Ryobi 18-Volt ONE+ Lithium-Ion 4.0 Ah Battery", "Tools > Batteries", "Ryobi", 99.0, True),
    ("p10", "Ryobi 18-Volt ONE+ Cordless String Trimmer", "Outdoors > Lawn Care", "Ryobi", 129.0, True),
    (
        "p11",
        "SharkBite 1/2 in. x 3/4 in. Brass Push-to-Connect Reducing Coupling",
        "Plumbing > Fittings",
        "SharkBite",
        8.97,
        True,
    ),
    ("p12", "Charlotte Pipe 3/4 in. x 10 ft. PVC Schedule 40 Pipe", "Plumbing > Pipe", "Charlotte Pipe", 6.5, True),
    ("p13", "BEHR Premium 1 gal. Deep Base Satin Exterior Paint", "Paint > Exterior Paint", "BEHR", 38.0, True),
    ("p14", "Rust-Oleum 12 oz. Gloss Black Spray Paint", "Paint > Spray Paint", "Rust-Oleum", 5.98, True),
]


@pytest.fixture(scope="session")
def products() -> pd.DataFrame:
    return pd.DataFrame(CATALOG, columns=["item_id", "title", "category", "brand", "price", "available"])


@pytest.fixture(scope="session")
def minilm() -> TextEncoder:
    enc = TextEncoder()
    enc.encode(["warm up"])
    return enc


@pytest.fixture(scope="session")
def engine(products: pd.DataFrame, minilm: TextEncoder) -> SearchEngine:
    return SearchEngine.build(products, minilm, queries=["whirlpool microwave", "whirlpool microwave", "ryobi battery"])


@pytest.fixture(scope="session")
def lexical_engine(products: pd.DataFrame) -> SearchEngine:
    """BM25 and spelling only (no text encoder): exact candidate sets."""
    return SearchEngine.build(products)
