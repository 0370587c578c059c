"""One request to the web page: guarded (Host, Origin, session, the POST header), then routed.

Paths: `/` (the page, or 401 with how to open it), `/static/NAME`, `/login?...` (a one-time
link), `/api/jobs`, `/api/events` (the queue, live), `/api/health`, `/api/watch`,
`/api/jobs/ID`, `/api/jobs/ID/events`, `/api/jobs/ID/{preview,result,reference,sheet}` and the
POSTs `/api/jobs/ID/cancel` and `/api/jobs/ID/again`. Every answer carries a strict
Content-Security-Policy (no inline script, nothing from another origin) and nosniff.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from motionclone_client.web_link import LOGIN_PATH

from motionclone.errors import MotionCloneError
from motionclone_daemon.errors import Busy, Conflict, DaemonError, Forbidden, InvalidRequest, NotFound, TooLarge
from motionclone_daemon.web.events import job_events, peer_gone, queue_events
from motionclone_daemon.web.files import byte_range, content_type, copy_range

if TYPE_CHECKING:
    from motionclone_daemon.web.server import WebServer

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
STATIC_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "locked.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self'; script-src 'self'; style-src 'self'; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# A cross-site form cannot send a custom header, and a cross-site script that tries needs a CORS
# preflight this server never grants: every POST must carry it.
ACTION_HEADER = "X-MotionClone"


class NotSignedIn(DaemonError):
    """A request without the session cookie or the token (401)."""


HOW_TO_OPEN = "open the web page with `motionclone open` (it prints a one-time link)"
STATUS = {
    NotSignedIn: HTTPStatus.UNAUTHORIZED,
    NotFound: HTTPStatus.NOT_FOUND,
    InvalidRequest: HTTPStatus.BAD_REQUEST,
    Forbidden: HTTPStatus.FORBIDDEN,
    Conflict: HTTPStatus.CONFLICT,
    Busy: HTTPStatus.SERVICE_UNAVAILABLE,
    TooLarge: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
}


JOB_FILES = ("result", "reference", "sheet")
MAX_BODY = 4096


class WebHandler(BaseHTTPRequestHandler):
    server_version = "motionclone"
    sys_version = ""
    server: Any  # the _BoundedServer, whose `app` is the WebServer

    @property
    def app(self) -> WebServer:
        return self.server.app

    def do_GET(self) -> None:
        self._handle(self._get)

    def do_POST(self) -> None:
        self._handle(self._post)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("web %s: " + format, self.address_string(), *args)

    def _handle(self, route) -> None:
        """Guard, route, and answer every error as a status with its message in words."""
        try:
            if self.headers.get("Host", "") not in self.app.hosts:
                raise Forbidden("this page answers only to its own loopback address (Host refused)")
            origin = self.headers.get("Origin")
            if origin is not None and origin not in self.app.origins:
                raise Forbidden("requests from another site are refused (Origin refused)")
            url = urlsplit(self.path)
            route(url.path, parse_qs(url.query))
        except (BrokenPipeError, ConnectionResetError):
            return
        except DaemonError as error:
            self._error(STATUS.get(type(error), HTTPStatus.INTERNAL_SERVER_ERROR), str(error))
        except MotionCloneError as error:
            self._error(HTTPStatus.BAD_REQUEST, str(error))
        except Exception as error:
            log.exception("web page: internal error on %s", self.path)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {type(error).__name__}")

    # -- routes -----------------------------------------------------------------------------------

    def _get(self, path: str, query: dict[str, list[str]]) -> None:
        if path in ("/", "/index.html"):
            page = "index.html" if self._signed_in() else "locked.html"
            self._static(page, HTTPStatus.OK if page == "index.html" else HTTPStatus.UNAUTHORIZED)
        elif path.startswith("/static/") and path.removeprefix("/static/") in STATIC_TYPES:
            self._static(path.removeprefix("/static/"))
        elif path == LOGIN_PATH:
            self._login(query)
        elif path.startswith("/api/"):
            self._require_session()
            self._api_get(path.removeprefix("/api/").split("/"), query)
        else:
            raise NotFound(f"no page {path}")

    def _api_get(self, parts: list[str], query: dict[str, list[str]]) -> None:
        api = self.app.api
        if parts == ["jobs"]:
            self._json(api.jobs())
        elif parts == ["events"]:
            self._stream(queue_events(api, self._active))
        elif parts == ["health"]:
            self._json(api.health())
        elif parts == ["watch"]:
            self._json(api.watch_folders())
        elif len(parts) == 2 and parts[0] == "jobs":
            self._json(api.job(parts[1]))
        elif len(parts) == 3 and parts[0] == "jobs" and parts[2] == "events":
            after = query.get("after", ["0"])[0]
            if not after.isdigit():
                raise InvalidRequest("after must be an event number")
            api.service.get(parts[1])
            self._stream(job_events(api, parts[1], int(after), self._active))
        elif len(parts) == 3 and parts[0] == "jobs" and parts[2] == "preview":
            jpeg = api.preview(parts[1])
            if jpeg is None:
                raise NotFound(f"job {parts[1]} has no live preview now")
            self._send(HTTPStatus.OK, "image/jpeg", jpeg)
        elif len(parts) == 3 and parts[0] == "jobs" and parts[2] in JOB_FILES:
            self._file(api.file(parts[1], parts[2]))
        else:
            raise NotFound(f"no API path /api/{'/'.join(parts)}")

    def _post(self, path: str, _query: dict[str, list[str]]) -> None:
        self._require_session()
        if self.headers.get(ACTION_HEADER) != "1":
            raise Forbidden(f"an action needs the {ACTION_HEADER} header (the page sends it)")
        parts = path.removeprefix("/api/").split("/")
        if not (path.startswith("/api/") and len(parts) == 3 and parts[0] == "jobs"):
            raise NotFound(f"no action {path}")
        if parts[2] == "cancel":
            self._json(self.app.api.cancel(parts[1]))
        elif parts[2] == "again":
            self._json(self.app.api.run_again(parts[1], self._body()), HTTPStatus.CREATED)
        else:
            raise NotFound(f"no action {path}")

    # -- sessions ---------------------------------------------------------------------------------

    def _signed_in(self) -> bool:
        return self.app.session.allows(self.headers.get("Cookie"), self.headers.get("Authorization"))

    def _require_session(self) -> None:
        if not self._signed_in():
            raise NotSignedIn(f"not signed in: {HOW_TO_OPEN}")

    def _login(self, query: dict[str, list[str]]) -> None:
        """Exchange a one-time link for the session cookie, then show the page at a clean URL."""
        given = [query.get(key, [""])[0] for key in ("expires", "nonce", "sig")]
        if not self.app.session.redeem(*given):
            self._static("locked.html", HTTPStatus.UNAUTHORIZED)
            return
        self.send_response(HTTPStatus.SEE_OTHER)
        self.send_header("Location", "/")
        self.send_header("Set-Cookie", self.app.session.set_cookie_header())
        self._common_headers(0)
        self.end_headers()

    # -- answers ----------------------------------------------------------------------------------

    def _common_headers(self, length: int | None, kind: str = "") -> None:
        if kind:
            self.send_header("Content-Type", kind)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.send_header("Content-Security-Policy", POLICY)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")

    def _send(self, status: HTTPStatus, kind: str, body: bytes) -> None:
        self.send_response(status)
        self._common_headers(len(body), kind)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, data: dict[str, Any], status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(status, "application/json", json.dumps(data).encode())

    def _error(self, status: HTTPStatus, text: str) -> None:
        self._json({"error": text, "status": status.value}, status)

    def _static(self, name: str, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(status, STATIC_TYPES[name], (STATIC / name).read_bytes())

    def _file(self, path: Path) -> None:
        """A file in full or in the range asked for (206), so a `<video>` can seek in it."""
        size = path.stat().st_size
        try:
            span = byte_range(self.headers.get("Range"), size)
        except ValueError:
            self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self.send_header("Content-Range", f"bytes */{size}")
            self._common_headers(0)
            self.end_headers()
            return
        first, last = span or (0, size - 1)
        self.send_response(HTTPStatus.PARTIAL_CONTENT if span else HTTPStatus.OK)
        self.send_header("Accept-Ranges", "bytes")
        if span:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self._common_headers(last - first + 1, content_type(path))
        self.end_headers()
        copy_range(path, first, last, self.wfile)

    def _stream(self, events: Iterator[bytes]) -> None:
        """Server-sent events, one thread per stream within the server's places for them."""
        with self.app.streams.taken():
            self.send_response(HTTPStatus.OK)
            self._common_headers(None, "text/event-stream")
            self.end_headers()
            for chunk in events:
                self.wfile.write(chunk)
                self.wfile.flush()

    def _active(self) -> bool:
        return not self.app.stopping.is_set() and not peer_gone(self.connection)

    def _body(self) -> dict[str, Any]:
        given = self.headers.get("Content-Length") or "0"
        if not given.isdigit():
            raise InvalidRequest("Content-Length must be a number")
        length = int(given)
        if length > MAX_BODY:
            raise TooLarge(f"an action's body is at most {MAX_BODY} bytes")
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            raise InvalidRequest("the body must be JSON") from None
        if not isinstance(body, dict):
            raise InvalidRequest("the body must be a JSON object")
        return body
