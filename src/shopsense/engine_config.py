"""The recommendation engine's knobs: the config of every model, the ranker, the offline engine
(the ``[engine]`` settings section) and the online recommender (``[online]``).

They live here, beside :mod:`shopsense.config` in the definitions layer, and not beside the code
that uses them, so that :class:`shopsense.config.Settings` can hold them without importing
``models/`` or ``ranking/`` (which import the settings). Each model module re-exports its class
(``from shopsense.models.als import ALSConfig`` still works).
"""

from __future__ import annotations

import types
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Knobs(BaseModel):
    """Strict like :class:`shopsense.config.StrictModel` (which cannot be the base: ``config.py``
    imports this module), and settable from TOML: ``false`` turns off a knob whose value may be
    None (TOML has no null), e.g. ``[engine] sequential = false`` or ``[online] cold_slot = false``."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @model_validator(mode="before")
    @classmethod
    def _false_is_off(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {k: None if v is False and _may_be_none(cls, k) else v for k, v in data.items()}


def _may_be_none(cls: type[BaseModel], name: str) -> bool:
    field = cls.model_fields.get(name)
    if field is None or get_origin(field.annotation) not in (Union, types.UnionType):
        return False
    args = get_args(field.annotation)
    return type(None) in args and bool not in args


class ModelConfig(Knobs):
    """Base of every model config (strict: unknown keys fail, naming the field)."""


# ---------------------------------------------------------------------------- models
class ItemItemConfig(ModelConfig):
    neighbors: int = Field(200, ge=1, description="entries kept per item")
    recency_decay: float = Field(1.0, gt=0, le=1, description="weight multiplier per step back in the history")
    max_history: int = Field(200, ge=1, description="latest items of a history that are read")
    event_weighted: bool = Field(False, description="weight history items by their event weight")


class ItemKNNConfig(ItemItemConfig):
    shrink: float = Field(10.0, ge=0, description="added to the cosine denominator: damps rare pairs")


class EASEConfig(ItemItemConfig):
    l2: float = Field(50.0, gt=0, description="ridge penalty (larger = smoother)")
    max_items: int = Field(8_000, ge=1, description="fit on the most popular items only beyond this (n^3 cost)")


class CoVisitConfig(ItemItemConfig):
    window: int = Field(5, ge=1, description="steps ahead in the sequence that count as co-visited")
    time_window_s: float | None = Field(None, gt=0, description="pairs further apart in time do not count")
    backward_weight: float = Field(0.5, ge=0, description="weight of b preceding a (1 = symmetric)")
    distance_power: float = Field(1.0, ge=0, description="a pair d steps apart counts 1 / d^power")
    alpha: float = Field(0.5, ge=0, le=1, description="popularity normalisation split between the two items")
    recency_decay: float = Field(0.7, gt=0, le=1, description="weight multiplier per step back in the history")
    event_weighted: bool = Field(True, description="weight history items by their event weight")


class ALSConfig(ModelConfig):
    factors: int = Field(64, ge=1, description="latent factors per user and item")
    regularization: float = Field(0.05, ge=0, description="L2 penalty on the factors")
    alpha: float = Field(10.0, gt=0, description="confidence = 1 + alpha * weight")
    iterations: int = Field(15, ge=1, description="alternating least-squares sweeps")
    threads: int = Field(1, ge=0, description="implicit threads (0 = all cores)")
    map_cold_items: bool = Field(True, description="give items without events factors mapped from their text")
    seed: int = Field(0, description="random seed")


class SequentialConfig(ModelConfig):
    dim: int = Field(64, ge=8, description="width of the transformer (item and position embeddings)")
    layers: int = Field(2, ge=1, description="transformer blocks")
    heads: int = Field(2, ge=1, description="attention heads per block")
    max_len: int = Field(50, ge=2, description="items of history the model reads")
    dropout: float = Field(0.3, ge=0, lt=1, description="dropout while training")
    epochs: int = Field(30, ge=0, description="passes over the training sequences")
    batch_size: int = Field(128, ge=1, description="sequences per training step")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    loss: Literal["auto", "full", "sampled"] = Field("auto", description="softmax over the whole catalog or sampled")
    full_softmax_max_items: int = Field(6000, ge=1, description="'auto' uses full softmax up to this catalog size")
    negatives: int = Field(2048, ge=1, description="shared negatives per batch for the sampled softmax")
    use_text: bool = Field(True, description="feed the product text vectors into the item embeddings")
    max_seconds: float | None = Field(None, gt=0, description="stop training after this many seconds")
    threads: int = Field(1, ge=1, description="torch threads (1 was fastest on a shared 2-core machine)")
    ann_min_items: int = Field(
        20_000, ge=1, description="catalogs this large serve proposals from an HNSW index of the item table"
    )
    seed: int = Field(0, description="random seed")


class ContentConfig(ModelConfig):
    recency_decay: float = Field(0.7, gt=0, le=1, description="weight multiplier per step back in the history")
    max_history: int = Field(50, ge=1, description="latest items of a history that are read")
    query_weight: float = Field(1.0, ge=0, description="weight of the latest search query relative to the latest item")
    event_weighted: bool = Field(True, description="weight history items by their event weight")
    ann_min_items: int = Field(
        20_000, ge=1, description="catalogs this large serve proposals from an HNSW index (exact below)"
    )


class PopularConfig(ModelConfig):
    half_life_days: float | None = Field(
        30.0, gt=0, description="event weight halves every this many days (false / None: no decay)"
    )
    trend_window_days: float = Field(7.0, gt=0, description="trending compares this last window with the one before")
    weighted: bool = Field(True, description="count event weights (purchase > view) instead of events")
    mode: Literal["popular", "trending"] = Field("popular", description="what score() returns")


# ---------------------------------------------------------------------------- ranking
class RankerConfig(Knobs):
    """The LambdaRank ranker (LightGBM), used when ``engine.ranker = "lambdarank"``."""

    rounds: int = Field(200, ge=1, description="boosting rounds")
    learning_rate: float = Field(0.05, gt=0, description="shrinkage per round")
    num_leaves: int = Field(31, ge=2, description="leaves per tree")
    min_data_in_leaf: int = Field(50, ge=1, description="fewest candidates in a leaf")
    feature_fraction: float = Field(0.9, gt=0, le=1, description="share of the features each tree sees")
    threads: int = Field(1, ge=1, description="1: OpenMP spin-waits badly on a busy machine")
    seed: int = Field(0, description="random seed")


class OutcomesConfig(Knobs):
    """The ranker learned from what shoppers did with what they were shown: logged impressions joined
    to clicks, carts and purchases (:mod:`shopsense.ranking.outcomes`)."""

    min_impressions: int = Field(
        2000,
        ge=1,
        description="impressions of lists that drew a click, cart or purchase needed before training learns from "
        "them (fewer: the next-item labels alone)",
    )
    max_requests: int = Field(50_000, ge=10, description="latest logged lists learned from at most")
    surfaces: list[str] = Field(
        default_factory=lambda: ["recommend"],
        description="impressions of which surfaces teach the recommendation ranker (recommend: the home page)",
    )
    search: bool = Field(
        True,
        description="learn from the logged search lists too: one ranker for both surfaces (ranking/joint.py), "
        "served on each where it wins on its held-out lists",
    )
    heldout_share: float = Field(
        0.2, gt=0, lt=1, description="latest share of the logged lists held out to decide between ranker and fusion"
    )
    min_gain: float = Field(
        0.0, ge=0, description="held-out NDCG@10 the outcome ranker must gain over the fusion to be served"
    )
    next_item_weight: float = Field(
        1.0, ge=0, description="weight of a next-item example against a logged list's (0: outcomes only)"
    )
    exposure: bool = Field(
        True,
        description="learn from what each shopper was already shown and passed over (times shown, best "
        "position, hours since: ranking/exposure.py); serving then reads the shopper's latest impressions",
    )
    exposure_days: float = Field(30.0, gt=0, description="impressions older than this many days are not counted")
    exposure_limit: int = Field(500, ge=1, description="a shopper's latest impressions read per request at most")


class ReturnsConfig(Knobs):
    """The return scorer: which of a shopper's own items they come back to buy, learned from the log
    (:mod:`shopsense.ranking.returns`)."""

    min_moments: int = Field(
        50, ge=1, description="fewest purchases or returns to an item already touched needed to learn (else off)"
    )
    # chosen by the out-of-fold NDCG@10 on the Taobao sample's training purchases (never its targets):
    # revisits 0.5 / 0.2 / 0.1 / 0.05 / 0.02 -> 0.387 / 0.397 / 0.404 / 0.407 / 0.406; intent 0.5: 0.411
    revisit_weight: float = Field(
        0.05,
        ge=0,
        description="weight of a moment where a shopper looked at an item again (a purchase weighs 1): many "
        "and weak, they teach what brings shoppers back without drowning the purchases",
    )
    intent_weight: float = Field(
        0.5, ge=0, description="weight of a moment where a shopper favourited or carted an item again"
    )
    max_moments: int = Field(
        30000, ge=1, description="moments learned from at most (all purchases first, then a sample)"
    )
    max_history: int = Field(200, ge=1, description="latest events of a shopper described")
    rounds: int = Field(300, ge=1, description="boosting rounds")
    learning_rate: float = Field(0.05, gt=0, description="shrinkage per round")
    num_leaves: int = Field(4, ge=2, description="leaves per tree (small: a shop has few purchases to learn from)")
    min_data_in_leaf: int = Field(10, ge=1, description="fewest candidates in a leaf")
    rebuy_min_rate: float = Field(
        0.05,
        ge=0,
        le=1,
        description="share of a category's buyers who bought in it again (later) for its items to be shown "
        "again after a purchase",
    )
    rebuy_min_buyers: int = Field(
        5,
        ge=1,
        description="a category's rate is shrunk towards the shop's by this many buyers (few: mostly the shop's)",
    )
    rebuy_categories: list[str] = Field(default_factory=list, description="categories always re-bought (exact names)")
    never_rebuy_categories: list[str] = Field(
        default_factory=list, description="categories never re-bought, whatever the log says (exact names)"
    )
    seed: int = Field(0, description="random seed")


#: sources whose training scales out: sparse counts, low-rank factors, the content profile (the Spark
#: job encodes the product texts on its executors) and the sequential transformer (trained by PyTorch
#: processes Spark launches): what ``sources = "sparse"`` keeps
SPARSE_SOURCES = ("itemknn", "covisit", "als", "sequential", "content")
#: what ``sources = "sparse"`` turns off: EASE (a dense item x item inverse, ~40 GB at 100k items), the
#: return scorer and the ranker learned from logged outcomes (both learned on one machine from the
#: whole log); a part this version of the settings does not have is skipped
DENSE_PARTS = ("ease", "returns", "outcomes")


class EngineConfig(Knobs):
    """Which sources run (None, or false in TOML = off), how many candidates each proposes, and how they are ranked.

    A partial table (a dict) for a source changes only the keys it names: the rest keep this
    engine's defaults, which differ from the model's own for some sources (``[engine.covisit]
    window = 10`` keeps ``recency_decay = 0.8``)."""

    sources: Literal["all", "sparse"] = Field(
        "all",
        description="sparse: only the sources whose training scales out (item-kNN, co-visitation, ALS when on, "
        "the sequential transformer, the content profile, popularity) with the fusion ranker; EASE, the return "
        "scorer and the outcome ranker are off. "
        "The Spark trainer (`train --engine spark`) needs it, and the local trainer honours it, so both "
        "build the same sources",
    )
    ease: EASEConfig | None = EASEConfig(recency_decay=0.8)
    itemknn: ItemKNNConfig | None = ItemKNNConfig(recency_decay=0.8)
    covisit: CoVisitConfig | None = CoVisitConfig(window=20, recency_decay=0.8)
    als: ALSConfig | None = None
    sequential: SequentialConfig | None = SequentialConfig(epochs=20, max_seconds=240.0)
    content: ContentConfig | None = ContentConfig()
    popular: PopularConfig = PopularConfig()
    returns: ReturnsConfig | None = ReturnsConfig()
    per_source: int = Field(50, ge=1, description="candidates each source proposes")
    ranker: Literal["fusion", "lambdarank"] = Field(
        "fusion", description="fusion: tuned weighted sum of standardised source scores over the whole catalog"
    )
    ranker_config: RankerConfig = RankerConfig()
    outcomes: OutcomesConfig | None = Field(
        OutcomesConfig(), description="learn the ranking from logged outcomes when there are enough (None: never)"
    )
    ranker_users: int = Field(
        8000,
        ge=10,
        description="held-out users the fusion / ranker learns from (sampled); the long-tail pass sees only "
        "their long-tail targets (a few hundred of 3000 on Video Games), so more users make it less noisy",
    )
    refit_epochs: int = Field(3, ge=0, description="sequential epochs on all data after the held-out stage")
    tail_tolerance: float = Field(
        0.03,
        ge=0,
        lt=1,
        description="share of held-out NDCG@10 the fusion may give up to rank long-tail targets higher (0 = off); "
        "at 3% the validation targets of Scientific and Video Games lost 0.6% and 1% of NDCG@10 for tail "
        "NDCG@10 1.4x and 3.7x that of the fusion without the long-tail pass",
    )
    tail_max_count: int = Field(5, ge=0, description="items with at most this many interactions are the long tail")
    seed: int = Field(0, description="random seed")

    @model_validator(mode="before")
    @classmethod
    def _partial_over_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, value in data.items():
            field = cls.model_fields.get(name)
            default = None if field is None else field.default
            if isinstance(value, dict) and isinstance(default, BaseModel):
                out[name] = {**default.model_dump(), **value}
        if out.get("sources") == "sparse":  # one setting switches both trainers to the same sources
            if out.get("ranker") == "lambdarank":
                raise ValueError('sources = "sparse" ranks by the fusion: set ranker = "fusion"')
            out.update({part: None for part in DENSE_PARTS if part in cls.model_fields})
        return out


# ---------------------------------------------------------------------------- online
Fallback = Literal["query_match", "popular_in_category", "trending"]
#: the fallbacks a shopper without item history can get, in the order tried by default
FALLBACKS: tuple[Fallback, ...] = ("query_match", "popular_in_category", "trending")


class OnlineConfig(Knobs):
    """The online recommender: what a request reads, the list's diversity and the new-product slot."""

    history: int = Field(50, ge=1, description="latest events read per request")
    pool: int = Field(
        50,
        ge=1,
        description="ranked candidates kept before filters and diversity (at least 5 x k); popular fill the rest",
    )
    return_history: int = Field(
        100, ge=1, description="latest events read per request for return items (the shopper's own, with their times)"
    )
    max_return_share: float = Field(
        1.0,
        ge=0,
        le=1,
        description="share of a 'for you' list that may be the shopper's own items at most (1: the learned "
        "probabilities alone decide; lower it to keep room for discovery)",
    )
    diversity: float = Field(0.0, ge=0, le=1, description="MMR weight (0 = pure relevance)")
    precomputed: bool = Field(
        True,
        description="rank every shopper's 'for you' candidates when a version is trained; a request of a "
        "shopper without newer events reads that ranking instead of ranking live (recommend/precomputed.py)",
    )
    cold_slot: int | None = Field(
        2, ge=0, description="position of the reserved slot for a new product (false / None: off)"
    )
    cold_min_similarity: float = Field(0.5, ge=-1, le=1, description="text similarity a new product needs for the slot")
    fallbacks: tuple[Fallback, ...] = Field(
        FALLBACKS,
        min_length=1,
        description="for shoppers without item history, tried in order: the first that applies answers "
        "(query_match: the request's or the shopper's latest search against product text; "
        "popular_in_category: the request's category; trending: trending and popular blended, always applies)",
    )
