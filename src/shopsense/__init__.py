"""shopsense: an e-commerce search and recommendation engine on one shared knowledge base."""

__version__ = "0.1.0"
