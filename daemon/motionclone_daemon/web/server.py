"""The web page's HTTP server: the standard library's threading server, on loopback, bounded.

Each request gets a thread, up to `MAX_THREADS` at once (beyond that a connection is closed at
once rather than queued behind long downloads); event streams also have their own places
(`Slots`), so a page left open in many tabs cannot take every thread. The Host and Origin a
request names must be this server's loopback address: a page of another site that points a
name of its own at 127.0.0.1 (DNS rebinding) is refused before anything is read.
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import ThreadingHTTPServer

from motionclone_client.locations import join_address

from motionclone_daemon.limits import Slots
from motionclone_daemon.web.api import WebApi
from motionclone_daemon.web.handler import WebHandler
from motionclone_daemon.web.session import WebSession

log = logging.getLogger(__name__)
MAX_THREADS = 64
# Names a browser on this machine may use for the page; anything else is another site's name.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


class _BoundedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily, app: WebServer) -> None:
        self.address_family = family
        self.app = app
        self._places = threading.BoundedSemaphore(MAX_THREADS)
        super().__init__(address, WebHandler)

    def process_request(self, request, client_address) -> None:
        if not self._places.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._places.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._places.release()


class WebServer:
    """The web page on loopback `host`; start(port) binds it, stop() ends every request."""

    def __init__(self, api: WebApi, session: WebSession, host: str, max_streams: int) -> None:
        self.api = api
        self.session = session
        self.host = host
        self.port = 0
        # Streams leave at least half the threads to the short requests.
        self.streams = Slots("web page event streams", min(max_streams, MAX_THREADS // 2))
        self.stopping = threading.Event()
        self._server: _BoundedServer | None = None
        self._thread: threading.Thread | None = None

    def start(self, port: int) -> int:
        """Bind `port` (0: a free one) and serve on a thread of its own; the port bound (OSError if
        it cannot be)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._server = _BoundedServer((self.host.strip("[]"), port), family, self)
        self.port = self._server.server_address[1]
        self.session.port = self.port
        self._thread = threading.Thread(target=self._server.serve_forever, name="motionclone-web", daemon=True)
        self._thread.start()
        log.info("web page on http://%s/ (open it with `motionclone open`)", join_address(self.host, self.port))
        return self.port

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def hosts(self) -> frozenset[str]:
        """The Host headers this server answers: its loopback names with its port."""
        own = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return frozenset(f"{name}:{self.port}" for name in {*LOOPBACK_NAMES, own})

    @property
    def origins(self) -> frozenset[str]:
        return frozenset(f"http://{host}" for host in self.hosts)
