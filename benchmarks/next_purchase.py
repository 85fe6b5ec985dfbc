"""Next purchase on a real shop's funnel log (Taobao UserBehavior sample): the engine's ``for_you`` and
``continue_shopping`` surfaces against the simple peers of the dataset's README, in one run.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/next_purchase.py [--json reports/next_purchase.json]

Protocol (``../shared/data/taobao-userbehavior-sample/README.md``): for every shopper with a purchase
that has earlier events, the target is the item of their last purchase (greatest timestamp, ties by
file order, the last row winning); the history is every event of the shopper strictly before it.
Training sees every event except each target shopper's events from the target's moment on, so the
return scorer's purchase labels come only from purchases before the evaluated ones. Nothing is masked.
HR@10 and NDCG@10 of the target. The engine is trained with its defaults except a sequential model
held to a fixed number of epochs (a wall-clock budget would make the number depend on the machine's load).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.data.dataset import Dataset
from shopsense.engine_config import EngineConfig, OnlineConfig, SequentialConfig
from shopsense.evaluation.next_purchase import gains, surface_lists
from shopsense.ranking.pipeline import Engine
from shopsense.ranking.return_features import FEATURES
from shopsense.ranking.returns import moments, shopper_logs

DATA = Path(os.environ.get("SHOPSENSE_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
FILE = DATA / "taobao-userbehavior-sample" / "UserBehavior_sample.csv"
BEHAVIOUR = {"pv": C.VIEW, "fav": C.FAVORITE, "cart": C.ADD_TO_CART, "buy": C.PURCHASE}
PEER_WEIGHT = {"pv": 1.0, "fav": 2.0, "cart": 3.0, "buy": 4.0}
K = 10


def load(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The log (with its file order) and the targets: each shopper's last purchase with earlier events."""
    df = pd.read_csv(path, dtype={"user_id": str, "item_id": str, "category_id": str})
    df["row"] = np.arange(len(df))
    buys = df[df.behavior == "buy"].sort_values(["timestamp", "row"])
    last = buys.groupby("user_id").tail(1)
    first = df.groupby("user_id").timestamp.min()
    return df, last[last.timestamp > last.user_id.map(first)].reset_index(drop=True)


def gain(ranked: np.ndarray, target: object) -> float:
    """NDCG@10 of one target in one list (:func:`shopsense.evaluation.next_purchase.gains`)."""
    return gains(ranked, target, (K,))[f"ndcg@{K}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", type=Path, default=FILE)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--epochs", type=int, default=5, help="sequential model epochs (fixed, no time budget)")
    ap.add_argument(
        "--shares", type=float, nargs="*", default=[0.5, 1.0], help="other [online] max_return_share values to report"
    )
    a = ap.parse_args()
    t0 = time.perf_counter()
    df, targets = load(a.file)
    cut = df.user_id.map(targets.set_index("user_id").timestamp)
    train = df[~(cut.notna() & (df.timestamp >= cut))]
    events = pd.DataFrame(
        {
            C.USER: train.user_id,
            C.ITEM: train.item_id,
            C.EVENT_TYPE: train.behavior.map(BEHAVIOUR),
            C.TIMESTAMP: train.timestamp.astype(float),
        }
    )
    items = df.drop_duplicates("item_id")
    products = pd.DataFrame(
        {C.ITEM: items.item_id, C.TITLE: "item of category " + items.category_id, C.CATEGORY: items.category_id}
    )
    ds = Dataset.from_frames(events, products)
    config = EngineConfig(
        content=None,  # the items have no text
        sequential=SequentialConfig(epochs=a.epochs, max_seconds=1e9),
    )
    engine = Engine(config).fit(ds, progress=lambda m: print(f"  [{time.perf_counter() - t0:5.0f}s] {m}", flush=True))
    online = OnlineConfig()
    logs = dict(shopper_logs(ds))
    users = ds.users.to_internal(targets.user_id.to_numpy())
    target_idx = ds.items.to_internal(targets.item_id.to_numpy(), strict=False)
    times = targets.timestamp.to_numpy(float)
    histories = [logs[u].before(t) for u, t in zip(users, times, strict=True)]
    lists = surface_lists(engine, histories, times, online, k=K, shares=tuple(a.shares))
    rows = {name: [gain(lst, t) for lst, t in zip(ranked, target_idx, strict=True)] for name, ranked in lists.items()}
    peers = simple_peers(df, targets)
    peers["LambdaRank over own items (README's features)"] = readme_lambdarank(
        ds, engine, histories, targets, target_idx
    )
    results = {}
    together = bought_together_indication(df, products)
    print(f"\nnext purchase, Taobao sample: {len(targets)} target shoppers (HR@10 / NDCG@10)")
    for name, g in {**peers, **{f"shopsense {n}": v for n, v in rows.items()}}.items():
        arr = np.asarray(g)
        results[name] = {"hr@10": float((arr > 0).mean()), "ndcg@10": float(arr.mean())}
        print(f"| {name} | {results[name]['hr@10']:.4f} | {results[name]['ndcg@10']:.4f} |")
    print(f"\nbought together, next purchase in the session (indication: {together.pop('sessions')} sessions)")
    for name, g in together.items():
        arr = np.asarray(g)
        results[f"bought_together: {name}"] = {"hr@10": float((arr > 0).mean()), "ndcg@10": float(arr.mean())}
        print(f"| {name} | {(arr > 0).mean():.4f} | {arr.mean():.4f} |")
    meta = {
        "targets": len(targets),
        "seconds": time.perf_counter() - t0,
        "cpu": platform.processor() or _cpu_model(),
        "returns": engine.metrics.get("returns", {}),
        "discovery_hit_rate@1..10": engine.discovery_hit_rate[:10],
        "discovery_hit_rate_over": engine.metrics.get("discovery_hit_rate_over"),
    }
    print(json.dumps(meta, indent=1))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"results": results, **meta}, indent=1), encoding="utf-8")


def bought_together_indication(df: pd.DataFrame, products: pd.DataFrame) -> dict:
    """Sessions (30-minute gaps) with purchases at two or more moments: from the first purchase, the
    next one. Complements are learned from every other shopper's log (leave the shopper out), the
    peer is the best sellers among those shoppers. An indication only: about a hundred sessions."""
    from shopsense.models.complements import Complements
    from shopsense.ranking.return_features import category_codes

    ds = Dataset.from_frames(
        pd.DataFrame(
            {
                C.USER: df.user_id,
                C.ITEM: df.item_id,
                C.EVENT_TYPE: df.behavior.map(BEHAVIOUR),
                C.TIMESTAMP: df.timestamp.astype(float),
            }
        ),
        products,
    )
    inter = ds.interactions
    codes = category_codes(ds.products)[0]
    buys = inter[inter[C.EVENT_TYPE] == C.PURCHASE].sort_values([C.USER_IDX, C.TIMESTAMP], kind="stable")
    out: dict = {"engine complements": [], "best sellers (peer)": [], "sessions": 0}
    for u, g in buys.groupby(C.USER_IDX):
        t = g[C.TIMESTAMP].to_numpy()
        session = np.cumsum(np.r_[True, np.diff(t) > 1800])
        for sid in np.unique(session):
            part = g[session == sid]
            moments = part[C.TIMESTAMP].unique()
            if len(moments) < 2:
                continue
            anchor = part[part[C.TIMESTAMP] == moments[0]][C.ITEM_IDX].to_numpy()
            target = part[part[C.TIMESTAMP] == moments[1]][C.ITEM_IDX].to_numpy()[-1]
            others = inter[inter[C.USER_IDX] != u]
            comp = Complements().fit(others, ds.n_items, codes)
            items, _ = comp.of(anchor, K, exclude=anchor)
            out["engine complements"].append(gain(items, target))
            sold = others[others[C.EVENT_TYPE] == C.PURCHASE][C.ITEM_IDX].value_counts().index.to_numpy()
            out["best sellers (peer)"].append(gain(sold[~np.isin(sold, anchor)], target))
            out["sessions"] += 1
    return out


def simple_peers(df: pd.DataFrame, targets: pd.DataFrame) -> dict[str, list[float]]:
    """The README's simple peers: own items most recent first; own items by weighted count with a
    one-day half-life; popularity (purchases before the target's time)."""
    out: dict[str, list[float]] = {
        "own items, most recent first": [],
        "own items by weighted count": [],
        "popularity": [],
    }
    by_user = dict(tuple(df.groupby("user_id")))
    buys = df[df.behavior == "buy"].sort_values("timestamp")
    for r in targets.itertuples():
        h = by_user[r.user_id]
        h = h[h.timestamp < r.timestamp].sort_values(["timestamp", "row"])
        recent = h.item_id.iloc[::-1].drop_duplicates().to_numpy()
        out["own items, most recent first"].append(gain(recent, r.item_id))
        w = h.behavior.map(PEER_WEIGHT) * 0.5 ** ((r.timestamp - h.timestamp) / 86400.0)
        score = w.groupby(h.item_id.to_numpy()).sum()
        last = h.groupby("item_id").row.max()
        order = sorted(score.index, key=lambda i: (-score[i], -last[i]))
        out["own items by weighted count"].append(gain(np.array(order), r.item_id))
        before = buys[buys.timestamp < r.timestamp].item_id.value_counts()
        out["popularity"].append(gain(before.index.to_numpy(), r.item_id))
    return out


def readme_lambdarank(
    ds: Dataset, engine: Engine, histories: list, targets: pd.DataFrame, target_idx: np.ndarray
) -> list[float]:
    """The README's plain LambdaRank peer over the shopper's own items (counts per event type, hours
    since the last event, recency rank, last-item flag, events in the item's category), trained on
    every earlier purchase: the same moments as the engine's return scorer, those features only."""
    import lightgbm as lgb

    from shopsense.ranking.return_features import return_features
    from shopsense.ranking.returns import log_stats

    assert engine.returns is not None
    cols = [
        FEATURES.index(f)
        for f in (
            "n_view",
            "n_favorite",
            "n_cart",
            "n_purchase",
            "hours_since_last",
            "recency_rank",
            "is_last",
            "cat_events",
        )
    ]
    logs = shopper_logs(ds)
    stats = log_stats(logs, ds.products)
    data = moments(logs, stats, engine.returns.config)
    assert data is not None
    buy_rows = data.purchase[data.groups]
    x, y, g = data.features[buy_rows][:, cols], data.labels[buy_rows], data.groups[buy_rows]
    has = pd.Series(y).groupby(g).transform("max").to_numpy() > 0
    x, y, g = x[has], y[has], g[has]
    sizes = np.unique(g, return_counts=True)[1]
    params = {
        "objective": "lambdarank",
        "num_leaves": 7,
        "learning_rate": 0.05,
        "min_data_in_leaf": 10,
        "verbose": -1,
        "num_threads": 1,
        "seed": 0,
        "deterministic": True,
    }
    model = lgb.train(params, lgb.Dataset(x, y, group=sizes), num_boost_round=200)
    out = []
    for h, t, tgt in zip(histories, targets.timestamp.to_numpy(float), target_idx, strict=True):
        items, f = return_features(h, t, stats)
        s = model.predict(f[:, cols]) if len(items) else np.zeros(0)
        out.append(gain(items[np.argsort(-s, kind="stable")], tgt))
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


if __name__ == "__main__":
    main()
