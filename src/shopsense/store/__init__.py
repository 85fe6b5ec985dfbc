"""The knowledge store: catalog, behaviour, learned knowledge and outcomes, shared by every part."""

from shopsense.store.sql import KnowledgeStore, open_store

__all__ = ["KnowledgeStore", "open_store"]
