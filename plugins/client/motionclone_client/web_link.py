"""The one-time link that opens the daemon's web page: made by `motionclone open`, checked by the daemon.

The token never goes into a URL (URLs linger in history, logs and the clipboard). The link carries
an expiry, a fresh nonce and an HMAC of both and the web port keyed by the token: whoever can read
the token file (this machine's user) can make one, the daemon redeems each nonce once before it
expires, and a link sent to a stale port cannot be relayed to the daemon on another.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from urllib.parse import urlencode

from motionclone_client.locations import join_address

LABEL = "motionclone-web-link:"
LINK_SECONDS = 120
LOGIN_PATH = "/login"


def link_signature(token: str, port: int, expires: int, nonce: str) -> str:
    """HMAC-SHA256 (hex) of the web port, expiry and nonce, keyed by the token."""
    message = f"{LABEL}{port}:{expires}:{nonce}".encode()
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()


def login_link(token: str, host: str, port: int, now: float | None = None) -> str:
    """A link that logs this browser in to the web page at HOST:PORT, once, within LINK_SECONDS."""
    expires = int((time.time() if now is None else now) + LINK_SECONDS)
    nonce = secrets.token_urlsafe(16)
    query = urlencode({"expires": expires, "nonce": nonce, "sig": link_signature(token, port, expires, nonce)})
    return f"http://{join_address(host, port)}{LOGIN_PATH}?{query}"
