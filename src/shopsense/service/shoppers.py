"""The storefront's anonymous shoppers: a signed, http-only session cookie holds the shopper id.

The page key is public (it is in the storefront's HTML), so it cannot say who a request is for. The
server decides instead: the first page load or API call of a browser gets a fresh shopper id in a
cookie signed with HMAC-SHA256, and every later request of that browser acts for that id. A browser
cannot choose another shopper's id (it cannot sign one), scripts cannot read the cookie (HttpOnly),
and other sites cannot make the browser post with it (SameSite=Lax, and the API key header needs a
same-origin request anyway). Workers of one server share the secret, so any of them accepts the
cookie another one set; ``service.session_secret`` keeps it valid across restarts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "shopsense_shopper"
_ID = re.compile(r"shopper-[0-9a-f]{16}")
ONE_YEAR_S = 365 * 24 * 3600


def new_secret() -> bytes:
    """A random signing secret (one per server start when none is configured)."""
    return secrets.token_bytes(32)


def secret_from(configured: str) -> bytes:
    """The signing secret derived from a configured one (its own purpose: not usable as anything else)."""
    return hmac.new(configured.encode("utf-8"), b"shopsense shopper cookie", hashlib.sha256).digest()


class ShopperCookies:
    """Issues and verifies the shopper cookie."""

    def __init__(self, secret: bytes, max_age_s: int = ONE_YEAR_S) -> None:
        self._secret = secret
        self.max_age_s = max_age_s

    def _sign(self, shopper_id: str) -> str:
        mac = hmac.new(self._secret, shopper_id.encode("ascii"), hashlib.sha256).digest()[:18]
        return base64.urlsafe_b64encode(mac).decode("ascii")

    def read(self, request: Request) -> str | None:
        """The shopper id of a validly signed cookie, else None."""
        value = request.cookies.get(COOKIE)
        if not value or value.count(".") != 1:
            return None
        shopper_id, sig = value.split(".")
        if not _ID.fullmatch(shopper_id) or not hmac.compare_digest(sig, self._sign(shopper_id)):
            return None
        return shopper_id

    def set_cookie(self, request: Request, response: Response, shopper_id: str) -> None:
        """Set ``shopper_id``'s signed cookie on ``response``."""
        response.set_cookie(
            COOKIE,
            f"{shopper_id}.{self._sign(shopper_id)}",
            max_age=self.max_age_s,
            path="/",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",  # a Secure cookie would never come back over plain http
        )

    def shopper(self, request: Request, response: Response) -> str:
        """The shopper of this browser session: from its cookie, or a new one set on ``response``."""
        shopper_id = self.read(request)
        if shopper_id is None:
            shopper_id = new_shopper_id()
            self.set_cookie(request, response, shopper_id)
        return shopper_id


def new_shopper_id() -> str:
    return f"shopper-{secrets.token_hex(8)}"
