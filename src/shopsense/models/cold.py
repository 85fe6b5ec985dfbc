"""Content -> collaborative mapping: a ridge regression from text vectors to collaborative vectors.

Learned on warm products (those with events), it gives a product with no history a place in the
collaborative space (ALS factors, sequential item table), so it can be recommended at once.
"""

from __future__ import annotations

import numpy as np


class ContentMapping:
    """``W = argmin ||X W - Y||^2 + l2 ||W||^2`` with a bias column; ``transform(X) = X W``."""

    def __init__(self, l2: float = 1.0) -> None:
        if l2 < 0:
            raise ValueError(f"l2 must be >= 0, got {l2}")
        self.l2 = l2
        self.weights: np.ndarray | None = None

    def fit(self, x: np.ndarray, y: np.ndarray) -> ContentMapping:
        """Fit on rows of text vectors ``x`` (n, d) and collaborative vectors ``y`` (n, f)."""
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} rows, y has {len(y)}")
        xb = np.hstack([np.asarray(x, np.float64), np.ones((len(x), 1))])
        a = xb.T @ xb + self.l2 * np.eye(xb.shape[1])
        self.weights = np.linalg.solve(a, xb.T @ np.asarray(y, np.float64))
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        if self.weights is None:
            raise RuntimeError("ContentMapping is not fitted")
        xb = np.hstack([np.asarray(x, np.float64), np.ones((len(x), 1))])
        return (xb @ self.weights).astype(np.float32)
