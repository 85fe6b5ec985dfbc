"""The ONNX Runtime path, exported from a tiny BERT the test builds (with MiniLM's real tokenizer)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from shopsense.config import EncoderConfig
from shopsense.features.text import TextEncoder, default_model_path

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

TEXTS = ["stainless steel electric kettle", "ceramic coffee mug, blue, 350 ml", "usb-c cable", "a"]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    BertModel(cfg).eval().save_pretrained(folder)
    for f in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(default_model_path() / f, folder / f)
    return folder


def _torch_mean_pooled(folder: Path, texts: list[str]) -> np.ndarray:
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(str(folder)), AutoModel.from_pretrained(str(folder)).eval()
    x = tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        h = model(**x).last_hidden_state
    m = x["attention_mask"][..., None].float()
    v = ((h * m).sum(1) / m.sum(1)).numpy()
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_onnx_matches_torch_and_int8_stays_close(
    tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shopsense.features.onnx_encoder import OnnxSentenceEncoder

    monkeypatch.setenv("SHOPSENSE_ONNX_CACHE", str(tmp_path))
    ref = _torch_mean_pooled(tiny_bert, TEXTS)
    fp32 = OnnxSentenceEncoder(tiny_bert, quant="fp32").encode(TEXTS)
    fp32 /= np.linalg.norm(fp32, axis=1, keepdims=True)
    np.testing.assert_allclose(fp32, ref, atol=1e-4)

    enc = TextEncoder(EncoderConfig(model=str(tiny_bert), backend="onnx-int8"))
    v = enc.encode(TEXTS)
    assert v.shape == (4, 32) and v.dtype == np.float32 and enc.dim == 32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert float(np.mean(np.sum(v * ref, axis=1))) > 0.95
    np.testing.assert_allclose(enc.encode(TEXTS[::-1])[::-1], v, atol=1e-5)  # batch order does not matter
    assert enc.model_id.endswith("/onnx-int8-fused")
    # the fp32 export above; the eager export, its fused graph and that graph in int8: exported once, reused
    assert sorted(p.name for p in tmp_path.rglob("*.onnx")) == [
        "model-eager.onnx",
        "model-fused.onnx",
        "model-int8-fused.onnx",
        "model.onnx",
    ]
    TextEncoder(EncoderConfig(model=str(tiny_bert), backend="onnx-int8")).encode(TEXTS)
    assert len(list(tmp_path.rglob("*.onnx"))) == 4


def test_the_fused_graph_fuses_and_encodes_as_the_unfused_one(
    tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnx

    from shopsense.features.onnx_encoder import export

    monkeypatch.setenv("SHOPSENSE_ONNX_CACHE", str(tmp_path))
    ops = {n.op_type for n in onnx.load(str(export(tiny_bert, "int8", fused=True))).graph.node}
    assert {"QAttention", "QEmbedLayerNormalization", "SkipLayerNormalization", "BiasGelu"} <= ops  # fused, quantised
    assert "Softmax" not in ops  # no attention left unfused
    fused = TextEncoder(EncoderConfig(model=str(tiny_bert), backend="onnx-int8"))
    plain = TextEncoder(EncoderConfig(model=str(tiny_bert), backend="onnx-int8-unfused"))
    assert plain.model_id.endswith("/onnx-int8") and fused.model_id != plain.model_id  # caches never mix
    a, b = fused.encode(TEXTS), plain.encode(TEXTS)
    assert float(np.min(np.sum(a * b, axis=1))) > 0.97
    # padding in a batch changes nothing beyond int8's per-call activation scales
    alone = np.vstack([fused.encode([t]) for t in TEXTS])
    assert float(np.min(np.sum(alone * a, axis=1))) > 0.97


def test_model_id_separates_backends_and_onnx_is_the_default() -> None:
    torch_enc = TextEncoder(EncoderConfig(backend="torch"))
    assert TextEncoder().backend == "onnx-int8" and torch_enc.backend == "sentence-transformers"
    assert torch_enc.model_id != TextEncoder().model_id
    # an index's encoder is found again from its model id, whatever the configured backend
    found = TextEncoder.of_model_id(torch_enc.model_id, EncoderConfig())
    assert found is not None and found.model_id == torch_enc.model_id
    assert TextEncoder.of_model_id("st:some-other-model/max128", EncoderConfig()) is None


def test_models_the_onnx_path_cannot_run_stay_in_torch(tmp_path: Path) -> None:
    hub_name = TextEncoder(EncoderConfig(model="sentence-transformers/all-mpnet-base-v2"))
    assert hub_name.backend == "sentence-transformers" and not hub_name.model_id.endswith("/onnx-int8")
    cls_pooled = tmp_path / "cls-model"
    (cls_pooled / "1_Pooling").mkdir(parents=True)
    (cls_pooled / "modules.json").write_text('[{"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]')
    (cls_pooled / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}')
    assert TextEncoder(EncoderConfig(model=str(cls_pooled))).backend == "sentence-transformers"
