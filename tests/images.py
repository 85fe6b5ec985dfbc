"""A tiny CLIP the tests build themselves (no weights can be downloaded here) and generated pictures."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.ranking.pipeline import EngineConfig


def make_tiny_clip(folder: Path, seed: int = 0) -> Path:
    """A randomly initialised 2-layer CLIP saved as a Hugging Face folder (model, image processor and a
    character-level tokenizer), laid out like a real one copied with ``huggingface-cli download``."""
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    try:
        from transformers import CLIPImageProcessorPil as Processor
    except ImportError:
        from transformers import CLIPImageProcessor as Processor
    cfg = CLIPConfig(
        text_config={"vocab_size": 80, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 32, "bos_token_id": 0, "eos_token_id": 1,
                     "pad_token_id": 1},
        vision_config={"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 64,
                       "num_hidden_layers": 2, "num_attention_heads": 2},
        projection_dim=16,
    )  # fmt: skip
    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    CLIPModel(cfg).eval().save_pretrained(folder)
    Processor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    chars = "abcdefghijklmnopqrstuvwxyz0123456789"
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    vocab.update({c: i + 2 for i, c in enumerate(chars)})
    vocab.update({c + "</w>": i + 2 + len(chars) for i, c in enumerate(chars)})
    raw = folder / "raw-tokenizer"
    raw.mkdir(exist_ok=True)
    (raw / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (raw / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    CLIPTokenizer(str(raw / "vocab.json"), str(raw / "merges.txt")).save_pretrained(folder)
    return folder


def picture(
    colour: tuple[int, int, int], *, seed: int = 0, size: tuple[int, int] = (48, 64), fmt: str = "PNG"
) -> bytes:
    """A noisy picture of one colour, encoded as ``fmt``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(colour) + rng.normal(0, 20, size=(*size, 3)), 0, 255).astype("uint8")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


# ---------------------------------------------------------------------------- a small shop with pictures
FAST = EngineConfig(
    sequential={"dim": 16, "heads": 1, "layers": 1, "epochs": 1},
    ease={"l2": 1.0},
    refit_epochs=1,
    per_source=10,
)
KINDS = {"kettle": (200, 30, 30), "mug": (30, 30, 200), "lamp": (230, 220, 40), "scarf": (40, 160, 60)}
TEXT_DIM = 384  # MiniLM


def shop_products(pictures: Path) -> pd.DataFrame:
    rows = []
    for kind, colour in KINDS.items():
        for i in range(4):
            item = f"{kind}{i}"
            (pictures / f"{item}.png").write_bytes(picture(colour, seed=i))
            rows.append((item, f"{('red', 'blue', 'steel', 'black')[i]} {kind} model {i}", kind, f"{item}.png"))
    rows[-1] = (*rows[-1][:3], "missing.png")  # one picture that is not there: counted, not fatal
    return pd.DataFrame(rows, columns=[C.ITEM, C.TITLE, C.CATEGORY, C.IMAGE_URL])


def shop_events(users: int) -> pd.DataFrame:
    rows = []
    kinds = list(KINDS)
    for u in range(users):
        kind = kinds[u % len(kinds)]
        for step in range(3):
            rows.append((f"u{u}", f"{kind}{(u + step) % 4}", C.VIEW, 1_750_000_000.0 + 3600 * u + 60 * step))
    return pd.DataFrame(rows, columns=[C.USER, C.ITEM, C.EVENT_TYPE, C.TIMESTAMP])


def image_shop(home: Path, clip: Path, weights: list[float] | None = None) -> tuple[Any, Any, Any]:
    """A shop whose pictures live in ``home/media`` (relative image_url values resolve against it),
    trained with the tiny CLIP: (store, settings, TrainResult)."""
    from shopsense.config import load_settings
    from shopsense.store import open_store
    from shopsense.training import train

    settings = load_settings(home=home, images={"model": str(clip), "weights": weights or [0.3, 0.5]})
    store = open_store(settings.store_url)
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    store.upsert_products(shop_products(settings.media_dir))
    store.add_events(shop_events(24))
    return store, settings, train(store, settings, config=FAST)
