"""Helpers for the web page's tests: plain HTTP requests to a daemon's page, one-time links."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from motionclone_client.web_link import login_link
from motionclone_daemon.main import Daemon


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def request(daemon: Daemon, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"") -> Answer:
    """One request to the daemon's web page with the Host a browser on this machine sends (unless given)."""
    connection = http.client.HTTPConnection("127.0.0.1", daemon.web.port, timeout=30)
    try:
        connection.request(method, path, body=body or None, headers={"Host": host(daemon), **(headers or {})})
        answer = connection.getresponse()
        return Answer(answer.status, answer.headers, answer.read())
    finally:
        connection.close()


def host(daemon: Daemon) -> str:
    return f"127.0.0.1:{daemon.web.port}"


def link_path(daemon: Daemon, now: float | None = None) -> str:
    """The path and query of a fresh one-time link, as `motionclone open` makes it."""
    url = urlsplit(login_link(daemon.token, "127.0.0.1", daemon.web.port, now))
    return f"{url.path}?{url.query}"


def session_cookie(daemon: Daemon) -> str:
    """The `name=value` of a session cookie, got by redeeming a one-time link."""
    answer = request(daemon, "GET", link_path(daemon))
    assert answer.status == 303, answer.body
    return answer.headers["Set-Cookie"].split(";")[0]
