"""What benchmarks/soak.py saw, by minute; the issue's checks; a markdown section for docs/benchmarks.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from soak import Soak, Traffic

ROUTES = ("recommend", "search", "autocomplete", "similar", "events")
#: a connection error this soon after the kill counts as the kill's even if its connection was not
#: seen on the killed worker (a connection handed to it just before it died)
KILL_GRACE_S = 3.0
#: answered searches whose search event may be lost to kill -9: the buffer is written every 0.2 s
#: (documented), plus the write itself
SEARCH_WINDOW_S = 0.3


def clock(t: float) -> str:
    return f"{int(t // 60)}:{t % 60:04.1f}"


def classify_errors(traffic: Traffic, soak: Soak) -> None:
    """Connection errors: expected when on a connection the killed worker held, or within a few
    seconds after the kill (the parent can hand a new connection to a worker that is dying: Linux
    frees a killed process's memory before it closes its sockets); unexpected otherwise. A request
    whose every try was cut is expected only when each of its errors was."""
    kill_t, ports = soak.killed.get("t"), set(soak.killed.get("ports", []))
    for e in traffic.conn_errors:
        on_killed = e["port"] in ports
        soon = kill_t is not None and 0 <= e["t"] - kill_t <= KILL_GRACE_S
        e["expected"] = bool(kill_t is not None and e["t"] >= kill_t and (on_killed or soon))
        e["cause"] = (
            ("connection of the killed worker" if on_killed else "connection handed to the dying worker")
            if e["expected"]
            else "unexplained"
        )
    for f in traffic.failed:
        f["expected"] = all(e["expected"] for e in f["errors"])


def per_minute(traffic: Traffic, soak: Soak, minutes: int) -> list[dict]:
    rows = []
    for m in range(minutes):
        lo, hi = m * 60, (m + 1) * 60
        marks = [name for name, (a, b) in soak.phases.items() if a < hi and b >= lo]
        routes = {}
        for route in ROUTES:
            ms = [r[2] for r in traffic.records if r[0] == route and lo <= r[1] < hi and r[3] is not None]
            routes[route] = {
                "n": len(ms),
                "p50_ms": round(float(np.percentile(ms, 50)), 2) if ms else None,
                "p99_ms": round(float(np.percentile(ms, 99)), 2) if ms else None,
                "max_ms": round(max(ms), 1) if ms else None,
            }
        in_minute = [s for s in soak.samples if lo <= s["t"] < hi] or [s for s in soak.samples if s["t"] >= hi][:1]
        last = in_minute[-1] if in_minute else None
        before = [s for s in soak.samples if s["t"] < (in_minute[0]["t"] if in_minute else lo)]
        rows.append(
            {
                "minute": m + 1,
                "marks": marks,
                "routes": routes,
                "failed": sum(1 for x in traffic.failed if lo <= x["t"] < hi),
                "failed_expected": sum(1 for x in traffic.failed if lo <= x["t"] < hi and x["expected"]),
                "non2xx": sum(1 for x in traffic.non2xx if lo <= x["t"] < hi),
                "conn_errors": sum(1 for x in traffic.conn_errors if lo <= x["t"] < hi),
                "conn_errors_expected": sum(1 for x in traffic.conn_errors if lo <= x["t"] < hi and x["expected"]),
                "rss": last,
                "cpu_pct": _cpu_pct(before[-1] if before else None, last),
                "load1": last["load1"] if last else None,
            }
        )
    return rows


def _cpu_pct(a: dict | None, b: dict | None) -> dict:
    """Each worker slot's CPU use between two samples, in % of one core (a restarted slot: from its start)."""
    if not b:
        return {}
    out = {}
    for slot, w in b["workers"].items():
        prev = (a or {}).get("workers", {}).get(slot)
        if w.get("cpu_s") is None:
            continue
        if prev and prev["pid"] == w["pid"] and prev.get("cpu_s") is not None:
            out[slot] = round(100 * (w["cpu_s"] - prev["cpu_s"]) / max(b["t"] - a["t"], 1e-9))  # type: ignore[index]
    return out


def checks(minutes: list[dict], traffic: Traffic, soak: Soak, verified: dict, p99_target: float) -> dict:
    failed = sum(not f["expected"] for f in traffic.failed)
    unexpected = len(traffic.non2xx) + sum(not e["expected"] for e in traffic.conn_errors) + failed
    out: dict = {
        "unexpected_non2xx": {"value": unexpected, "target": 0, "ok": unexpected == 0},
        "acked_events_missing": {"value": verified["acked_events_missing"], "target": 0},
        "search_events_missing_outside_kill_window": {
            "value": verified["search_events_missing"] - verified["search_events_missing_in_kill_window"],
            "target": 0,
        },
    }
    for k in ("acked_events_missing", "search_events_missing_outside_kill_window"):
        out[k]["ok"] = out[k]["value"] == 0
    if len(minutes) >= 2 and minutes[1]["rss"] and minutes[-1]["rss"]:
        first, last = minutes[1]["rss"]["workers"], minutes[-1]["rss"]["workers"]
        for slot in sorted(set(first) & set(last)):
            a, b = first[slot]["rss_mb"], last[slot]["rss_mb"]
            change = None if not a or not b else round(100 * (b / a - 1), 1)
            out[f"worker{slot}_rss_minute{len(minutes)}_vs_minute2_pct"] = {
                "value": change,
                "target": "within ±10",
                "ok": change is not None and abs(change) <= 10,
                "pids": [first[slot]["pid"], last[slot]["pid"]],
                "mb": [a, b],
            }
    quiet = [m for m in minutes if not set(m["marks"]) & {"train", "swap", "kill"} and m["routes"]["recommend"]["n"]]
    worst = max((m["routes"]["recommend"]["p99_ms"] for m in quiet), default=None)
    out["recommend_p99_quiet_minutes_ms"] = {
        "value": worst,
        "target": f"<= {p99_target:g}",
        "ok": None if worst is None else worst <= p99_target,  # None: no such minute
        "minutes": [m["minute"] for m in quiet],
    }
    fired = {
        "training completed": bool(soak.new_version),
        "swapped on every worker": soak.phases.get("swap", [0, float("inf")])[1] != float("inf"),
        "worker killed and replaced": "ready_t" in soak.killed,
        "user deleted": "delete" in soak.phases and verified["deleted_user_events_left"] == 0,
    }
    asked = {"training completed": soak.a.train_at >= 0, "swapped on every worker": soak.a.train_at >= 0}
    asked |= {"worker killed and replaced": soak.a.kill_at >= 0, "user deleted": soak.a.delete_at >= 0}
    fired = {k: v for k, v in fired.items() if asked[k]}
    out["phases"] = {"value": fired, "ok": all(fired.values())}
    return out


def markdown(r: dict) -> str:
    """The run as a section for docs/benchmarks.md."""
    e, d = r["environment"], r["shop"]
    shown = ("slot", "pid", "old_pid", "new_pid", "version", "user", "events_before", "status", "ms", "seconds")
    tl = "; ".join(
        f"{clock(x['t'])} {x['what']}" + "".join(f", {k} {x[k]}" for k in shown if k in x) for x in r["timeline"]
    )
    lines = [
        f"### Soak: {r['args']['minutes']:g} minutes at {r['args']['rate']:g} requests/s, `serve --workers "
        f"{r['args']['workers']}` ({e['date']})",
        "",
        f"`{r['command']}` at {e['commit']}: {d['products']:,} products, {d['events']:,} events at the start. "
        f"CPU: {e['cpu']} ({e['cores']} cores), load average at the start {e['loadavg']}. "
        f"Mix: {', '.join(f'{k} {v:g}' for k, v in r['args']['mix'].items())}; "
        f"achieved {r['achieved_rps']} requests/s over {r['args']['connections']} connections.",
        "",
        f"Timeline (m:ss from the start of the load): {tl}.",
        "",
        "| min | phase | /recommend p50 / p99 ms (n) | /search | /autocomplete | /similar | POST /events | "
        "non-2xx | failed (expected) | conn. errors (expected) | RSS MiB parent / workers | worker conns | "
        "worker CPU % | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in r["minutes"]:
        cells = []
        for route in ROUTES:
            x = m["routes"][route]
            cells.append(f"{x['p50_ms']:.1f} / {x['p99_ms']:.1f} ({x['n']})" if x["n"] else "–")
        s = m["rss"] or {"workers": {}}
        ws = s["workers"].values()
        rss = f"{s.get('parent_mb')} / " + " / ".join(f"{w['rss_mb']} (pid {w['pid']})" for w in ws)
        lines.append(
            f"| {m['minute']} | {' + '.join(m['marks'])} | {' | '.join(cells)} | {m['non2xx']} | "
            f"{m['failed']} ({m['failed_expected']}) | "
            f"{m['conn_errors']} ({m['conn_errors_expected']}) | {rss} | {' / '.join(str(w['conns']) for w in ws)} | "
            f"{' / '.join(str(v) for v in m.get('cpu_pct', {}).values()) or '–'} | {m['load1']} |"
        )
    lines += [
        "",
        "Phase: the minute overlaps the training (start to the CLI's exit), the swap (first worker seen "
        "serving the new version to every worker serving it), the kill (SIGKILL to the replacement "
        "answering) or the deletion. Latency is counted from when a request was due (open loop), over "
        "answered requests, by the minute it was due. A cut connection is retried on a new one, twice at "
        "most (failed: every try cut); a connection error is expected when on a connection the killed "
        f"worker held, or within {KILL_GRACE_S:g} s after the kill (a connection handed to the dying "
        "worker), a failed request when all its errors are. RSS is the last sample in the minute; workers by slot, "
        "with the pid that held the slot.",
    ]
    groups: dict[tuple, list] = {}
    for x in r["non2xx"]:
        groups.setdefault((x["route"], x["status"], x["body"][:120]), []).append(x["t"])
    if groups:
        lines += ["", "| route | status | answer | count | minutes | class |", "|---|---|---|---|---|---|"]
        for (route, status, body), ts in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            mins = sorted({int(t // 60) + 1 for t in ts})
            lines.append(f"| {route} | {status} | `{body}` | {len(ts)} | {mins} | unexpected |")
    errs: dict[tuple, int] = {}
    for x in r["conn_errors"]:
        key = (x["route"], x["error"], x["cause"])
        errs[key] = errs.get(key, 0) + 1
    if errs:
        lines += ["", "| route | connection error (retried) | cause | count |", "|---|---|---|---|"]
        lines += [f"| {k[0]} | {k[1]} | {k[2]} | {n} |" for k, n in sorted(errs.items())]
    if r["failed"]:
        by: dict[str, int] = {}
        for x in r["failed"]:
            key = f"{x['route']} ({'expected' if x['expected'] else 'unexpected'})"
            by[key] = by.get(key, 0) + 1
        lines += ["", "Requests cut on every try: " + ", ".join(f"{k}: {n}" for k, n in sorted(by.items())) + "."]
    v = r["verified"]
    lines += [
        "",
        f"Afterwards: {v['acked_events']:,} events acknowledged by POST /events, {v['acked_events_missing']} missing "
        f"from the store; {v['searches_logged_expected']:,} shoppers' searches answered, "
        f"{v['search_events_missing']} of their search events missing "
        f"({v['search_events_missing_in_kill_window']} answered by the killed worker in the "
        f"{SEARCH_WINDOW_S} s before the kill); the deleted shopper has {v['deleted_user_events_left']} events left.",
        "",
        "| check | target | result | ok |",
        "|---|---|---|---|",
    ]
    for name, c in r["checks"].items():
        value = (
            c["value"]
            if name != "phases"
            else ", ".join(f"{k}: {'yes' if ok else 'NO'}" for k, ok in c["value"].items())
        )
        ok = "n/a" if c["ok"] is None else "yes" if c["ok"] else "**no**"
        lines.append(f"| {name} | {c.get('target', 'all')} | {value} | {ok} |")
    return "\n".join(lines)
