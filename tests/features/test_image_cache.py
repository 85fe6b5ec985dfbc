"""The bounded image fetch cache: limits, failures counted by reason, never raised."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shopsense.config import ImagesConfig, load_settings
from shopsense.exceptions import ConfigError
from shopsense.features.image_cache import ImageFetcher
from tests.images import picture

PNG = picture((200, 30, 30))
BIG = picture((30, 200, 30), size=(200, 200), fmt="BMP")  # ~120 KB


class Handler(http.server.BaseHTTPRequestHandler):
    hits: dict[str, int] = {}

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        Handler.hits[self.path] = Handler.hits.get(self.path, 0) + 1
        if self.path.startswith("/ok"):
            self._send(200, "image/png", PNG)
        elif self.path == "/page":
            self._send(200, "text/html; charset=utf-8", b"<html>not an image</html>")
        elif self.path == "/liar":
            self._send(200, "image/png", b"\x89PNG but not really")
        elif self.path == "/big":
            self._send(200, "image/bmp", BIG)
        elif self.path == "/slow":
            time.sleep(1.5)
            self._send(200, "image/png", PNG)
        elif self.path == "/broken":
            self._send(500, "text/plain", b"oops")
        else:
            self._send(404, "text/plain", b"no")

    def _send(self, status: int, ctype: str, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (the time-out test)
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_urls_each_failure_counted_by_reason(server: str, tmp_path: Path) -> None:
    f = ImageFetcher(tmp_path / "cache", timeout_s=0.5, max_bytes=50_000)
    refs = ["/ok", "/page", "/liar", "/big", "/slow", "/broken", "/gone"]
    got = [f.fetch(server + r) for r in refs]
    assert got[0] == PNG and all(g is None for g in got[1:])
    assert f.report.as_dict() == {
        "fetched": 1,
        "from_cache": 0,
        "failed": 6,
        "failed_by_reason": {"http_error": 1, "not_an_image": 2, "not_found": 1, "timeout": 1, "too_large": 1},
    }


def test_fetched_urls_are_served_from_the_disk_cache(server: str, tmp_path: Path) -> None:
    url = f"{server}/ok-cached"
    first = ImageFetcher(tmp_path / "cache").fetch(url)
    again = ImageFetcher(tmp_path / "cache")  # another process: the disk cache is shared
    assert again.fetch(url) == first == PNG
    assert Handler.hits[url.removeprefix(server)] == 1
    assert again.report.from_cache == 1 and again.report.fetched == 0


def test_disk_cache_keeps_within_its_bound_dropping_the_least_recently_used(server: str, tmp_path: Path) -> None:
    bound = int(2.5 * len(PNG))  # room for two images
    f = ImageFetcher(tmp_path / "cache", cache_bytes=bound)
    for i in range(3):
        f.fetch(f"{server}/ok-{i}")
        time.sleep(0.02)  # distinct modification times
    f.fetch(f"{server}/ok-0")  # evicted already: downloaded again, now the newest
    assert f.cache_size() <= bound
    assert len(list((tmp_path / "cache").iterdir())) == 2
    assert f.report.fetched == 4
    again = ImageFetcher(tmp_path / "cache", cache_bytes=bound)
    assert again.fetch(f"{server}/ok-0") == PNG and again.report.from_cache == 1


def test_local_paths_missing_refs_and_other_schemes(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(PNG)
    (tmp_path / "text.png").write_text("hello")
    (tmp_path / "big.bmp").write_bytes(BIG)
    f = ImageFetcher(None, max_bytes=50_000, root=tmp_path)
    assert f.fetch(str(tmp_path / "a.png")) == PNG
    assert f.fetch(f"file://{tmp_path / 'a.png'}") == PNG
    assert f.fetch("a.png") == PNG  # relative to the root
    for ref in (None, "", "  ", float("nan")):
        assert f.fetch(ref) is None  # no image is not a failure
    for ref in ("missing.png", "text.png", "big.bmp", "ftp://x/a.png"):
        assert f.fetch(ref) is None
    assert f.report.fetched == 3
    assert dict(f.report.failed) == {"not_found": 1, "not_an_image": 1, "too_large": 1, "bad_url": 1}


def test_images_settings() -> None:
    assert not ImagesConfig().active
    assert ImagesConfig(model="./clip").active
    assert not ImagesConfig(model="./clip", enabled=False).active
    s = load_settings(images={"model": "./clip", "weight": 0.2, "cache_mb": 10})
    f = ImageFetcher.from_config(s.images, s.home)
    assert f.folder == s.home / "images" and f.cache_bytes == 10_000_000
    assert f.root == s.media_dir == s.home / "media"
    with pytest.raises(ConfigError, match="images.weights"):
        load_settings(images={"weights": [0.1, 1.5]})
    with pytest.raises(ConfigError, match="images.typo"):
        load_settings(images={"typo": 1})


def test_pictures_with_too_many_pixels_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shopsense.features.image_cache as ic

    (tmp_path / "a.png").write_bytes(PNG)  # 64 x 48
    monkeypatch.setattr(ic, "MAX_PIXELS", 1000)
    f = ImageFetcher(None, root=tmp_path)
    assert f.fetch("a.png") is None and dict(f.report.failed) == {"too_large": 1}


def test_fetch_many_waits_on_several_urls_at_once_and_keeps_the_order(server: str, tmp_path: Path) -> None:
    f = ImageFetcher(tmp_path / "cache", timeout_s=5, threads=4)
    refs = [f"{server}/slow", f"{server}/gone", None, f"{server}/slow", f"{server}/slow", f"{server}/slow"]
    t0 = time.perf_counter()
    got = f.fetch_many(refs)
    assert time.perf_counter() - t0 < 4.5  # four 1.5 s answers at once, not one after the other (6 s)
    assert [g is not None for g in got] == [True, False, False, True, True, True]
    assert f.report.fetched + f.report.from_cache == 4 and dict(f.report.failed) == {"not_found": 1}
