"""Product images fetched into a bounded cache: what the image encoder reads.

A catalog's ``image_url`` is a local path (absolute, ``file://``, or relative to the media folder:
``[images] media_dir``, by default ``<home>/media``, which the service also serves at ``/media/``) or an
``http(s)://`` URL. :class:`ImageFetcher` returns an image's bytes or None, and never raises for a bad
image: each failure is counted by its reason (:data:`REASONS`) in :attr:`ImageFetcher.report`, which
training writes into the version's metrics. Limits:

- a time-out per request (``timeout_s``);
- a size cap per image (``max_bytes``: the declared ``Content-Length`` first, then the bytes read);
- a content-type check: a URL must answer ``image/*``, and any image must decode (Pillow);
- a total size bound of the disk cache (``cache_bytes``): fetched URLs are kept under ``folder`` by
  a hash of the URL, the least recently used go first. Local files are read where they are.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: why an image was not read (the keys of ``FetchReport.failed``)
REASONS = ("not_found", "timeout", "too_large", "not_an_image", "http_error", "unreachable", "bad_url")
#: pictures with more pixels are refused (a CLIP model reads 224 x 224: 50 megapixels is plenty)
MAX_PIXELS = 50_000_000


@dataclass
class FetchReport:
    """What a run of fetches did: images read from their origin, served by the disk cache, failed by reason."""

    fetched: int = 0
    from_cache: int = 0
    failed: Counter[str] = field(default_factory=Counter)

    @property
    def n_failed(self) -> int:
        return sum(self.failed.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "fetched": self.fetched,
            "from_cache": self.from_cache,
            "failed": self.n_failed,
            "failed_by_reason": dict(sorted(self.failed.items())),
        }


class ImageFetchError(Exception):
    """One image that could not be read, with its reason (one of :data:`REASONS`)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def is_missing_ref(ref: Any) -> bool:
    """No image given (None, NaN, an empty string): not a failure."""
    return ref is None or (isinstance(ref, float) and ref != ref) or (isinstance(ref, str) and not ref.strip())


def check_image_bytes(data: bytes, max_bytes: int) -> None:
    """Raise :class:`ImageFetchError` unless ``data`` is an image of at most ``max_bytes`` bytes."""
    if len(data) > max_bytes:
        raise ImageFetchError("too_large", f"{len(data):,} bytes, at most {max_bytes:,}")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > MAX_PIXELS:  # a small file that decodes into gigabytes
                raise ImageFetchError("too_large", f"{im.width} x {im.height} pixels")
            im.verify()
    except Image.DecompressionBombError as e:
        raise ImageFetchError("too_large", str(e)) from e
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise ImageFetchError("not_an_image", str(e)) from e


class ImageFetcher:
    """Read product images by reference, through a bounded disk cache for URLs (``folder=None``: no
    disk cache). ``root`` resolves relative paths. Failures are counted in :attr:`report`."""

    def __init__(
        self,
        folder: str | Path | None = None,
        *,
        timeout_s: float = 10.0,
        max_bytes: int = 5_000_000,
        cache_bytes: int = 512_000_000,
        root: str | Path | None = None,
        threads: int = 8,
    ) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.cache_bytes = cache_bytes
        self.root = Path(root) if root is not None else None
        self.threads = threads
        self.report = FetchReport()
        self._cached_total: int | None = None
        self._lock = threading.Lock()  # the report and the cache's size, across fetch_many's threads

    @classmethod
    def from_config(cls, config: Any, home: str | Path | None = None) -> ImageFetcher:
        """The fetcher of an ``[images]`` config (:class:`shopsense.config.ImagesConfig`): URLs cached
        under ``home/images``, relative paths read from ``media_dir`` (default ``home/media``)."""
        media = config.media_dir if config.media_dir is not None else None if home is None else Path(home) / "media"
        return cls(
            None if home is None or config.cache_mb <= 0 else Path(home) / "images",
            timeout_s=config.timeout_s,
            max_bytes=config.max_bytes,
            cache_bytes=int(config.cache_mb * 1_000_000),
            root=media,
            threads=config.fetch_threads,
        )

    # ------------------------------------------------------------------ reading
    def fetch(self, ref: Any) -> bytes | None:
        """The bytes of the image ``ref`` names; None when it has none or cannot be read (counted)."""
        if is_missing_ref(ref):
            return None
        try:
            return self.read(str(ref).strip())
        except ImageFetchError as e:
            with self._lock:
                self.report.failed[e.reason] += 1
            return None

    def fetch_many(self, refs: list[Any]) -> list[bytes | None]:
        """:meth:`fetch` of each ref, ``threads`` at a time (URLs wait on the network, not the CPU)."""
        if self.threads <= 1 or len(refs) <= 1:
            return [self.fetch(r) for r in refs]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(self.threads, len(refs)), thread_name_prefix="images") as pool:
            return list(pool.map(self.fetch, refs))

    def read(self, ref: str) -> bytes:
        """The checked bytes of one image; :class:`ImageFetchError` when it cannot be read."""
        if ref.startswith(("http://", "https://")):
            cached = self._from_cache(ref)
            if cached is not None:
                with self._lock:
                    self.report.from_cache += 1
                return cached
            data = self._download(ref)
            check_image_bytes(data, self.max_bytes)
            self._to_cache(ref, data)
        elif "://" in ref and not ref.startswith("file://"):
            raise ImageFetchError("bad_url", f"only local paths and http(s) URLs are read, not {ref[:40]!r}")
        else:
            data = self._read_file(ref)
            check_image_bytes(data, self.max_bytes)
        with self._lock:
            self.report.fetched += 1
        return data

    def _read_file(self, ref: str) -> bytes:
        path = Path(ref[7:] if ref.startswith("file://") else ref)
        if not path.is_absolute() and self.root is not None:
            path = self.root / path
        try:
            size = path.stat().st_size
            if size > self.max_bytes:
                raise ImageFetchError("too_large", f"{size:,} bytes, at most {self.max_bytes:,}")
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as e:
            raise ImageFetchError("not_found", str(path)) from e
        except OSError as e:
            raise ImageFetchError("unreachable", f"{path}: {e}") from e

    def _download(self, url: str) -> bytes:
        req = urllib.request.Request(url, headers={"User-Agent": "shopsense-images", "Accept": "image/*"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as r:  # noqa: S310 - the shop's own image URLs
                ctype = (r.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                if not ctype.startswith("image/"):
                    raise ImageFetchError("not_an_image", f"content type {ctype or 'none'!r}")
                declared = r.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    raise ImageFetchError("too_large", f"{int(declared):,} bytes declared, at most {self.max_bytes:,}")
                data: bytes = r.read(self.max_bytes + 1)
        except urllib.error.HTTPError as e:
            raise ImageFetchError("not_found" if e.code in (404, 410) else "http_error", f"HTTP {e.code}") from e
        except urllib.error.URLError as e:
            if isinstance(e.reason, TimeoutError):
                raise ImageFetchError("timeout", url) from e
            raise ImageFetchError("unreachable", f"{url}: {e.reason}") from e
        except TimeoutError as e:
            raise ImageFetchError("timeout", url) from e
        except (OSError, ValueError) as e:  # a connection reset midway, a malformed URL
            raise ImageFetchError("unreachable", f"{url}: {e}") from e
        if len(data) > self.max_bytes:
            raise ImageFetchError("too_large", f"more than {self.max_bytes:,} bytes")
        return data

    # ------------------------------------------------------------------ the disk cache
    def _path(self, url: str) -> Path | None:
        if self.folder is None or self.cache_bytes <= 0:
            return None
        return self.folder / hashlib.sha256(url.encode("utf-8")).hexdigest()[:40]

    def _from_cache(self, url: str) -> bytes | None:
        path = self._path(url)
        if path is None:
            return None
        try:
            data = path.read_bytes()
            os.utime(path)  # recently used: evicted last
            return data
        except OSError:
            return None

    def _to_cache(self, url: str, data: bytes) -> None:
        path = self._path(url)
        if path is None or len(data) > self.cache_bytes:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
            tmp.write_bytes(data)
            tmp.replace(path)  # another process reading it sees the old file or the new one
            with self._lock:
                self._cached_total = self.cache_size() if self._cached_total is None else self._cached_total + len(data)
                if self._cached_total > self.cache_bytes:
                    self.evict()
        except OSError:  # a cache that cannot be written only costs a download next time
            return

    def cache_size(self) -> int:
        """Bytes the disk cache holds now."""
        if self.folder is None or not self.folder.exists():
            return 0
        return sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())

    def evict(self) -> None:
        """Delete the least recently used cached images until the cache is within ``cache_bytes``."""
        if self.folder is None or not self.folder.exists():
            return
        files = []
        for p in self.folder.iterdir():
            try:
                st = p.stat()
            except OSError:
                continue
            files.append((st.st_mtime, st.st_size, p))
        total = sum(s for _, s, _ in files)
        for _, size, p in sorted(files, key=lambda f: f[0]):
            if total <= self.cache_bytes:
                break
            p.unlink(missing_ok=True)
            total -= size
        self._cached_total = total
