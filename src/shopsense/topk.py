"""Top-k selection: the ``k`` best entries of a score vector or of every row of a score matrix.

Every ranked list in shopsense (models, indexes, popularity, search, evaluation) is cut by
:func:`top_k`, so all of them agree on ties (the lower index first) and on what is never returned
(NaN, -inf and excluded entries).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["top_k"]


def top_k(
    scores: np.ndarray,
    k: int,
    *,
    exclude: sp.spmatrix | None = None,
    above: float | None = None,
    overwrite: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (int64) and scores (float32) of the ``k`` best entries, best first, ties to the lower index.

    NaN and -inf scores, scores not greater than ``above`` (when given) and the entries stored in
    ``exclude`` are never returned.

    - ``scores`` of shape ``(n,)``: two arrays of at most ``k`` entries (fewer when fewer qualify).
    - ``scores`` of shape ``(rows, n)``: two ``(rows, k)`` arrays; a row with fewer than ``k``
      qualifying entries is padded with index -1 and score -inf. ``exclude`` is a sparse
      ``(rows, n)`` matrix whose stored entries are dropped (e.g. the items a user already has).

    ``overwrite=True`` lets the function write -inf into ``scores`` at the excluded entries instead
    of copying it first (for large evaluation batches whose scores are not needed afterwards).
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    s = np.asarray(scores)
    if not np.issubdtype(s.dtype, np.floating):
        s, overwrite = s.astype(np.float32), True
    if s.ndim == 1:
        if exclude is not None:
            raise ValueError("exclude applies to a 2-D score matrix; drop the entries from a 1-D vector first")
        return _top_vector(s, k, above)
    if s.ndim != 2:
        raise ValueError(f"scores must be 1-D or 2-D, got shape {s.shape}")
    return _top_rows(s, k, exclude, above, overwrite)


def _top_vector(s: np.ndarray, k: int, above: float | None) -> tuple[np.ndarray, np.ndarray]:
    # Selecting the qualifying entries first is what makes a sparse score vector (BM25: most documents
    # score 0) cheap: only those are partitioned. A comparison with NaN is False, so NaN drops out here.
    pos = np.flatnonzero(s > (-np.inf if above is None else above))
    if len(pos) > k:
        v = s[pos]
        kth = -np.partition(-v, k - 1)[k - 1] if k else np.inf
        better = pos[v > kth]
        pos = np.concatenate([better, pos[v == kth][: k - len(better)]])  # pos ascends: ties keep the lower index
    pos = pos[np.lexsort((pos, -s[pos]))].astype(np.int64)
    return pos, s[pos].astype(np.float32)


def _top_rows(
    s: np.ndarray, k: int, exclude: sp.spmatrix | None, above: float | None, overwrite: bool
) -> tuple[np.ndarray, np.ndarray]:
    b, n = s.shape
    if exclude is not None and exclude.nnz:
        ex = sp.csr_matrix(exclude)
        if ex.shape[0] != b:
            raise ValueError(f"exclude has {ex.shape[0]} rows, scores {b}")
        if not overwrite:
            s = s.copy()
        s[np.repeat(np.arange(b), np.diff(ex.indptr)), ex.indices] = -np.inf
    kk = min(k, n)
    # NaN sorts after every number in a partition, so it only fills places no number can
    part = np.argpartition(-s, kk - 1, axis=1)[:, :kk] if kk < n else np.broadcast_to(np.arange(n), (b, n))
    part_scores = np.take_along_axis(s, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)  # by score desc, then index asc
    ids = np.take_along_axis(part, order, axis=1).astype(np.int64)
    ordered = np.take_along_axis(part_scores, order, axis=1)
    bad = ~(ordered > (-np.inf if above is None else above))  # NaN, -inf (excluded) and not above the bar
    vals = ordered.astype(np.float32)
    if 0 < kk < n:
        # argpartition picks any of the entries tied at the k-th place: redo the rows where some were left out
        kth = ordered[:, kk - 1]
        cut = (ordered == kth[:, None]).sum(axis=1) < (s == kth[:, None]).sum(axis=1)
        for r in np.flatnonzero(cut & ~bad[:, kk - 1]):
            rid, rval = _top_vector(s[r], kk, above)
            ids[r], vals[r] = -1, -np.inf
            ids[r, : len(rid)], vals[r, : len(rid)] = rid, rval
    ids[bad], vals[bad] = -1, -np.inf
    if kk < k:
        ids = np.hstack([ids, np.full((b, k - kk), -1, np.int64)])
        vals = np.hstack([vals, np.full((b, k - kk), -np.inf, np.float32)])
    return ids, vals
