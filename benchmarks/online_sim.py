"""A simulated shop that proves the loop: log -> train on outcomes -> serve, and how sensitive the
experiments are (issue 17, point 3).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/online_sim.py [--seeds 3] [--users 3000] [--rounds 4]
        [--no-exposure] [--json reports/online_sim.json]

**Shoppers** come from a public dataset (default: Amazon Industrial & Scientific). Each shopper's
sequence is cut in two: the first 70% (at least 2 items) is what the shop has seen of them (ingested
as purchases), the rest is their **true interest**: the products they really bought later, never
shown to any model. Shoppers with at least 4 interactions are simulated (a random sample per seed).

**The click model**, fixed before any run and the same for every arm:

- a shopper examines position p (1-based) with probability 1/p;
- an examined product is clicked with probability 1 if it is in the shopper's true interest, else 0.02;
- a click becomes a purchase with probability 0.3;
- a clicked product joins the shopper's history (an event with the list's ``request_id``), so the
  next round does not show it again.

**The loop** (``--rounds`` rounds per seed, each round: train, then every simulated shopper gets one
``for_you`` list of 10 from the real served recommender, in process): two worlds per seed, each its
own knowledge store from the same start. *next-item*: ``shopsense train`` with outcome learning off
(the fusion tuned on next-item labels). *loop*: the same with outcome learning on (the ranker of
:mod:`shopsense.ranking.outcomes`, served only when it wins on held-out logged lists). Both log
impressions and outcomes the same way, with the service's randomised position swap on 5% of lists
(the propensity estimator's slice). The served recommender's clock is the simulated moment of each
list, so recency and what a shopper was already shown (:mod:`shopsense.ranking.exposure`; off in the
loop world with ``--no-exposure``) are as of the simulated day, not of the machine's date. Round 0 is the same model in both; CTR (clicks per impression)
per round, and the loop's lift at the last round with a 95% interval from per-shopper paired
differences pooled over seeds.

**Sensitivity**: a version known to be better (the default engine, trained on the starting data)
against a weaker one (the most bought products the shopper has not bought), for every shopper with
a held-out future. A/B: shoppers split in half, one arm's list each, Welch's
t-test on per-shopper clicks (the report's test). Interleaving: each shopper sees the team-draft
merge of both lists, a click credits its team, a sign test on per-shopper wins (the report's
test). For growing numbers of shoppers, the share of 200 resampled runs reaching p < 0.05 (power);
the impressions each needs for 80% power, and their ratio. **A/A**: the same version on both sides,
2,000 runs of 2,000 shoppers each: the share with p < 0.05 (expected 5%).

The engine is the default one without the sequential model and without text vectors, so a round
trains in well under a minute here: the loop is what is measured, not the sources.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.config import load_settings
from shopsense.data.public import load_dataset
from shopsense.engine_config import EngineConfig
from shopsense.evaluation.ab_stats import sign_test, welch_p
from shopsense.experiments.interleave import credit, team_draft
from shopsense.experiments.position_swap import position_swap
from shopsense.recommend.recommender import Recommender
from shopsense.recommend.request import RecommendRequest
from shopsense.store import open_store
from shopsense.training import train

K = 10
NOISE_CLICK = 0.02
PURCHASE_AFTER_CLICK = 0.3
SWAP_SHARE = 0.05
DAY = 86_400.0
ENGINE = {"sequential": None, "content": None}  # see the module docstring


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def examined(pos: int) -> float:
    """Probability that position ``pos`` (0-based) is looked at: 1 / (pos + 1)."""
    return 1.0 / (pos + 1)


@dataclass
class Shop:
    products: pd.DataFrame
    seen: pd.DataFrame  # the events the shop starts with
    interest: dict[str, set[str]]  # shopper -> products they will buy (the truth)
    start: float  # first simulated moment


def make_shop(name: str) -> Shop:
    d = load_dataset(name)
    ev = d.events.sort_values([C.USER, C.TIMESTAMP], kind="stable")
    pos = ev.groupby(C.USER).cumcount()
    n = ev.groupby(C.USER)[C.ITEM].transform("size")
    cut = np.maximum(2, np.floor(0.7 * n)).astype(int)
    seen = ev[(pos < cut) | (n < 4)]
    future = ev[(pos >= cut) & (n >= 4)]
    interest = {u: set(g) for u, g in future.groupby(C.USER)[C.ITEM]}
    return Shop(d.products, seen, interest, float(ev[C.TIMESTAMP].max()) + DAY)


def clicks_for(items: list[str], truth: set[str], rng: np.random.Generator) -> list[bool]:
    """The click model above, for one shown list."""
    out = []
    for pos, item in enumerate(items):
        p = examined(pos) * (1.0 if item in truth else NOISE_CLICK)
        out.append(bool(rng.random() < p))
    return out


def world(home: Path, shop: Shop, outcomes: bool, engine: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """A fresh knowledge store and settings for one arm of one seed."""
    eng = {**ENGINE, **(engine or {})}
    if not outcomes:
        eng["outcomes"] = None
    settings = load_settings(home=home).model_copy(update={"engine": EngineConfig(**eng)})
    store = open_store(settings.store_url)
    store.upsert_products(shop.products)
    store.add_events(shop.seen)
    return store, settings


def serve_round(
    store: Any, settings: Any, shop: Shop, users: list[str], rnd: int, tag: str, rng: np.random.Generator
) -> tuple[dict[str, int], dict[str, Any]]:
    """Train, then one list per shopper; impressions and outcome events logged. Per-shopper clicks,
    and what the training said of the logged outcomes."""
    trained = train(store, settings)
    rec = Recommender.from_store(store, settings)
    now = shop.start + rnd * DAY
    imps: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    clicks: dict[str, int] = {}
    coin = random.Random(f"{tag}-{rnd}")
    for i, u in enumerate(users):
        t = now + i
        rec.clock = lambda t=t: t  # the simulated moment: recency and what was shown before it
        ranked = [it.item_id for it in rec.recommend(RecommendRequest(user_id=u, k=K))]
        shown, ranked_pos = position_swap(ranked, SWAP_SHARE, coin)
        rid = f"{tag}-r{rnd}-{i}"
        for pos, item in enumerate(shown):
            imps.append(
                {
                    C.REQUEST_ID: rid,
                    C.USER: u,
                    C.ITEM: item,
                    C.POSITION: pos,
                    C.SURFACE: "recommend",
                    C.MODEL_VERSION: rec.version,
                    C.TIMESTAMP: t,
                    C.RANKED_POSITION: None if ranked_pos is None else ranked_pos[pos],
                }
            )
        got = clicks_for(shown, shop.interest.get(u, set()), rng)
        clicks[u] = sum(got)
        for item, c in zip(shown, got, strict=True):
            if not c:
                continue
            events.append({C.USER: u, C.ITEM: item, C.EVENT_TYPE: C.CLICK, C.TIMESTAMP: t + 0.1, C.REQUEST_ID: rid})
            if rng.random() < PURCHASE_AFTER_CLICK:
                events.append(
                    {C.USER: u, C.ITEM: item, C.EVENT_TYPE: C.PURCHASE, C.TIMESTAMP: t + 0.2, C.REQUEST_ID: rid}
                )
    store.log_impressions(pd.DataFrame(imps))
    if events:
        store.add_events(pd.DataFrame(events))
    learned = trained.metrics.get("outcomes", {})
    return clicks, {k: v for k, v in learned.items() if k in ("lists", "impressions", "heldout_gain", "chosen")}


def loop(
    shop: Shop, seeds: int, n_users: int, rounds: int, tmp: Path, engine: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Both worlds per seed (see the module docstring); ``engine``: settings changed in both."""
    eligible = sorted(shop.interest)
    per_seed = []
    paired: list[float] = []
    for seed in range(seeds):
        users = sorted(np.random.default_rng(seed).choice(eligible, min(n_users, len(eligible)), replace=False))
        ctr: dict[str, list[float]] = {}
        learned: list[dict[str, Any]] = []
        last: dict[str, dict[str, int]] = {}
        for arm, outcomes in (("next_item", False), ("loop", True)):
            store, settings = world(tmp / f"s{seed}-{arm}", shop, outcomes, engine)
            rng = np.random.default_rng(1000 + seed)  # the same click draws' stream in both worlds
            ctr[arm] = []
            for r in range(rounds):
                clicks, outcomes_used = serve_round(store, settings, shop, users, r, f"{arm}{seed}", rng)
                ctr[arm].append(sum(clicks.values()) / (K * len(users)))
                last[arm] = clicks
                if outcomes:
                    learned.append({"round": r, **outcomes_used})
                say(f"seed {seed} {arm} round {r}: CTR {ctr[arm][-1]:.4f} {outcomes_used}")
            store.close()
        paired += [last["loop"][u] - last["next_item"][u] for u in users]
        per_seed.append({"seed": seed, "users": len(users), "ctr": ctr, "outcome_ranker": learned})
    base = np.mean([s["ctr"]["next_item"][-1] for s in per_seed])
    diff = np.asarray(paired, dtype=float) / K  # per shopper: CTR difference at the last round
    half = 1.96 * diff.std(ddof=1) / np.sqrt(len(diff))
    return {
        "per_seed": per_seed,
        "last_round": rounds - 1,
        "ctr_next_item": float(base),
        "ctr_loop": float(np.mean([s["ctr"]["loop"][-1] for s in per_seed])),
        "lift": float(diff.mean() / base),
        "lift_ci": [float((diff.mean() - half) / base), float((diff.mean() + half) / base)],
        "per_seed_lift": [s["ctr"]["loop"][-1] / s["ctr"]["next_item"][-1] - 1 for s in per_seed],
    }


def lists_of(shop: Shop, users: list[str], tmp: Path) -> dict[str, list[str]]:
    """The default engine's ``for_you`` list of every shopper, trained on the starting data."""
    store, settings = world(tmp, shop, outcomes=False)
    train(store, settings)
    rec = Recommender.from_store(store, settings)
    out = {u: [it.item_id for it in rec.recommend(RecommendRequest(user_id=u, k=K))] for u in users}
    store.close()
    return out


def popular_lists(shop: Shop, users: list[str]) -> dict[str, list[str]]:
    """The weaker version: the most bought products the shopper has not bought (no personalisation)."""
    ranked = shop.seen[C.ITEM].value_counts().index.tolist()
    had = shop.seen.groupby(C.USER)[C.ITEM].agg(set).to_dict()
    out = {}
    for u in users:
        own = had.get(u, set())
        out[u] = [i for i in ranked[: K + len(own)] if i not in own][:K]
    return out


def click_probability(items: list[str], truth: set[str]) -> np.ndarray:
    """Per position of a shown list (padded to K): examination x click-if-examined."""
    p = np.zeros(K)
    for pos, item in enumerate(items[:K]):
        p[pos] = examined(pos) * (1.0 if item in truth else NOISE_CLICK)
    return p


def power(run: Any, sizes: list[int], reps: int, rng: np.random.Generator) -> dict[int, float]:
    """Per size, the share of ``reps`` runs of ``run(size, rng)`` with p < 0.05."""
    return {n: float(np.mean([(p := run(n, rng)) is not None and p < 0.05 for _ in range(reps)])) for n in sizes}


def needed(curve: dict[int, float], target: float = 0.8) -> float | None:
    """Shoppers for ``target`` power, interpolated in log space between the grid's sizes."""
    pts = sorted(curve.items())
    for (n0, p0), (n1, p1) in zip(pts, pts[1:], strict=False):
        if p0 < target <= p1:
            f = (target - p0) / (p1 - p0)
            return float(np.exp(np.log(n0) + f * (np.log(n1) - np.log(n0))))
    return float(pts[0][0]) if pts and pts[0][1] >= target else None


def sensitivity(shop: Shop, tmp: Path, reps: int, aa_runs: int) -> dict[str, Any]:
    users = sorted(shop.interest)
    say(f"lists of the better (default engine) and the weaker (popular) versions for {len(users)} shoppers")
    lists = {"better": lists_of(shop, users, tmp / "better"), "weaker": popular_lists(shop, users)}
    truth = shop.interest
    prob = {v: np.stack([click_probability(lists[v][u], truth[u]) for u in users]) for v in lists}
    n_users = len(users)

    def ab(n: int, rng: np.random.Generator, a: str = "weaker", b: str = "better") -> float | None:
        pick = rng.choice(n_users, n, replace=n > n_users)
        half = n // 2
        ca = (rng.random((half, K)) < prob[a][pick[:half]]).sum(axis=1)
        cb = (rng.random((n - half, K)) < prob[b][pick[half:]]).sum(axis=1)
        return welch_p(ca, cb)

    def interleave(n: int, rng: np.random.Generator, a: str = "weaker", b: str = "better") -> float | None:
        wins = losses = 0
        for i in rng.choice(n_users, n, replace=n > n_users):
            u = users[i]
            draft = team_draft(lists[a][u], lists[b][u], K, random.Random(int(rng.integers(1 << 30))))
            c = credit(
                draft.teams,
                list(rng.random(len(draft.items)) < click_probability(draft.items, truth[u])[: len(draft.items)]),
            )
            wins, losses = wins + (c > 0), losses + (c < 0)
        return sign_test(wins, losses)

    rng = np.random.default_rng(7)
    ctr = {v: float(prob[v].sum(axis=1).mean() / K) for v in prob}  # expected CTR under the click model
    grid = [25, 50, 100, 200, 400, 800, 1600, 3200, 6400, 12800]
    say(f"power curves over {grid} shoppers, {reps} runs each")
    ab_curve = power(ab, grid, reps, rng)
    il_curve = power(interleave, grid, reps, rng)
    n_ab, n_il = needed(ab_curve), needed(il_curve)
    aa_n = 2000
    say(f"A/A: {aa_runs} runs of {aa_n} shoppers")
    aa_ab = np.mean([(p := ab(aa_n, rng, "better", "better")) is not None and p < 0.05 for _ in range(aa_runs)])
    aa_il = np.mean([(p := interleave(aa_n, rng, "better", "better")) is not None and p < 0.05 for _ in range(aa_runs)])
    return {
        "users": n_users,
        "expected_ctr": ctr,
        "power_ab": ab_curve,
        "power_interleave": il_curve,
        "impressions_for_80pct_power": {
            "ab": None if n_ab is None else n_ab * K,
            "interleave": None if n_il is None else n_il * K,
        },
        "ratio_ab_over_interleave": None if not (n_ab and n_il) else n_ab / n_il,
        "aa_false_positive_rate": {"ab": float(aa_ab), "interleave": float(aa_il), "runs": aa_runs, "users": aa_n},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="scientific")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--users", type=int, default=3000, help="simulated shoppers per seed")
    ap.add_argument("--rounds", type=int, default=4, help="rounds served (round 0 has no log yet)")
    ap.add_argument("--reps", type=int, default=200, help="resampled runs per point of the power curves")
    ap.add_argument("--aa-runs", type=int, default=2000)
    ap.add_argument("--part", choices=["all", "loop", "sensitivity"], default="all")
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--no-exposure",
        action="store_true",
        help="the loop without what shoppers were already shown (ranking/exposure.py)",
    )
    args = ap.parse_args()
    engine = {"outcomes": {"exposure": False}} if args.no_exposure else None
    t0 = time.perf_counter()
    shop = make_shop(args.dataset)
    say(f"{args.dataset}: {len(shop.interest)} shoppers with a held-out future, {len(shop.products)} products")
    out: dict[str, Any] = {
        "dataset": args.dataset,
        "exposure": not args.no_exposure,
        "click_model": {
            "examination": "1/position",
            "click_if_examined": {"true_interest": 1.0, "other": NOISE_CLICK},
            "purchase_after_click": PURCHASE_AFTER_CLICK,
            "position_swap_share": SWAP_SHARE,
        },
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
    }
    with tempfile.TemporaryDirectory(prefix="online-sim-") as tmp:
        if args.part in ("all", "loop"):
            out["loop"] = loop(shop, args.seeds, args.users, args.rounds, Path(tmp), engine)
        if args.part in ("all", "sensitivity"):
            out["sensitivity"] = sensitivity(shop, Path(tmp), args.reps, args.aa_runs)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(out, indent=1, default=str)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
