"""The knowledge-store schema, one SQLAlchemy Core definition for SQLite and PostgreSQL alike."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
)

from shopsense import columns as C

metadata = MetaData()

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
_SEQ = BigInteger().with_variant(Integer(), "sqlite")

products = Table(
    "products",
    metadata,
    Column(C.ITEM, Text, primary_key=True),
    Column(C.TITLE, Text, nullable=False),
    Column(C.DESCRIPTION, Text),
    Column(C.CATEGORY, Text),
    Column(C.BRAND, Text),
    Column(C.PRICE, Float),
    Column(C.IMAGE_URL, Text),
    Column(C.TAGS, Text),  # JSON list
    Column(C.ATTRIBUTES, Text),  # JSON object
    Column(C.AVAILABLE, Integer, nullable=False, default=1),
    Column(C.CREATED_AT, Float),
    Column(C.UPDATED_AT, Float),
    Column("row_hash", Text, nullable=False),  # hash of the content columns: skip no-op updates
)

users = Table(
    "users",
    metadata,
    Column(C.USER, Text, primary_key=True),
    Column(C.ATTRIBUTES, Text),
    Column(C.CREATED_AT, Float),
    # 1: the shopper opted out of personalisation (stores from before get it from KnowledgeStore._migrate)
    Column(C.OPTED_OUT, Integer, nullable=False, default=0, server_default="0"),
    Index("ix_users_opted_out", C.OPTED_OUT),
)

#: an anonymous shopper id merged into a user (``store/links.py``): one row per pair, kept so that
#: export and deletion of the user follow the ids merged into them
user_links = Table(
    "user_links",
    metadata,
    Column(C.ANONYMOUS_ID, Text, primary_key=True),
    Column(C.USER, Text, primary_key=True),
    Column(C.LINKED_AT, Float, nullable=False),
    Index("ix_user_links_user", C.USER),
)

#: the events index per shopper, newest last (see below)
EVENTS_BY_USER = "ix_events_user_recent"
EVENTS_BY_USER_NARROW = "ix_events_user_ts"

events = Table(
    "events",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=True),  # arrival order: breaks timestamp ties
    Column(C.EVENT_KEY, Text, nullable=False, unique=True),
    Column(C.EVENT_ID, Text),
    Column(C.USER, Text, nullable=False),
    Column(C.ITEM, Text),  # NULL for a search
    Column(C.EVENT_TYPE, Text, nullable=False),
    Column(C.VALUE, Float),
    Column(C.TIMESTAMP, Float, nullable=False),
    Column(C.SESSION, Text),
    Column(C.QUERY, Text),
    Column(C.REQUEST_ID, Text),
    Column(C.ORDER_ID, Text),  # stores from before get it from EventRows._migrate
    # SQLite: a request's read of the shopper's latest events (``recent_event_columns``) comes from
    # this index alone, one or two pages, instead of a table page per event, which other processes'
    # writes keep evicting from the connection's cache (0.57 -> 0.33 ms per /recommend on the bench
    # home). PostgreSQL keeps the narrow index: its B-tree entries are limited to about 2.7 kB,
    # which a long query in a multi-byte script could pass. Stores from before: EventRows._migrate.
    Index(EVENTS_BY_USER, C.USER, C.TIMESTAMP, "seq", C.ITEM, C.EVENT_TYPE, C.QUERY).ddl_if(dialect="sqlite"),
    Index(EVENTS_BY_USER_NARROW, C.USER, C.TIMESTAMP).ddl_if(dialect="postgresql"),
    Index("ix_events_request", C.REQUEST_ID),
)

impressions = Table(
    "impressions",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=True),
    Column(C.REQUEST_ID, Text, nullable=False),
    Column(C.USER, Text),
    Column(C.ITEM, Text, nullable=False),
    Column(C.POSITION, Integer, nullable=False),
    Column(C.SCORE, Float),
    Column(C.SOURCE, Text),
    Column(C.SURFACE, Text, nullable=False),
    Column(C.MODEL_VERSION, Text),
    Column(C.QUERY, Text),
    Column(C.TIMESTAMP, Float, nullable=False),
    # the experiment and arm of the request (None outside one); stores from before: ExperimentRows._migrate
    Column(C.EXPERIMENT, Text),
    Column(C.ARM, Text),
    Column(C.RANKED_POSITION, Integer),  # set on randomised swaps only; stores from before: ExperimentRows._migrate
    Index("ix_impressions_request", C.REQUEST_ID),
    Index("ix_impressions_user", C.USER),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("version", Text, primary_key=True),
    Column(C.CREATED_AT, Float, nullable=False),
    Column("status", Text, nullable=False),  # training | complete | failed
    Column("path", Text),
    Column("metrics", Text),  # JSON
    Column("active", Integer, nullable=False, default=0),
    # when it was last made active (rollback finds the one before); stores from before: KnowledgeStore._migrate
    Column("activated_at", Float),
)

#: online experiments (``shopsense.experiments``); stores from before get it from ExperimentRows._migrate
experiments = Table(
    "experiments",
    metadata,
    Column("name", Text, primary_key=True),
    Column("arms", Text, nullable=False),  # JSON list of {"name", "version", "weight"}, control first
    Column(C.SURFACE, Text, nullable=False),  # as given: a surface name, "recommend", "search", "both", "all"
    Column("mode", Text, nullable=False),  # ab | interleave
    Column("status", Text, nullable=False),  # running | stopped
    Column("started_at", Float, nullable=False),
    Column("stopped_at", Float),
    Column("salt", Text, nullable=False),  # hex; the key of the assignment hash, one per experiment
)

embeddings = Table(
    "embeddings",
    metadata,
    Column("model_id", Text, primary_key=True),
    Column("text_hash", Text, primary_key=True),
    Column("dim", Integer, nullable=False),
    Column("vector", LargeBinary, nullable=False),  # float32 little-endian bytes
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", Text, primary_key=True),  # public prefix shown in listings
    Column("key_hash", Text, nullable=False, unique=True),  # SHA-256 of the secret key; the key itself is never stored
    Column("scopes", Text, nullable=False),  # comma-separated: read,write,admin
    Column("name", Text),
    Column(C.CREATED_AT, Float, nullable=False),
    Column("revoked", Integer, nullable=False, default=0),
)

meta = Table(
    "store_meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),  # e.g. the secret salt of the query-vector cache's keys
)

#: the shop's own offline evaluations (`shopsense evaluate` without files), newest shown on the
#: dashboard; stores from before get it from `shopsense migrate` (schema version 2)
evaluations = Table(
    "evaluations",
    metadata,
    Column("evaluation_id", _SEQ, primary_key=True, autoincrement=True),
    Column("kind", Text, nullable=False),  # recommend | search
    Column(C.CREATED_AT, Float, nullable=False),
    Column("result", Text, nullable=False),  # JSON: the benchmark runner's results shape
    Index("ix_evaluations_created", C.CREATED_AT),
)
