"""Peer recommenders and search baselines run side by side with the engine (dev/bench only)."""
