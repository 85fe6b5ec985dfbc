"""The knowledge store: catalog, behaviour, learned knowledge and outcomes, shared by every part.

One class (:class:`KnowledgeStore`, opened by URL) implements every role; the roles' interfaces
(:mod:`shopsense.store.roles`) are for callers that need only one.
"""

from shopsense.store.roles import (
    Catalog,
    EmbeddingCache,
    EvaluationRecords,
    EventLog,
    ExperimentRecords,
    ImpressionLog,
    KeyRing,
    Shoppers,
    Transactions,
    VersionRecords,
)
from shopsense.store.sql import KnowledgeStore, open_store

__all__ = [
    "Catalog",
    "EmbeddingCache",
    "EvaluationRecords",
    "EventLog",
    "ExperimentRecords",
    "ImpressionLog",
    "KeyRing",
    "KnowledgeStore",
    "Shoppers",
    "Transactions",
    "VersionRecords",
    "open_store",
]
