"""Sequential transformer in the spirit of SASRec, trained self-supervised on next-item prediction.

Causal self-attention over the user's latest items (oldest first). Each item's representation is a
learned id embedding plus a linear projection of its pretrained text vector, so an item with no
history still has a place (through its text), and the same table scores the output (tied weights).
Loss: full softmax cross-entropy over the catalog when it is small enough, otherwise sampled softmax
with shared uniform negatives. Measured on the Amazon sets, cross-entropy is far better than the
binary loss of the original SASRec.
"""

from __future__ import annotations

import math
import time
from typing import Any, Protocol, TypedDict

import numpy as np
import torch
from scipy.special import erf
from torch import nn

from shopsense import columns as C
from shopsense.data.dataset import Dataset
from shopsense.engine_config import SequentialConfig
from shopsense.models.base import Histories
from shopsense.models.indexed import VectorModel


class _Net(nn.Module):
    def __init__(self, n_items: int, cfg: SequentialConfig, text: torch.Tensor | None) -> None:
        super().__init__()
        d = cfg.dim
        self.item = nn.Embedding(n_items + 1, d, padding_idx=0)  # index 0 = padding
        nn.init.normal_(self.item.weight, std=0.02)
        with torch.no_grad():
            self.item.weight[0].zero_()
        self.pos = nn.Embedding(cfg.max_len, d)
        nn.init.normal_(self.pos.weight, std=0.02)
        self.text: torch.Tensor
        self.register_buffer("text", text if text is not None else torch.zeros(0))
        self.proj = nn.Linear(text.shape[1], d, bias=False) if text is not None else None
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                d, cfg.heads, d * 2, cfg.dropout, activation="gelu", batch_first=True, norm_first=True
            )
            for _ in range(cfg.layers)
        )
        self.norm = nn.LayerNorm(d)

    def table(self, ids: torch.Tensor | None = None) -> torch.Tensor:
        """Item representations (id embedding + projected text) for ``ids`` (1-based) or all items."""
        if ids is None:
            e = self.item.weight
            if self.proj is not None:
                e = e + torch.cat([torch.zeros(1, e.shape[1]), self.proj(self.text)], 0)
            return e
        e = self.item(ids)
        if self.proj is not None:
            e = e + self.proj(self.text[(ids - 1).clamp(min=0)]) * (ids > 0).unsqueeze(-1)
        return e

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """seq: (B, L) 1-based item ids, left-padded with 0 -> (B, L, d) hidden states."""
        b, n = seq.shape
        keep = (seq > 0).unsqueeze(-1).float()
        x = self.table(seq) * math.sqrt(self.item.embedding_dim)
        x = x + self.pos.weight[-n:].unsqueeze(0)  # right-aligned positions: the last item is always the same slot
        x = self.drop(x) * keep
        causal = torch.triu(torch.full((n, n), float("-inf")), diagonal=1)
        for blk in self.blocks:
            x = blk(x, src_mask=causal) * keep
        return self.norm(x)


class GradientSync(Protocol):
    """What :meth:`SequentialModel.train_sequences` asks of the processes training one model together."""

    def steps(self, batches: int) -> int:
        """The number of steps every process takes this epoch, given this process's ``batches``."""
        ...

    def average_gradients(self, net: nn.Module) -> None:
        """Replace each gradient by its mean over the processes (before the optimiser step)."""
        ...

    def any(self, flag: bool) -> bool:
        """True when ``flag`` is true in any process."""
        ...


def _length_buckets(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Batches of similar length (little padding), in random order; ties shuffled each epoch."""
    order = np.lexsort((rng.random(len(lengths)), lengths))
    batches = [order[b : b + batch_size] for b in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _pad_left(seqs: list[np.ndarray], length: int) -> np.ndarray:
    out = np.zeros((len(seqs), length), dtype=np.int64)
    for i, s in enumerate(seqs):
        s = s[-length:]
        if len(s):
            out[i, length - len(s) :] = s
    return out


SMALL_BATCH = 8  # histories scored with the numpy copy of the network (requests); torch beyond


_Affine = tuple[np.ndarray, np.ndarray]  # (weight, bias) of a linear map
_Norm = tuple[np.ndarray, np.ndarray, float]  # (weight, bias, eps) of a layer norm
# one transformer block's weights; a TypedDict's functional form, because "in" is a keyword
_BlockWeights = TypedDict(
    "_BlockWeights", {"n1": _Norm, "in": _Affine, "out": _Affine, "n2": _Norm, "l1": _Affine, "l2": _Affine}
)


class _NumpyNet:
    """The trained network's eval-mode forward pass in numpy, for a few histories at a time.

    On this CPU one torch call of the 2-layer model for one user cost about 1 ms, mostly Python
    dispatch and module bookkeeping; the same arithmetic in numpy costs a fraction of it. The test
    suite checks it against the torch forward pass."""

    def __init__(self, net: _Net, cfg: SequentialConfig, item_table: np.ndarray) -> None:
        def arr(t: torch.Tensor) -> np.ndarray:
            return t.detach().numpy().astype(np.float32)

        d = cfg.dim
        self.heads, self.scale = cfg.heads, math.sqrt(d)
        self.table = np.vstack([np.zeros((1, d), np.float32), item_table])  # row 0 = padding
        self.pos = arr(net.pos.weight)
        self.blocks: list[_BlockWeights] = []
        for blk in net.blocks:
            assert isinstance(blk, nn.TransformerEncoderLayer) and blk.norm_first
            self.blocks.append(
                {
                    "n1": (arr(blk.norm1.weight), arr(blk.norm1.bias), blk.norm1.eps),
                    "in": (arr(blk.self_attn.in_proj_weight).T.copy(), arr(blk.self_attn.in_proj_bias)),
                    "out": (arr(blk.self_attn.out_proj.weight).T.copy(), arr(blk.self_attn.out_proj.bias)),
                    "n2": (arr(blk.norm2.weight), arr(blk.norm2.bias), blk.norm2.eps),
                    "l1": (arr(blk.linear1.weight).T.copy(), arr(blk.linear1.bias)),
                    "l2": (arr(blk.linear2.weight).T.copy(), arr(blk.linear2.bias)),
                }
            )
        self.norm = (arr(net.norm.weight), arr(net.norm.bias), net.norm.eps)
        # the query and key/value halves of each block's input projection as contiguous blocks
        self.qkv = [
            (p["in"][0][:, :d].copy(), p["in"][1][:d], p["in"][0][:, d:].copy(), p["in"][1][d:]) for p in self.blocks
        ]
        self._causal: dict[int, np.ndarray] = {}

    def last_hidden(self, seq: np.ndarray) -> np.ndarray:
        """seq: (B, L) 1-based ids, left-padded with 0 -> (B, d) final hidden state at the last position."""
        b, n = seq.shape
        # a request's histories are grouped by length, so nothing is padded: multiplying by an
        # all-ones mask changes no value, and skipping it saves a third of the elementwise calls
        keep = None if seq.all() else (seq > 0)[..., None].astype(np.float32)
        x = self.table[seq] * self.scale + self.pos[-n:][None]
        if keep is not None:
            x = x * keep
        causal = self._causal.get(n)
        if causal is None:  # the mask of one length never changes: built once
            causal = self._causal[n] = np.triu(np.full((n, n), -np.inf, np.float32), 1)
        last = len(self.blocks) - 1
        for i, p in enumerate(self.blocks):
            if i == last:  # only the last position is read: the last block computes just it
                x = x[:, -1:] + self._attention(_layer_norm(x, *p["n1"]), i, p, causal[-1:])
                keep = None if keep is None else keep[:, -1:]
            else:
                x = x + self._attention(_layer_norm(x, *p["n1"]), i, p, causal)
            h = _layer_norm(x, *p["n2"]) @ p["l1"][0] + p["l1"][1]
            x = x + _gelu(h) @ p["l2"][0] + p["l2"][1]
            if keep is not None:
                x = x * keep
        return np.ascontiguousarray(_layer_norm(x[:, -1], *self.norm), dtype=np.float32)

    def _attention(self, x: np.ndarray, block: int, p: _BlockWeights, mask: np.ndarray) -> np.ndarray:
        """Self-attention of the last ``len(mask)`` positions over every position of ``x``."""
        b, n, d = x.shape
        m, hd = len(mask), d // self.heads
        wq, bq, wkv, bkv = self.qkv[block]
        q = (x[:, n - m :] @ wq + bq).reshape(b, m, self.heads, hd).transpose(0, 2, 1, 3)
        kv = x @ wkv + bkv  # (B, L, 2d)
        k, v = (kv[..., j * d : (j + 1) * d].reshape(b, n, self.heads, hd).transpose(0, 2, 1, 3) for j in range(2))
        att = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd) + mask
        # the reductions without ndarray.max/.sum's Python wrappers (the same ufunc reductions)
        att = np.exp(att - np.maximum.reduce(att, axis=-1, keepdims=True))
        att /= np.add.reduce(att, axis=-1, keepdims=True)
        out = (att @ v).transpose(0, 2, 1, 3).reshape(b, m, d)
        return out @ p["out"][0] + p["out"][1]


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    # np.add.reduce, not .mean(): the same sums without numpy's Python-level wrapper, which cost
    # more than the arithmetic on one request's (1, L, 64) activations
    inv_d = 1.0 / x.shape[-1]
    centred = x - np.add.reduce(x, axis=-1, keepdims=True) * inv_d
    var = np.add.reduce(centred * centred, axis=-1, keepdims=True) * inv_d
    return centred / np.sqrt(var + eps) * w + b


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + erf(x * (1.0 / math.sqrt(2.0))))


class SequentialModel(VectorModel):
    """SASRec-style next-item transformer with text-aware item embeddings."""

    name = "sequential"
    config_class = SequentialConfig
    config: SequentialConfig

    def __init__(self, config: Any = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self.net: _Net | None = None
        self.text_dim = 0
        self.history: list[dict[str, float]] = []
        self._table: np.ndarray | None = None  # cached output item table (serving)
        self._numpy: _NumpyNet | None = None  # the same network in numpy, for requests (serving)

    # ------------------------------------------------------------------ training
    def _fit(self, ds: Dataset, item_vectors: np.ndarray | None) -> None:
        seqs = [s + 1 for s in ds.sequences() if len(s) >= 2]  # 1-based ids, 0 = padding
        self._build(ds.n_items, item_vectors)
        self.train_sequences(seqs, self.config.epochs)

    def _build(self, n_items: int, item_vectors: np.ndarray | None) -> None:
        torch.manual_seed(self.config.seed)
        text = None
        if self.config.use_text and item_vectors is not None:
            text = torch.as_tensor(np.asarray(item_vectors, dtype=np.float32))
            self.text_dim = int(text.shape[1])
        self.net = _Net(n_items, self.config, text)

    def warm_start(
        self, ds: Dataset, remap: np.ndarray, item_vectors: np.ndarray | None, since: float
    ) -> SequentialModel:
        """A model for ``ds``'s items that keeps this one's weights, fine-tuned on the users with events after ``since``.

        ``remap[new item index]`` is the item's index in this model (-1 for a new item, which starts
        from a fresh embedding and its text). Incremental training: a tenth of the epochs.
        """
        assert self.net is not None
        old_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
        fresh = SequentialModel(self.config)
        fresh.n_items = ds.n_items
        fresh._build(ds.n_items, item_vectors if self.text_dim else None)
        assert fresh.net is not None
        new_state = fresh.net.state_dict()
        for k, v in old_state.items():
            if k == "item.weight":
                w = new_state[k].clone()
                known = np.flatnonzero(remap >= 0)
                w[torch.as_tensor(known + 1)] = v[torch.as_tensor(remap[known] + 1)]
                new_state[k] = w
            elif k != "text":
                new_state[k] = v
        fresh.net.load_state_dict(new_state)
        fresh.history = list(self.history)
        fresh.fitted = True
        recent = np.unique(ds.interactions.loc[ds.interactions[C.TIMESTAMP] > since, C.USER_IDX].to_numpy())
        seqs = ds.sequences()
        fresh.train_sequences([seqs[u] + 1 for u in recent if len(seqs[u]) >= 2], max(1, self.config.epochs // 10))
        return fresh

    def train_sequences(
        self, seqs: list[np.ndarray], epochs: int, *, lr: float | None = None, sync: GradientSync | None = None
    ) -> None:
        """Train (or fine-tune) on 1-based item sequences for ``epochs`` passes. With ``sync``, one of
        several processes training together on their own share of the sequences (data parallel: see
        :mod:`shopsense.distributed.sequential`)."""
        cfg = self.config
        assert self.net is not None
        self._table = self._numpy = None
        self._forget_index()
        prev_threads = torch.get_num_threads()
        torch.set_num_threads(cfg.threads)
        rng = np.random.default_rng(cfg.seed + len(self.history))
        n_items = self.net.item.num_embeddings - 1
        full = cfg.loss == "full" or (cfg.loss == "auto" and n_items <= cfg.full_softmax_max_items)
        opt = torch.optim.AdamW(self.net.parameters(), lr=lr or cfg.lr, weight_decay=cfg.weight_decay)
        # Each sequence becomes (input = all but last, target = all but first), last max_len+1 items.
        windows = [s[-(cfg.max_len + 1) :] for s in seqs if len(s) >= 2]
        lengths = np.array([len(w) - 1 for w in windows])
        start = time.perf_counter()
        try:
            for _epoch in range(epochs):
                self.net.train()
                total, count = 0.0, 0
                batches = _length_buckets(lengths, cfg.batch_size, rng)
                if sync is not None:  # every process takes as many steps as the one with the fewest batches
                    batches = batches[: sync.steps(len(batches))]
                for idx in batches:
                    width = int(lengths[idx].max())  # trim padding to the longest sequence in the batch
                    batch = _pad_left([windows[i] for i in idx], width + 1)
                    inp = torch.as_tensor(batch[:, :-1])
                    tgt = torch.as_tensor(batch[:, 1:])
                    h = self.net(inp)
                    mask = (tgt > 0) & (inp > 0)
                    hv, tv = h[mask], tgt[mask]
                    if full:
                        logits = hv @ self.net.table().T
                        logits[:, 0] = float("-inf")
                        loss = nn.functional.cross_entropy(logits, tv)
                    else:
                        neg = torch.as_tensor(rng.integers(1, n_items + 1, cfg.negatives))
                        pos_logit = (hv * self.net.table(tv)).sum(-1, keepdim=True)
                        neg_logit = hv @ self.net.table(neg).T
                        neg_logit = neg_logit.masked_fill(neg.unsqueeze(0) == tv.unsqueeze(1), float("-inf"))
                        logits = torch.cat([pos_logit, neg_logit], 1)
                        loss = nn.functional.cross_entropy(logits, torch.zeros(len(tv), dtype=torch.long))
                    opt.zero_grad()
                    loss.backward()
                    if sync is not None:
                        sync.average_gradients(self.net)
                    opt.step()
                    total += float(loss.detach()) * len(tv)
                    count += len(tv)
                self.history.append({"epoch": float(len(self.history)), "loss": total / max(count, 1)})
                over = cfg.max_seconds is not None and time.perf_counter() - start > cfg.max_seconds
                if sync.any(over) if sync is not None else over:  # processes stop together
                    break
        finally:
            torch.set_num_threads(prev_threads)
            self.net.eval()

    # ------------------------------------------------------------------ scoring
    def user_vectors(self, histories: Histories) -> np.ndarray:
        """(n, dim) hidden state after the last item of each history (zeros for empty ones).

        Histories are computed in groups of one length, without padding: padded positions are still
        attended to (the mask is causal only), so a short history padded to a batch's longest came out
        different from the same history alone, which is how a request computes it. Grouping makes
        a history's vector the same in an offline evaluation batch and in serving."""
        assert self.net is not None
        cfg = self.config
        seqs = [(h + 1)[-cfg.max_len :] for h in histories.items]
        vec = np.zeros((len(seqs), cfg.dim), np.float32)
        if len(seqs) == 1:  # one request: a group of one, without the grouping's bookkeeping (~60 us)
            if len(seqs[0]):
                vec[0] = self._inference().last_hidden(seqs[0][None])
            return vec
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        groups = [np.flatnonzero(lengths == n) for n in np.unique(lengths[lengths > 0])]
        if len(seqs) <= SMALL_BATCH:  # a request: torch's per-call overhead would cost more than the maths
            net = self._inference()
            for rows in groups:
                vec[rows] = net.last_hidden(np.stack([seqs[r] for r in rows]))
            return vec
        prev = torch.get_num_threads()
        torch.set_num_threads(cfg.threads)
        try:
            with torch.no_grad():
                for rows in groups:
                    for b in range(0, len(rows), 1024):
                        chunk = rows[b : b + 1024]
                        batch = torch.as_tensor(np.stack([seqs[r] for r in chunk]))
                        vec[chunk] = self.net(batch)[:, -1].numpy()
        finally:
            torch.set_num_threads(prev)
        return vec

    def _inference(self) -> _NumpyNet:
        if self._numpy is None:
            assert self.net is not None
            self._numpy = _NumpyNet(self.net, self.config, self.item_table())
        return self._numpy

    def item_table(self) -> np.ndarray:
        """(n_items, dim) output item representations."""
        assert self.net is not None
        if self._table is None:  # the text projection over the catalog is costly: once per trained state
            with torch.no_grad():
                self._table = np.ascontiguousarray(self.net.table()[1:].numpy())
        return self._table

    def item_vectors(self) -> np.ndarray:
        return self.item_table()

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, np.ndarray]:
        assert self.net is not None
        return {f"w.{k}": v.detach().numpy() for k, v in self.net.state_dict().items() if k != "text"} | (
            {"text": self.net.text.numpy()} if self.net.proj is not None else {}
        )

    def _set_state(self, state: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        text = state.get("text")
        self._build(self.n_items, text)
        self._table = self._numpy = None
        self._forget_index()
        assert self.net is not None
        sd = {k[2:]: torch.as_tensor(np.array(v)) for k, v in state.items() if k.startswith("w.")}
        sd["text"] = self.net.text
        self.net.load_state_dict(sd)
        self.net.eval()
        self.history = list(extra.get("history", []))

    def _extra(self) -> dict[str, Any]:
        return {"history": self.history}
