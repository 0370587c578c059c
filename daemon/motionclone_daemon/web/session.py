"""Who may use the web page: a session cookie got from a one-time link, or the token itself.

`motionclone open` (which can read the token file) makes a link (`motionclone_client.web_link`);
the daemon redeems it once, before it expires, for a cookie that is HttpOnly (no script reads
it), SameSite=Strict (no other site's page sends it) and Path=/. The cookie's value is an HMAC of
the token, so it stays valid across restarts of the daemon and ends when the token changes, and
it is not the token: a leaked cookie opens the web page, never the gRPC API. Scripts may send
`Authorization: Bearer <token>` instead.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from http.cookies import CookieError, SimpleCookie

from motionclone_client.web_link import LINK_SECONDS, link_signature

COOKIE = "motionclone_session"
SESSION_LABEL = b"motionclone-web-session"
# Links signed a little in the future (a clock read just before) are still accepted.
CLOCK_SLACK = 5


class WebSession:
    """Checks one-time links and session cookies for the web page on `port`."""

    def __init__(self, token: str, port: int = 0) -> None:
        self._token = token
        self.port = port
        self._cookie = hmac.new(token.encode(), SESSION_LABEL, hashlib.sha256).hexdigest()
        self._used: dict[str, float] = {}  # nonce -> expiry, kept until it expires
        self._lock = threading.Lock()

    def redeem(self, expires: str, nonce: str, signature: str, now: float | None = None) -> bool:
        """True once for a valid, unexpired link; False for a forged, expired or used one."""
        now = time.time() if now is None else now
        if not expires.isdigit() or not 0 < len(nonce) <= 64:
            return False
        deadline = int(expires)
        expected = link_signature(self._token, self.port, deadline, nonce)
        if not hmac.compare_digest(expected, signature) or not now <= deadline <= now + LINK_SECONDS + CLOCK_SLACK:
            return False
        with self._lock:
            self._used = {used: until for used, until in self._used.items() if until >= now}
            if nonce in self._used:
                return False
            self._used[nonce] = deadline
        return True

    def set_cookie_header(self) -> str:
        return f"{COOKIE}={self._cookie}; HttpOnly; SameSite=Strict; Path=/"

    def allows(self, cookie_header: str | None, authorization: str | None) -> bool:
        """Whether a request carries the session cookie or the token as a bearer header."""
        if authorization and hmac.compare_digest(authorization.encode(), f"Bearer {self._token}".encode()):
            return True
        try:
            morsel = SimpleCookie(cookie_header or "").get(COOKIE)
        except CookieError:
            return False
        return morsel is not None and hmac.compare_digest(morsel.value.encode(), self._cookie.encode())
