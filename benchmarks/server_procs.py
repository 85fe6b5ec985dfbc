"""The processes of ``shopsense serve --workers N`` as /proc shows them (Linux), and a probe that asks
one particular worker: what benchmarks/soak.py watches while it loads the server."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
from pathlib import Path


def _children(ppid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == ppid:
                    out.append(int(d.name))
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process in MiB (None when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (None when it is gone; Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_sockets(port: int) -> dict[int, int]:
    """Server-side TCP sockets of ``port`` on this machine: inode -> the client's port."""
    out = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                f = line.split()
                if int(f[1].rsplit(":", 1)[1], 16) == port and f[3] == "01":  # 01: established
                    out[int(f[9])] = int(f[2].rsplit(":", 1)[1], 16)
    return out


def socket_inodes(pid: int) -> set[int]:
    out = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    out.add(int(link[8:-1]))
    return out


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


class Workers:
    """The server's worker processes by slot: slot i keeps its number when its process is replaced
    (a new worker pid takes the slot of one that vanished)."""

    def __init__(self, parent: int) -> None:
        self.parent = parent
        self.slots: dict[int, int] = {}

    def update(self) -> list[tuple[int, int, int]]:
        """Look again; returns (slot, old pid, new pid) for each replacement seen."""
        # spawned workers run multiprocessing's spawn_main; the resource tracker is a child too
        live = sorted(p for p in _children(self.parent) if "spawn_main" in _cmdline(p))
        if not self.slots:
            self.slots = dict(enumerate(live))
            return []
        changes = []
        new = [p for p in live if p not in self.slots.values()]
        for slot, pid in sorted(self.slots.items()):
            if pid not in live and new:
                self.slots[slot] = new.pop(0)
                changes.append((slot, pid, self.slots[slot]))
        return changes

    def owner(self, inode: int) -> int | None:
        return next((pid for pid in self.slots.values() if inode in socket_inodes(pid)), None)


class Probe:
    """Asks one particular worker: keeps a connection that worker holds (found through /proc), since
    the parent gives a new connection to whichever worker has the fewest."""

    def __init__(self, host: str, port: int, workers: Workers, key: str) -> None:
        self.host, self.port, self.workers = host, port, workers
        self.headers = {"X-API-Key": key}
        self.conns: dict[int, http.client.HTTPConnection] = {}

    def _owner(self, conn: http.client.HTTPConnection) -> int | None:
        local = conn.sock.getsockname()[1] if conn.sock else None
        inode = next((i for i, p in server_sockets(self.port).items() if p == local), None)
        return None if inode is None else self.workers.owner(inode)

    def ask(self, pid: int, path: str, attempts: int = 4) -> tuple[int, bytes] | None:
        """GET ``path`` from worker ``pid``; None when no connection reached it in ``attempts``."""
        conn = self.conns.get(pid)
        if conn is not None:
            try:
                conn.request("GET", path, headers=self.headers)
                r = conn.getresponse()
                return r.status, r.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                del self.conns[pid]
        spare = []  # kept open while looking, so the next new connection goes to another worker
        try:
            for _ in range(attempts):
                c = http.client.HTTPConnection(self.host, self.port, timeout=10)
                try:
                    c.request("GET", path, headers=self.headers)
                    r = c.getresponse()
                    answer = (r.status, r.read())
                except (OSError, http.client.HTTPException):
                    c.close()
                    continue
                owner = self._owner(c)
                if owner is not None and owner not in self.conns:
                    self.conns[owner] = c
                    if owner == pid:
                        return answer
                else:
                    spare.append(c)
        finally:
            for c in spare:
                c.close()
        return None

    def version(self, pid: int) -> str | None:
        """The model version worker ``pid`` serves ("" while loading; None: not reached)."""
        got = self.ask(pid, "/ready")
        if got is None:
            return None
        with contextlib.suppress(ValueError):
            return json.loads(got[1]).get("model_version") or ""
        return ""

    def close(self) -> None:
        for c in self.conns.values():
            c.close()
