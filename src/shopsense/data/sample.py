"""A small SYNTHETIC shop for the demo and tests: products and simulated shoppers with consistent tastes.

The real datasets may not be redistributed, so the project ships this generated one instead
(``src/shopsense/sample/``; regenerate with ``python -m shopsense.data.sample``). Every title,
brand and shopper in it is made up. Its product pictures are generated too (:func:`picture`: a shape
per category, a colour per kind of product), written by ``shopsense init --sample-pictures``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.data.csvfile import write_frame

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample"

# category path -> (nouns, brands, (min price, max price), descriptive words)
CATALOG: dict[str, tuple[list[str], list[str], tuple[float, float], list[str]]] = {
    "Kitchen > Coffee": (
        ["espresso machine", "coffee grinder", "pour-over kettle", "french press", "milk frother"],
        ["Brewmaster", "Crema", "Bean & Co"],
        (19, 499),
        ["stainless", "compact", "programmable", "ceramic burr", "barista"],
    ),
    "Kitchen > Cookware": (
        ["frying pan", "saucepan", "dutch oven", "wok", "knife set"],
        ["IronChef", "Panwise", "Cuisina"],
        (15, 250),
        ["non-stick", "cast iron", "induction-ready", "copper core", "oven-safe"],
    ),
    "Kitchen > Appliances": (
        ["microwave", "toaster", "blender", "air fryer", "slow cooker"],
        ["Whirlpool", "Kitchenly", "Voltix"],
        (25, 400),
        ["countertop", "1000 W", "digital", "family size", "quiet"],
    ),
    "Electronics > Audio": (
        ["wireless headphones", "earbuds", "bluetooth speaker", "soundbar", "turntable"],
        ["Sonora", "BassLab", "Auralis"],
        (20, 350),
        ["noise-cancelling", "waterproof", "hi-fi", "portable", "long battery"],
    ),
    "Electronics > Computers": (
        ["laptop stand", "mechanical keyboard", "wireless mouse", "usb-c hub", "27 inch monitor"],
        ["Keyforge", "Pixelon", "Dockly"],
        (15, 420),
        ["ergonomic", "rgb", "aluminium", "4k", "low-profile"],
    ),
    "Outdoor > Camping": (
        ["tent", "sleeping bag", "camping stove", "headlamp", "backpack"],
        ["TrailPeak", "NorthCamp", "Wildway"],
        (12, 380),
        ["ultralight", "3-season", "waterproof", "insulated", "rechargeable"],
    ),
    "Outdoor > Cycling": (
        ["bike helmet", "bike light", "cycling gloves", "bike lock", "water bottle cage"],
        ["Velo", "Spokes", "RideOn"],
        (8, 160),
        ["aero", "reflective", "carbon", "breathable", "heavy-duty"],
    ),
    "Beauty > Skincare": (
        ["face serum", "moisturiser", "sunscreen spf 50", "cleanser", "eye cream"],
        ["Lumiere", "PureLeaf", "Dermaline"],
        (6, 90),
        ["hydrating", "fragrance-free", "vitamin c", "gentle", "organic"],
    ),
    "Toys > Building": (
        ["building blocks set", "marble run", "magnetic tiles", "robot kit", "train set"],
        ["Brickly", "Tinkerbox", "PlayForge"],
        (10, 180),
        ["500-piece", "stem", "creative", "starter", "deluxe"],
    ),
}

FUNNEL = ((C.VIEW, 1.0), (C.CLICK, 0.45), (C.ADD_TO_CART, 0.35), (C.PURCHASE, 0.5))

#: where the sample's pictures live under the media folder (``image_url`` = ``sample/<item>.png``)
PICTURES = "sample"
#: a shape per category (in CATALOG's order) and a colour per noun (in each category's order)
SHAPES = ("circle", "square", "triangle", "diamond", "bar", "ring", "cross", "hexagon", "stack")
COLOURS = ((200, 55, 50), (45, 110, 200), (60, 160, 80), (230, 170, 30), (130, 70, 170))


def make_products(rng: np.random.Generator, per_category: int = 40) -> pd.DataFrame:
    """Products with titles, descriptions, brands, category paths and prices."""
    rows: list[dict[str, object]] = []
    n = 0
    for category, (nouns, brands, (lo, hi), words) in CATALOG.items():
        for _ in range(per_category):
            noun = nouns[rng.integers(len(nouns))]
            brand = brands[rng.integers(len(brands))]
            adj = rng.choice(words, size=2, replace=False)
            model = f"{chr(65 + rng.integers(26))}{rng.integers(100, 999)}"
            price = float(np.round(np.exp(rng.uniform(np.log(lo), np.log(hi))), 2))
            n += 1
            rows.append(
                {
                    C.ITEM: f"P{n:04d}",
                    C.TITLE: f"{brand} {adj[0]} {noun} {model}",
                    C.DESCRIPTION: f"A {adj[0]}, {adj[1]} {noun} from {brand}. Synthetic demo product.",
                    C.CATEGORY: category,
                    C.BRAND: brand,
                    C.PRICE: price,
                    C.TAGS: "|".join(sorted({adj[0], adj[1], noun.split()[-1]})),
                    C.AVAILABLE: bool(rng.random() > 0.05),
                    C.IMAGE_URL: f"{PICTURES}/P{n:04d}.png",
                }
            )
    return pd.DataFrame(rows)


def make_events(rng: np.random.Generator, products: pd.DataFrame, n_users: int = 300, days: int = 60) -> pd.DataFrame:
    """Shoppers with one or two favourite categories and a favourite brand, browsing in sessions."""
    cats = list(CATALOG)
    start = pd.Timestamp("2026-09-01T00:00:00Z").timestamp()
    by_cat = {c: products[products[C.CATEGORY] == c] for c in cats}
    rows: list[tuple[str, str | None, str, float, str, str | None]] = []
    for u in range(n_users):
        favs = list(rng.choice(cats, size=int(rng.integers(1, 3)), replace=False))
        fav_brand = {c: CATALOG[c][1][rng.integers(3)] for c in favs}
        t = start + rng.uniform(0, days * 86400 * 0.3)
        for s in range(int(rng.integers(1, 5))):
            session = f"s{u:03d}-{s}"
            cat = favs[rng.integers(len(favs))] if rng.random() < 0.9 else cats[rng.integers(len(cats))]
            pool = by_cat[cat]
            weight = np.where(pool[C.BRAND] == fav_brand.get(cat), 4.0, 1.0)
            if rng.random() < 0.4:  # some sessions start with a search
                noun = CATALOG[cat][0][rng.integers(5)]
                rows.append((f"U{u:03d}", None, C.SEARCH, t, session, noun))
                t += rng.uniform(5, 60)
            for item in rng.choice(
                pool[C.ITEM].to_numpy(), size=int(rng.integers(2, 7)), replace=False, p=weight / weight.sum()
            ):
                for etype, p in FUNNEL:
                    if rng.random() > p:
                        break
                    rows.append((f"U{u:03d}", item, etype, t, session, None))
                    t += rng.uniform(5, 120)
            t += rng.uniform(3600, 86400 * 5)
    ev = pd.DataFrame(rows, columns=[C.USER, C.ITEM, C.EVENT_TYPE, C.TIMESTAMP, C.SESSION, C.QUERY])
    ev = ev.sort_values(C.TIMESTAMP, kind="stable").reset_index(drop=True)
    ev[C.TIMESTAMP] = pd.to_datetime(ev[C.TIMESTAMP], unit="s", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return ev


def picture(category: str, noun: str, brand: str, size: int = 96) -> bytes:
    """A small generated product picture (a PNG of a few hundred bytes): the category's shape in the
    noun's colour on a tint of the brand, so pictures of one kind of product look alike."""
    import io

    from PIL import Image, ImageDraw

    cats = list(CATALOG)
    nouns, brands, _, _ = CATALOG[category]
    shape = SHAPES[cats.index(category) % len(SHAPES)]
    colour = COLOURS[nouns.index(noun) % len(COLOURS)] if noun in nouns else COLOURS[0]
    tint = 235 - 12 * (brands.index(brand) if brand in brands else 0)
    im = Image.new("RGB", (size, size), (tint, tint, 245))
    d = ImageDraw.Draw(im)
    a, b, m = size * 0.2, size * 0.8, size / 2
    if shape == "circle":
        d.ellipse((a, a, b, b), fill=colour)
    elif shape == "square":
        d.rectangle((a, a, b, b), fill=colour)
    elif shape == "triangle":
        d.polygon([(m, a), (b, b), (a, b)], fill=colour)
    elif shape == "diamond":
        d.polygon([(m, a), (b, m), (m, b), (a, m)], fill=colour)
    elif shape == "bar":
        d.rectangle((a, m - size * 0.12, b, m + size * 0.12), fill=colour)
    elif shape == "ring":
        d.ellipse((a, a, b, b), outline=colour, width=max(2, size // 10))
    elif shape == "cross":
        d.rectangle((m - size * 0.1, a, m + size * 0.1, b), fill=colour)
        d.rectangle((a, m - size * 0.1, b, m + size * 0.1), fill=colour)
    elif shape == "hexagon":
        d.regular_polygon((m, m, size * 0.32), 6, fill=colour)
    else:  # stack
        for i in range(3):
            top = a + i * size * 0.2
            d.rectangle((a + i * size * 0.05, top, b - i * size * 0.05, top + size * 0.15), fill=colour)
    buf = io.BytesIO()
    im.quantize(colors=8).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def write_pictures(products: pd.DataFrame, media: Path) -> int:
    """Write the sample's pictures (``image_url`` = ``sample/<item>.png``) under the media folder
    ``media``; returns how many. Deterministic: the same products give the same bytes."""
    n = 0
    for row in products.itertuples(index=False):
        url = getattr(row, C.IMAGE_URL, None)
        if not isinstance(url, str) or not url.startswith(PICTURES + "/"):
            continue
        title, category, brand = str(getattr(row, C.TITLE)), str(getattr(row, C.CATEGORY)), str(getattr(row, C.BRAND))
        noun = next((x for x in CATALOG.get(category, ([], [], (0, 0), []))[0] if x in title), "")
        if category not in CATALOG:
            continue
        path = media / url
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(picture(category, noun, brand))
        n += 1
    return n


def sample_pictures(media: Path) -> int:
    """The shipped sample shop's pictures written under ``media`` (``shopsense init --sample-pictures``)."""
    return write_pictures(pd.read_csv(sample_paths()[0]), media)


def generate(folder: Path = SAMPLE_DIR, seed: int = 7) -> tuple[Path, Path]:
    """Write ``products.csv`` and ``events.csv`` of the synthetic shop into ``folder``."""
    rng = np.random.default_rng(seed)
    products = make_products(rng)
    events = make_events(rng, products)
    folder.mkdir(parents=True, exist_ok=True)
    p, e = folder / "products.csv", folder / "events.csv"
    write_frame(products, p)
    write_frame(events, e)
    return p, e


def sample_paths() -> tuple[Path, Path]:
    """Paths of the shipped sample shop files."""
    return SAMPLE_DIR / "products.csv", SAMPLE_DIR / "events.csv"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=SAMPLE_DIR)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    for path in generate(args.out, args.seed):
        print(f"wrote {path}")
