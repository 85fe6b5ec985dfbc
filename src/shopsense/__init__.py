"""shopsense: an e-commerce search and recommendation engine on one shared knowledge base.

Importing it changes nothing in the process; the CLI, the server and the benchmarks set the
process-wide variables they need (:mod:`shopsense.process`)."""

__version__ = "0.1.0"
