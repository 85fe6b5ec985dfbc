"""Indexes: vector (exact / HNSW) and lexical, saved as folders of plain files."""
