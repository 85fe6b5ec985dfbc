"""Complements: products bought together (one shopper's purchases and carts within one session), not
products like each other.

A basket is a shopper's purchases and add-to-carts with no gap of more than 30 minutes between them
(or one ``session_id`` where the log has them). Two products in one basket count once per basket;
a product's complements are ranked by how often they share a basket with it, as a share of its
baskets (shrunk towards zero for products in few baskets). Products of the anchor's own category are
substitutes, not complements, and are left out. Where a product has no basket partners yet, its
category's partners answer: the best-selling products of the categories bought with it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shopsense import columns as C
from shopsense.ranking.return_features import SESSION_GAP

BASKET_EVENTS = (C.ADD_TO_CART, C.PURCHASE)
MAX_BASKET = 30  # larger baskets (bulk orders, bots) would add many pairs and say little
SHRINK = 2.0  # baskets added to each product's count: a pair seen once in one basket is not a rule


class Complements:
    """Item x item basket co-occurrence counts, and the same per category."""

    def __init__(self) -> None:
        self.pairs = sp.csr_matrix((0, 0), dtype=np.float32)
        self.baskets = np.zeros(0, np.float32)  # baskets per item
        self.category = np.zeros(0, np.int64)
        self.cat_pairs = sp.csr_matrix((0, 0), dtype=np.float32)
        self.sales = np.zeros(0, np.float32)  # basket count per item (category fallback's order)
        self._sellers: tuple[np.ndarray, np.ndarray] | None = None  # see _best_sellers

    def fit(self, inter: pd.DataFrame, n_items: int, category: np.ndarray) -> Complements:
        """From interactions (user_idx, item_idx, timestamp, event_type[, session_id]) and a category
        code per item (-1: none)."""
        ev = inter[inter[C.EVENT_TYPE].isin(BASKET_EVENTS)]
        ev = ev.sort_values([C.USER_IDX, C.TIMESTAMP], kind="stable")
        u = ev[C.USER_IDX].to_numpy()
        t = ev[C.TIMESTAMP].to_numpy(float)
        new = np.r_[True, (u[1:] != u[:-1]) | (np.diff(t) > SESSION_GAP)] if len(ev) else np.zeros(0, bool)
        if C.SESSION in ev.columns and len(ev):
            s = ev[C.SESSION].to_numpy(dtype=object)
            same_session = pd.notna(s[1:]) & (s[1:] == s[:-1])
            new[1:] &= ~same_session
        basket = np.cumsum(new) - 1
        b = pd.DataFrame({"b": basket, "i": ev[C.ITEM_IDX].to_numpy()}).drop_duplicates()
        size = b.groupby("b")["i"].transform("size").to_numpy()
        b = b[size <= MAX_BASKET]
        m = sp.csr_matrix(
            (np.ones(len(b), np.float32), (b["b"].to_numpy(), b["i"].to_numpy())),
            shape=(int(basket.max()) + 1 if len(basket) else 0, n_items),
        )
        pairs = (m.T @ m).tocsr()
        pairs.setdiag(0)
        pairs.eliminate_zeros()
        baskets = np.bincount(b["i"].to_numpy(), minlength=n_items)
        return self.from_counts(pairs, baskets, category)

    def from_counts(self, pairs: sp.csr_matrix, baskets: np.ndarray, category: np.ndarray) -> Complements:
        """The rest of :meth:`fit` from its counts: ``pairs`` (item x item, baskets shared, zero
        diagonal) and ``baskets`` (baskets per item), e.g. counted on Spark (``distributed/complements.py``)."""
        self.category = np.asarray(category, np.int64)
        self.baskets = np.asarray(baskets).astype(np.float32)
        self.sales = self.baskets
        self.pairs = pairs.astype(np.float32)
        n_items = self.pairs.shape[0]
        n_cat = int(self.category.max()) + 1 if len(self.category) and self.category.max() >= 0 else 0
        known = self.category >= 0
        to_cat = sp.csr_matrix(
            (np.ones(int(known.sum()), np.float32), (np.flatnonzero(known), self.category[known])),
            shape=(n_items, max(n_cat, 1)),
        )
        cat_pairs = (to_cat.T @ self.pairs @ to_cat).tocsr()
        cat_pairs.setdiag(0)
        cat_pairs.eliminate_zeros()
        self.cat_pairs = cat_pairs
        self._sellers = None
        return self

    def _best_sellers(self) -> tuple[np.ndarray, np.ndarray]:
        """Every sold item of a category, grouped by category, best seller first (ties: lower index),
        and where each category's group starts (``starts[c]:starts[c + 1]``). Made once per loaded
        model: the category fallback then reads a few items per category instead of the catalog."""
        if self._sellers is None:
            sold = np.flatnonzero((self.category >= 0) & (self.sales > 0))
            order = sold[np.lexsort((sold, -self.sales[sold], self.category[sold]))]
            n_cat = max(int(self.category.max()) + 1 if len(self.category) else 0, self.cat_pairs.shape[1])
            starts = np.searchsorted(self.category[order], np.arange(n_cat + 1))
            self._sellers = (order, starts)
        return self._sellers

    def of(
        self, anchors: np.ndarray, k: int, exclude: np.ndarray | None = None, per_category: int = 2
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best complements of the anchors together (items and scores, best first): never an
        anchor, an excluded item or an item of an anchor's category; at most ``per_category`` of one category."""
        anchors = np.asarray(anchors, np.int64)
        anchors = anchors[(anchors >= 0) & (anchors < self.pairs.shape[0])]
        if not len(anchors) or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        rows = self.pairs[anchors]
        share = sp.diags(1.0 / (self.baskets[anchors] + SHRINK)) @ rows
        score = np.asarray(share.sum(axis=0)).ravel()
        cand = np.flatnonzero(score > 0)
        scores = score[cand]
        # the categories bought with the anchors' categories: their best sellers, below every direct pair
        anchor_cats = np.unique(self.category[anchors][self.category[anchors] >= 0])
        if len(anchor_cats) and self.cat_pairs.shape[0]:
            cat_score = np.asarray(self.cat_pairs[anchor_cats].sum(axis=0)).ravel()
            cats = np.flatnonzero(cat_score > 0)
            if len(cats):
                # at most per_category items of a category are shown, so only its best sellers can be:
                # as many as could be dropped below (anchors, excluded, direct pairs) plus per_category
                order, starts = self._best_sellers()
                room = per_category + len(anchors) + len(cand) + (len(exclude) if exclude is not None else 0)
                top = [order[starts[c] : min(starts[c] + room, starts[c + 1])] for c in cats]
                extra = np.setdiff1d(np.concatenate(top), cand)
                rel = cat_score[self.category[extra]] / (cat_score.max() + 1e-9)
                extra_score = 1e-3 * rel * np.log1p(self.sales[extra]) / (np.log1p(self.sales.max()) + 1e-9)
                cand, scores = np.r_[cand, extra], np.r_[scores, extra_score]
        drop = np.isin(cand, anchors) | (np.isin(self.category[cand], anchor_cats) & (self.category[cand] >= 0))
        if exclude is not None and len(exclude):
            drop |= np.isin(cand, exclude)
        cand, scores = cand[~drop], scores[~drop]
        order = np.lexsort((cand, -scores))
        out: list[int] = []
        taken: dict[int, int] = {}
        for i in order:
            c = int(self.category[cand[i]])
            if c >= 0 and taken.get(c, 0) >= per_category:
                continue
            taken[c] = taken.get(c, 0) + 1
            out.append(int(i))
            if len(out) == k:
                break
        idx = np.array(out, np.int64)
        return cand[idx].astype(np.int64), scores[idx].astype(np.float32)

    # ------------------------------------------------------------------ persistence
    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        sp.save_npz(folder / "pairs.npz", self.pairs)
        sp.save_npz(folder / "cat_pairs.npz", self.cat_pairs)
        np.savez(folder / "items.npz", baskets=self.baskets, category=self.category)

    @classmethod
    def load(cls, folder: Path) -> Complements:
        c = cls()
        c.pairs = sp.load_npz(folder / "pairs.npz").tocsr()
        c.cat_pairs = sp.load_npz(folder / "cat_pairs.npz").tocsr()
        z = np.load(folder / "items.npz")
        c.baskets, c.category = z["baskets"], z["category"]
        c.sales = c.baskets
        return c
