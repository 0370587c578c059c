"""`motionclone-daemon serve`: wires settings, store, engines, workers and server; handles signals.

Everything is built here and passed in, so there is no hidden global state. SIGTERM or Ctrl-C
stops gracefully: no new calls, the running job goes back to the queue, the store is closed.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import signal
import socket
import sys
import threading
from concurrent import futures
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import torch
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from motionclone_client.locations import ENDPOINT_FILE, config_dir, join_address
from motionclone_client.protocol import MAX_KEYFRAMES_BYTES

from motionclone.device.cpu_threads import use_usable_cores
from motionclone.engine import Engine
from motionclone.errors import MotionCloneError
from motionclone.sampling.compilation import use_compile_cache
from motionclone_daemon.auth import DaemonIdentity, TokenInterceptor, ensure_token, fingerprint
from motionclone_daemon.catalog import ModelCatalog
from motionclone_daemon.data_lock import hold_data_dir
from motionclone_daemon.dispatch import Dispatcher
from motionclone_daemon.privacy import PRIVATE_UMASK, make_private
from motionclone_daemon.service import JobService
from motionclone_daemon.servicer import MotionCloneServicer, add_to_server
from motionclone_daemon.settings import DaemonSettings
from motionclone_daemon.store import JobStore
from motionclone_daemon.watch import WatchFolder
from motionclone_daemon.web.api import WebApi
from motionclone_daemon.web.server import WebServer
from motionclone_daemon.web.session import WebSession
from motionclone_daemon.worker import Worker

if TYPE_CHECKING:
    from motionclone_daemon.ray_executor import RayExecutor

log = logging.getLogger("motionclone_daemon")
MAX_MESSAGE = 4 << 20
# A submit's spec carries its keyframe images (at most MAX_KEYFRAMES_BYTES), so it may be larger.
MAX_RECEIVED = MAX_KEYFRAMES_BYTES + MAX_MESSAGE
SWEEP_SECONDS = 3600
SHORT_CALL_THREADS = 16
# Ping idle connections so a client that vanished (sleep, cable, crash) frees its stream.
KEEPALIVE = [
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
]


class Daemon:
    """One running daemon: start() binds and begins work, stop() undoes it in order."""

    def __init__(self, settings: DaemonSettings, engines: list[Engine] | None = None) -> None:
        self.settings = settings
        self.token = ensure_token()
        self._umask = os.umask(PRIVATE_UMASK)
        make_private(settings.data_path)
        try:
            self._data_lock = hold_data_dir(settings.data_path)
        except MotionCloneError:
            os.umask(self._umask)
            raise
        use_compile_cache(settings.data_path / "torch_compile")
        self.store = JobStore(settings.data_path / "jobs.sqlite3")
        self.catalog = ModelCatalog(settings)
        self.cluster = ray_executor(settings) if settings.executor == "ray" else None
        if self.cluster is None:
            devices = worker_devices(settings.device)
            self.engines = engines or [Engine() for _ in devices]
            names = [""] * len(self.engines)
            dispatcher = Dispatcher(self.store, self.catalog.default)
        else:
            self.engines = self.cluster.engines
            devices, names = [None] * len(self.engines), [engine.name for engine in self.cluster.engines]
            dispatcher = Dispatcher(self.store, self.catalog.default, self.cluster.unavailable)
        if len(self.engines) != len(devices):
            raise ValueError(f"{len(devices)} worker devices but {len(self.engines)} engines")
        self.workers = [
            Worker(self.store, engine, settings, self.catalog, device, dispatcher, name)
            for engine, device, name in zip(self.engines, devices, names, strict=True)
        ]
        self.service = JobService(self.store, self.workers, settings, self.catalog, self._problems)
        # A thread for every stream and upload place plus some for short calls, so those always answer.
        threads = settings.max_streams + settings.max_uploads + SHORT_CALL_THREADS
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="motionclone-rpc"),
            interceptors=[TokenInterceptor(self.token)],
            options=[
                ("grpc.max_receive_message_length", MAX_RECEIVED),
                ("grpc.max_send_message_length", MAX_MESSAGE),
                ("grpc.so_reuseport", 0),  # a port another process listens on is refused, not shared
                *KEEPALIVE,
            ],
        )
        self.identity = DaemonIdentity(self.token)
        add_to_server(self.server, MotionCloneServicer(self.service, self.engines, self.identity, self.cluster))
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.watchers = [
            WatchFolder(Path(folder), self.service, settings.watch_settle_seconds, settings.watch_rescan_seconds)
            for folder in settings.watch
        ]
        self.web = None
        if settings.web:
            api, session = WebApi(self.service, self.watchers), WebSession(self.token)
            self.web = WebServer(api, session, settings.web_host, settings.max_streams)
        self.port = 0
        self._sweeper = threading.Event()

    def _problems(self) -> list[str]:
        """What the service cannot see itself, for status: the Ray cluster's and the watch folders' problems."""
        found = self.cluster.problems() if self.cluster else []
        return found + [problem for watcher in self.watchers for problem in watcher.problems()]

    def start(self) -> None:
        self.service.recover()
        self.service.sweep()
        try:
            self.port = self._bind()
            self._start_web()
        except MotionCloneError:
            self.server.stop(None)
            self._release()
            raise
        self.identity.port = self.port
        self.server.start()
        for worker in self.workers:
            worker.start()
        for watcher in self.watchers:
            watcher.start()
        threading.Thread(target=self._sweep_periodically, name="motionclone-retention", daemon=True).start()
        self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        self._write_endpoint()
        log.info("listening on %s (data dir %s)", join_address(self.settings.host, self.port), self.settings.data_path)
        if self.settings.uses_tls:
            log.info("token fingerprint %s; clients need the token file from %s", fingerprint(self.token), config_dir())

    def stop(self, grace: float = 5.0) -> None:
        self.health.enter_graceful_shutdown()
        if self.web is not None:
            self.web.stop()
        self._sweeper.set()
        stopped = self.server.stop(grace)
        for watcher in self.watchers:
            watcher.stop()
        for worker in self.workers:
            worker.stop()
        if self.cluster:
            self.cluster.shutdown()
        stopped.wait()
        self._release()
        endpoint = config_dir() / ENDPOINT_FILE
        if (json.loads(endpoint.read_text()) if endpoint.exists() else {}).get("pid") == os.getpid():
            endpoint.unlink(missing_ok=True)

    def _bind(self) -> int:
        """Add the listening port (TLS when configured); the port, or an error that says why not."""
        address = join_address(self.settings.host, self.settings.port)
        try:
            if self.settings.uses_tls:
                pair = (Path(self.settings.tls_key).read_bytes(), Path(self.settings.tls_cert).read_bytes())
                port = self.server.add_secure_port(address, grpc.ssl_server_credentials([pair]))
            else:
                port = self.server.add_insecure_port(address)
        except OSError as error:
            raise MotionCloneError(f"cannot read TLS key or certificate: {error}") from None
        except RuntimeError:
            port = 0
        if port == 0:
            raise MotionCloneError(f"cannot listen on {address}: {bind_error(self.settings.host, self.settings.port)}")
        return port

    def _start_web(self) -> None:
        """Serve the web page next to the gRPC port (see `DaemonSettings.web_port_for`), unless turned off."""
        if self.web is None:
            return
        port = self.settings.web_port_for(self.port)
        try:
            self.web.start(port)
        except OSError as error:
            address = join_address(self.settings.web_host, port)
            raise MotionCloneError(
                f"cannot serve the web page on {address}: {error.strerror or error} (set web_port, or web: false)"
            ) from None

    def _release(self) -> None:
        """Give back what the constructor took: the store, the data dir's lock and the process's umask."""
        self.store.close()
        self._data_lock.release()
        os.umask(self._umask)

    def _write_endpoint(self) -> None:
        endpoint = {"host": self.settings.host, "port": self.port, "tls": self.settings.uses_tls}
        if self.web is not None:
            endpoint |= {"web_host": self.web.host, "web_port": self.web.port}
        endpoint["pid"] = os.getpid()
        path = config_dir() / ENDPOINT_FILE
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(endpoint), encoding="utf-8")
        os.replace(partial, path)

    def _sweep_periodically(self) -> None:
        while not self._sweeper.wait(SWEEP_SECONDS):
            try:
                self.service.sweep()
            except Exception:
                log.exception("retention sweep failed")


def bind_error(host: str, port: int) -> str:
    """Why binding failed, in the operating system's words (gRPC only says that it did)."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        return f"unknown host {host!r} ({error.strerror})"
    for family, kind, proto, _name, address in infos:
        with socket.socket(family, kind, proto) as probe:
            try:
                probe.bind(address)
            except OSError as error:
                hint = " (another daemon?)" if error.errno == errno.EADDRINUSE else ""
                return f"{error.strerror}{hint}"
    return "gRPC could not bind it, though the address is free"


def ray_executor(settings: DaemonSettings) -> RayExecutor:
    """The Ray executor, imported only when chosen: Ray is an optional extra."""
    try:
        from motionclone_daemon.ray_executor import RayExecutor
    except ImportError:
        raise MotionCloneError("executor: ray needs Ray: pip install 'motionclone-studio[ray]'") from None
    return RayExecutor(settings)


def worker_devices(device: str | None) -> list[str | None]:
    """One worker per listed device, else one per CUDA GPU, else one on the automatic choice."""
    if device:
        return [d.strip() for d in device.split(",") if d.strip()]
    count = torch.cuda.device_count()
    return [f"cuda:{index}" for index in range(count)] if count > 1 else [None]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="motionclone-daemon", description="MotionClone job daemon")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the gRPC API until stopped (SIGTERM / Ctrl-C)")
    serve.add_argument("--config", type=Path, help="daemon YAML (default: daemon.yaml in the user config dir)")
    DaemonSettings.add_flags(serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from motionclone.library_chatter import quiet_libraries

    quiet_libraries()
    use_usable_cores()
    overrides = {f.name: getattr(args, f.name) for f in fields(DaemonSettings)}
    try:
        daemon = Daemon(DaemonSettings.load(args.config, **overrides))
        daemon.start()
    except MotionCloneError as error:
        print(f"motionclone-daemon: error: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"motionclone-daemon listening on {join_address(daemon.settings.host, daemon.port)}", flush=True)
    stop.wait()
    log.info("stopping: the running job, if any, goes back to the queue")
    daemon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
