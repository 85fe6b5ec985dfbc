from __future__ import annotations

import pytest

from shopsense.features.tokenize import Tokenizer, detect_language


def test_english_lowercase_stopwords_stemming() -> None:
    t = Tokenizer("en")
    assert t.tokenize("The Running Shoes for Men") == ["run", "shoe", "men"]
    assert t.tokenize("USB-C Charging Cables, 2m") == ["usb", "c", "charg", "cabl", "2m"]
    assert t.tokenize("") == [] and t.tokenize(None) == []  # type: ignore[arg-type]


def test_chinese_product_titles_are_segmented() -> None:
    t = Tokenizer("zh")
    assert t.tokenize("华为 HUAWEI FreeBuds 无线蓝牙耳机 主动降噪") == [
        "华为", "huawei", "freebud", "无线", "蓝牙", "耳机", "主动", "降噪",
    ]  # fmt: skip
    toks = t.tokenize("美的电饭煲家用4L智能预约多功能")
    assert {"美的", "电饭煲", "家用", "智能", "预约"} <= set(toks)
    toks = t.tokenize("小米 Redmi Note 12 5G 手机 8GB+256GB 子夜黑")
    assert {"小米", "redmi", "note", "手机", "256gb"} <= set(toks)
    assert "的" not in Tokenizer("zh").tokenize("我的保温杯")


def test_search_mode_adds_sub_words_for_recall() -> None:
    plain = Tokenizer("zh").tokenize("三只松鼠坚果大礼包")
    search = Tokenizer("zh", search_mode=True).tokenize("三只松鼠坚果大礼包")
    assert "大礼包" in plain and "礼包" not in plain
    assert {"大礼包", "礼包"} <= set(search)


def test_auto_handles_mixed_catalogs() -> None:
    t = Tokenizer("auto")
    assert t.tokenize("Wireless Headphones") == ["wireless", "headphon"]
    assert {"蓝牙", "耳机"} <= set(t.tokenize("无线蓝牙耳机"))


def test_detect_language() -> None:
    assert detect_language(["小米手机 黑色", "华为耳机", "Apple iPhone"]) == "zh"
    assert detect_language(["red kettle", "blue mug", ""]) == "en"
    assert detect_language([]) == "en"


def test_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="valid"):
        Tokenizer("fr")
