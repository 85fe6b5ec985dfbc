"""A faster CPU path for sentence-transformers models: the transformer exported to ONNX, int8-quantised
per channel, run by ONNX Runtime; mean pooling and L2 normalisation in NumPy.

Measured on all-MiniLM-L6-v2 (``benchmarks/encoder.py``, numbers in ``docs/benchmarks.md``): the
per-channel int8 model keeps mean cosine >= 0.99 to the fp32 reference; per-tensor int8 (the
onnxruntime default) and torch dynamic int8 do not (about 0.93-0.95), so they are not offered.

It is the default backend (``[encoder] backend = "onnx-int8"``): a query costs about a fifth of the
CPU of torch's, and Home Depot search quality is unchanged (``docs/benchmarks.md``). Since 2026-12-04
the int8 graph is quantised after ONNX Runtime's transformer fusions (attention, embeddings + layer
norm, bias + GELU, skip + layer norm as single operators: about a sixth less CPU per short query);
``backend = "onnx-int8-unfused"`` is the graph before, which indexes built then keep. The export runs
once per model, offline from the model's folder (``torch.onnx``, then ``onnxruntime``'s quantiser),
when a process first loads the model (``shopsense train`` does, before any server), and is kept in a
cache folder (default ``~/.cache/shopsense/onnx``, or ``SHOPSENSE_ONNX_CACHE``), or in the model's
own ``onnx/`` folder when it has one (a model fine-tuned by a training carries its export in its
version, so every server finds it there); both ``onnx`` and ``onnxruntime`` are core dependencies.
Only models whose sentence-transformers pipeline is Transformer -> mean Pooling (-> Normalize) are
supported; others raise ``ConfigError``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from shopsense.exceptions import ConfigError

QUANT = ("fp32", "int8")
#: a model folder's own ONNX files, used before the shared cache (see :func:`export`)
OWN_EXPORT = "onnx"


def onnx_cache_dir() -> Path:
    return Path(os.environ.get("SHOPSENSE_ONNX_CACHE", Path.home() / ".cache" / "shopsense" / "onnx"))


@functools.cache
def supports(model_dir: str) -> bool:
    """Whether the ONNX path can run the sentence-transformers model in this local folder (a
    Transformer -> mean Pooling pipeline) and ONNX Runtime is installed."""
    try:
        import onnxruntime  # noqa: F401

        _check_mean_pooling(Path(model_dir))
    except (ImportError, ConfigError, OSError, ValueError):
        return False
    return Path(model_dir).is_dir()


def _check_mean_pooling(model_dir: Path) -> None:
    modules = model_dir / "modules.json"
    if not modules.exists():
        return
    for m in json.loads(modules.read_text()):
        if m.get("type", "").endswith("Pooling"):
            cfg = json.loads((model_dir / m["path"] / "config.json").read_text())
            # sentence-transformers < 6 writes one flag per mode, 6 and later one "pooling_mode"
            if not (cfg.get("pooling_mode_mean_tokens", False) or cfg.get("pooling_mode") == "mean"):
                raise ConfigError(f"the ONNX path supports mean-pooling models only; {model_dir} pools differently")


def export(model_dir: str | Path, quant: str = "int8", cache: Path | None = None, *, fused: bool = False) -> Path:
    """The ONNX file for ``model_dir`` (exported and quantised on first use, then reused). ``fused``
    (int8 only): quantise the graph after ONNX Runtime's transformer fusions (see :func:`_fused_fp32`)."""
    if quant not in QUANT:
        raise ConfigError(f"unknown ONNX quantisation {quant!r}; valid: {', '.join(QUANT)}")
    model_dir = Path(model_dir)
    _check_mean_pooling(model_dir)
    weights = next((p for p in (model_dir / "model.safetensors", model_dir / "pytorch_model.bin") if p.exists()), None)
    stamp = f"{model_dir.resolve()}|{weights.stat().st_size if weights else 0}|{weights.stat().st_mtime_ns if weights else 0}"
    folder = (cache or onnx_cache_dir()) / hashlib.blake2b(stamp.encode(), digest_size=8).hexdigest()
    if (model_dir / OWN_EXPORT).is_dir():  # the model carries its export (a tuned model in its version)
        folder = model_dir / OWN_EXPORT
    # the fused graph starts from an export with the classic attention ops (not torch's SDPA call),
    # which ONNX Runtime's optimiser recognises; the plain files stay as they were (indexes built then)
    fused = fused and quant == "int8"
    fp32 = folder / ("model-eager.onnx" if fused else "model.onnx")
    int8 = folder / ("model-int8-fused.onnx" if fused else "model-int8-perchannel.onnx")
    target = int8 if quant == "int8" else fp32
    if target.exists():
        return target
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
    except ImportError as e:  # pragma: no cover - core dependencies
        raise ConfigError(f"exporting to ONNX needs torch and transformers: {e}") from e
    folder.mkdir(parents=True, exist_ok=True)
    if not fp32.exists():
        tok = AutoTokenizer.from_pretrained(str(model_dir))
        eager: dict[str, Any] = {"attn_implementation": "eager"} if fused else {}
        model = AutoModel.from_pretrained(str(model_dir), **eager).eval()

        class _Hidden(torch.nn.Module):
            def __init__(self, m: torch.nn.Module) -> None:
                super().__init__()
                self.m = m

            def forward(self, ids: Any, mask: Any, tt: Any) -> Any:
                return self.m(input_ids=ids, attention_mask=mask, token_type_ids=tt).last_hidden_state

        x = tok(["an example product title", "short"], padding=True, return_tensors="pt")
        names = ["input_ids", "attention_mask", "token_type_ids"]
        tmp = fp32.with_suffix(f".{os.getpid()}.tmp")  # server workers may export at once: each its own file
        try:
            torch.onnx.export(
                _Hidden(model),
                (x["input_ids"], x["attention_mask"], x.get("token_type_ids", torch.zeros_like(x["input_ids"]))),
                str(tmp),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes={k: {0: "batch", 1: "seq"} for k in [*names, "last_hidden_state"]},
                opset_version=17,
                dynamo=False,
            )
        except Exception as e:  # the exporter raises many types (missing onnx, unsupported ops)
            raise ConfigError(
                f"ONNX export of {model_dir} failed: {e}. Check that the onnx package is installed, or set "
                "[encoder] backend = 'torch'"
            ) from e
        tmp.replace(fp32)
    if quant == "int8" and not int8.exists():
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = int8.with_suffix(f".{os.getpid()}.tmp")
        source = _fused_fp32(fp32, model_dir, folder) if fused else fp32
        # per-channel weights: per-tensor int8 moved MiniLM's vectors to mean cosine ~0.95
        # fused operators carry no type information for the quantiser: their outputs are float
        options = {"DefaultTensorType": onnx.TensorProto.FLOAT} if fused else {}
        quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True, extra_options=options)
        tmp.replace(int8)
    return target


def _fused_fp32(fp32: Path, model_dir: Path, folder: Path) -> Path:
    """``fp32`` after ONNX Runtime's transformer optimiser (embeddings + layer norm, attention, bias +
    GELU and skip + layer norm each one operator), for BERT-like models; ``fp32`` itself for models it
    cannot fuse. On all-MiniLM-L6-v2 a short query's int8 encoding took about a sixth less CPU fused
    (one thread, 2026-12-03); its vectors keep the same cosine to fp32 (0.992 on average)."""
    out = folder / "model-fused.onnx"
    if out.exists():
        return out
    cfg = json.loads((model_dir / "config.json").read_text()) if (model_dir / "config.json").exists() else {}
    if cfg.get("model_type") != "bert" or not cfg.get("num_attention_heads") or not cfg.get("hidden_size"):
        return fp32
    from onnxruntime.transformers import optimizer

    heads, hidden = int(cfg["num_attention_heads"]), int(cfg["hidden_size"])
    # level 1: ONNX Runtime's portable optimisations only (no CPU-specific operators in the file)
    fused = optimizer.optimize_model(str(fp32), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=1)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    fused.save_model_to_file(str(tmp))
    tmp.replace(out)
    return out


class OnnxSentenceEncoder:
    """Tokenizer -> ONNX transformer -> mean pooling -> L2 norm, texts batched by length."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        quant: str = "int8",
        max_length: int = 128,
        threads: int = 1,
        fused: bool = False,
    ) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        path = export(model_dir, quant, fused=fused)
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        so = ort.SessionOptions()
        # One thread, not spinning: a server runs a worker per core, and a second thread per query
        # cost more CPU than it saved (measured on 2 cores: 4.5 ms of CPU per query with 1 thread,
        # 11.8 with 2 spinning threads, 5.9 with 2 that sleep); bulk encoding gained nothing either.
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.max_length = max_length
        self.dim = int(self.session.get_outputs()[0].shape[-1] or 0) or None

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths pad little
        out: np.ndarray | None = None
        starts: Any = range(0, len(texts), batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="encoding", unit="batch")
        for s in starts:
            idx = order[s : s + batch_size]
            enc = self.tokenizer(
                [texts[i] for i in idx], padding=True, truncation=True, max_length=self.max_length, return_tensors="np"
            )
            feeds = {k: v.astype(np.int64) for k, v in enc.items() if k in self.inputs}
            if "token_type_ids" in self.inputs and "token_type_ids" not in feeds:
                feeds["token_type_ids"] = np.zeros_like(feeds["input_ids"])
            h = self.session.run(None, feeds)[0]
            m = feeds["attention_mask"][..., None].astype(np.float32)
            v = (h * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            if out is None:
                out = np.empty((len(texts), v.shape[1]), dtype=np.float32)
            out[idx] = v
        assert out is not None
        return out
