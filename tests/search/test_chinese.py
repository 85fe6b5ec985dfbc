"""Chinese queries against a small Chinese catalog (jieba segmentation, lexical retrieval)."""

from __future__ import annotations

import pandas as pd
import pytest

from shopsense.search import SearchEngine

TITLES = {
    "c1": "华为 Mate 60 Pro 智能手机 12GB+512GB",
    "c2": "小米 Redmi Note 12 智能手机",
    "c3": "苹果 iPhone 15 手机 128GB",
    "c4": "美的 变频空调 1.5匹 冷暖",
    "c5": "格力 云佳 壁挂式空调",
    "c6": "海尔 双门冰箱 215升",
    "c7": "西门子 滚筒洗衣机 10公斤",
    "c8": "小米 空气净化器 4 Pro",
    "c9": "九阳 豆浆机 破壁免滤",
    "c10": "苏泊尔 电饭煲 4升 球釜",
}


@pytest.fixture(scope="module")
def zh_engine() -> SearchEngine:
    products = pd.DataFrame({"item_id": list(TITLES), "title": list(TITLES.values())})
    return SearchEngine.build(products)


def test_chinese_queries_find_their_products(zh_engine: SearchEngine) -> None:
    assert zh_engine.search("华为手机", k=3).items[0] == "c1"
    assert set(zh_engine.search("空调", k=2).items) == {"c4", "c5"}
    assert zh_engine.search("电饭煲", k=1).items == ["c10"]
    assert zh_engine.search("小米净化器", k=1).items == ["c8"]
    assert set(zh_engine.search("手机", k=3).items) == {"c1", "c2", "c3"}


def test_mixed_latin_and_chinese(zh_engine: SearchEngine) -> None:
    assert zh_engine.search("iPhone 手机", k=1).items == ["c3"]
    assert zh_engine.search("redmi", k=1).items == ["c2"]
    assert zh_engine.search(TITLES["c7"], k=1).items == ["c7"]
    assert zh_engine.search("冰箱", k=5).did_you_mean is None  # Chinese is never "spell-corrected"
