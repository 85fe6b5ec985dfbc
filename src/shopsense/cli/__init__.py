"""Command-line entry point (thin: wires options to library calls)."""
