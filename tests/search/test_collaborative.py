"""Collaborative affinity in search personalisation: the crowd's item -> item links from the user's
recent items lift candidates whose text is unlike that history."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from shopsense import columns as C
from shopsense.config import load_settings
from shopsense.data.dataset import Dataset
from shopsense.models.covisit import CoVisitModel
from shopsense.search import SearchEngine, build_from_store
from shopsense.search.collaborative import ItemAffinity, active_affinity, load_item_affinity
from shopsense.store import KnowledgeStore
from shopsense.versions import write_manifest

X = "p6"  # the DEWALT drill: last of the three drills for "cordless drill" without personalisation


def _crowd(products: pd.DataFrame) -> pd.DataFrame:
    """Six shoppers who bought spray paint (p14) and then the DEWALT drill; two buy other things."""
    rows = []
    for u in range(6):
        rows += [(f"c{u}", "p14", C.VIEW, 100.0 * u), (f"c{u}", X, C.PURCHASE, 100.0 * u + 1)]
    rows += [("o1", "p1", C.VIEW, 1.0), ("o1", "p2", C.VIEW, 2.0), ("o2", "p9", C.VIEW, 3.0), ("o2", "p8", C.VIEW, 4)]
    return pd.DataFrame(rows, columns=[C.USER, C.ITEM, C.EVENT_TYPE, C.TIMESTAMP])


@pytest.fixture(scope="module")
def covisit(products: pd.DataFrame) -> tuple[CoVisitModel, Dataset]:
    ds = Dataset.from_frames(_crowd(products), products)
    return CoVisitModel().fit(ds), ds


@pytest.fixture
def painter(sqlite_store: KnowledgeStore) -> KnowledgeStore:
    """A user who bought paint only: nothing in their history reads like a drill."""
    ev = pd.DataFrame(
        {C.USER: "painter", C.ITEM: ["p13", "p14"], C.EVENT_TYPE: C.PURCHASE, C.TIMESTAMP: [1000.0, 1001.0]}
    )
    sqlite_store.add_events(ev)
    return sqlite_store


@pytest.fixture
def with_links(engine: SearchEngine, covisit: tuple[CoVisitModel, Dataset]) -> Iterator[SearchEngine]:
    model, ds = covisit
    engine.use_affinity(ItemAffinity.from_model(model, ds.items))
    yield engine
    engine.use_affinity(None)  # the engine fixture is shared by the whole session


def test_crowd_links_move_a_product_up(with_links: SearchEngine, painter: KnowledgeStore) -> None:
    anonymous = with_links.search("cordless drill", k=3).items
    assert anonymous[0] != X and X in anonymous
    personal = with_links.search("cordless drill", user_id="painter", k=3, store=painter).items
    assert personal[0] == X
    assert set(personal) == set(anonymous)  # re-ordered, not different products
    # content alone (no trained model) does not know that painters buy this drill
    with_links.use_affinity(None)
    assert with_links.search("cordless drill", user_id="painter", k=3, store=painter).items[0] != X


def test_weight_zero_turns_it_off(with_links: SearchEngine, painter: KnowledgeStore) -> None:
    old = with_links.config.collaborative_weight
    with_links.config.collaborative_weight = 0.0
    try:
        assert with_links.search("cordless drill", user_id="painter", k=3, store=painter).items[0] != X
    finally:
        with_links.config.collaborative_weight = old


def test_scores_only_for_candidates_with_recency() -> None:
    # a -> c strongly, b -> d; history a (old) then b (new): d beats c once recency is strong enough
    sim = sp.csr_matrix(np.array([[0, 0, 1.0, 0], [0, 0, 0, 0.8], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    aff = ItemAffinity(sim, ["a", "b", "c", "d"], "covisit")
    flat = aff.scores(["a", "b"], [1.0, 1.0], ["c", "d", "unknown"])
    assert flat.tolist() == pytest.approx([1.0, 0.8, 0.0])
    recent = aff.scores(["a", "b"], [0.5, 1.0], ["d", "c"])
    assert recent.tolist() == pytest.approx([1.0, 0.625])
    assert aff.scores(["nobody-knows"], [1.0], ["c"]).tolist() == [0.0]


def test_links_come_from_the_active_model_version(
    products: pd.DataFrame, covisit: tuple[CoVisitModel, Dataset], painter: KnowledgeStore, tmp_path: Path
) -> None:
    settings = load_settings(home=tmp_path / "home")
    painter.upsert_products(products)
    assert active_affinity(painter, settings) is None  # nothing trained: content only
    model, ds = covisit
    folder = tmp_path / "v1"
    model.save(folder / "engine" / "covisit")
    ds.items.save(folder / "items.json")
    write_manifest(folder, "v1", last_event_ts=0.0, metrics={})
    read = load_item_affinity(folder)
    assert read is not None and read.source == "covisit"
    assert (read.sim != model.sim).nnz == 0 and list(read.item_ids) == list(ds.items.external_ids)
    painter.register_version("v1", status="complete", path=str(folder))
    painter.activate_version("v1")
    engine = build_from_store(painter, settings, semantic=False, train_from_clicks=False)
    assert engine.affinity is not None and engine.affinity.source == "covisit"
    assert engine.search("cordless drill", k=3).items[0] != X
    assert engine.search("cordless drill", user_id="painter", k=3, store=painter).items[0] == X


def test_unreadable_version_falls_back_to_content(tmp_path: Path) -> None:
    folder = tmp_path / "v1"
    (folder / "engine" / "covisit").mkdir(parents=True)
    (folder / "engine" / "covisit" / "params.json").write_text("{not json", encoding="utf-8")
    (folder / "items.json").write_text('["p1"]', encoding="utf-8")
    assert load_item_affinity(folder) is None
