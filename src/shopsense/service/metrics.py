"""Prometheus metrics in the plain-text exposition format, without a client dependency.

Counters and latency histograms per route template (``/similar/{item_id}``, never the raw path, so
label cardinality stays bounded), plus gauges filled at scrape time (served model version, counts).
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

#: latency bucket upper bounds in seconds
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(d: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in d.items()) + "}" if d else ""


class Metrics:
    """Thread-safe request counters and latency histograms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self._hist: dict[tuple[str, str], list[int]] = {}
        self._sum: dict[tuple[str, str], float] = defaultdict(float)
        self._count: dict[tuple[str, str], int] = defaultdict(int)
        self._counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route)
        i = bisect.bisect_left(BUCKETS, seconds)
        with self._lock:
            self._requests[(method, route, str(status))] += 1
            buckets = self._hist.setdefault(key, [0] * (len(BUCKETS) + 1))
            buckets[i] += 1
            self._sum[key] += seconds
            self._count[key] += 1

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        """Add to a named counter (e.g. ``shopsense_events_ingested_total``)."""
        with self._lock:
            self._counters[(name, tuple(sorted(labels.items())))] += value

    def answered(self, route: str) -> int:
        """Requests to ``route`` (a route template) answered with a 2xx status."""
        with self._lock:
            return sum(n for (_, r, st), n in self._requests.items() if r == route and st.startswith("2"))

    def counter(self, name: str) -> float:
        """A named counter's total over all its labels (0 when never counted)."""
        with self._lock:
            return sum(v for (n, _), v in self._counters.items() if n == name)

    def render(self, gauges: dict[str, tuple[float, dict[str, str]]] | None = None) -> str:
        """The exposition text; ``gauges`` maps a metric name to (value, labels)."""
        out: list[str] = []
        with self._lock:
            out.append("# HELP shopsense_http_requests_total HTTP requests by method, route and status.")
            out.append("# TYPE shopsense_http_requests_total counter")
            for (m, r, s), n in sorted(self._requests.items()):
                out.append(f"shopsense_http_requests_total{_labels({'method': m, 'route': r, 'status': s})} {n}")
            out.append("# HELP shopsense_http_request_duration_seconds Request latency.")
            out.append("# TYPE shopsense_http_request_duration_seconds histogram")
            for (m, r), buckets in sorted(self._hist.items()):
                acc = 0
                for le, n in zip((*BUCKETS, float("inf")), buckets, strict=True):
                    acc += n
                    le_s = "+Inf" if le == float("inf") else repr(le)
                    lab = _labels({"method": m, "route": r, "le": le_s})
                    out.append(f"shopsense_http_request_duration_seconds_bucket{lab} {acc}")
                lab = _labels({"method": m, "route": r})
                out.append(f"shopsense_http_request_duration_seconds_sum{lab} {self._sum[(m, r)]:.6f}")
                out.append(f"shopsense_http_request_duration_seconds_count{lab} {self._count[(m, r)]}")
            names = sorted({cname for cname, _ in self._counters})
            for name in names:
                out.append(f"# TYPE {name} counter")
                for (cname, clabels), v in sorted(self._counters.items()):
                    if cname == name:
                        out.append(f"{name}{_labels(dict(clabels))} {v:g}")
        for name, (value, glabels) in sorted((gauges or {}).items()):
            out.append(f"# TYPE {name} gauge")
            out.append(f"{name}{_labels(glabels)} {value:g}")
        return "\n".join(out) + "\n"
