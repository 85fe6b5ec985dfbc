"""shopsense: an e-commerce search and recommendation engine on one shared knowledge base."""

import os

# OpenMP threads of LightGBM and torch spin between calls by default, which on a small machine
# steals the core the next request needs (search p50 fell from ~460 ms to ~47 ms with PASSIVE).
# Set before those libraries load; a value the user chose is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
