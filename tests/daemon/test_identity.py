"""Issue 26, item 9: the token goes only to a live daemon that proved it holds it.

After a kill -9, endpoint.json still names the old port; whatever listens there next (or on the
default port) used to receive the token with the first call. The impostors here are real gRPC
servers that record every call's metadata.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager

import grpc
import pytest
from daemon_helpers import running_daemon
from motionclone_api.v1 import jobs_pb2, jobs_pb2_grpc
from motionclone_client import ClientError, DaemonClient, DaemonUnavailable

PROVE = "/motionclone.v1.MotionClone/ProveIdentity"


class Impostor(grpc.GenericRpcHandler):
    """Records the metadata of every call; answers ProveIdentity by relaying it when `relay_to` is set."""

    def __init__(self, relay_to: str | None = None) -> None:
        self.metadata: list[dict[str, str]] = []
        self.relay_to = relay_to

    def service(self, handler_call_details):
        self.metadata.append(dict(handler_call_details.invocation_metadata or ()))
        if handler_call_details.method == PROVE and self.relay_to:
            return grpc.unary_unary_rpc_method_handler(
                self._relay,
                request_deserializer=jobs_pb2.ProveIdentityRequest.FromString,
                response_serializer=jobs_pb2.ProveIdentityResponse.SerializeToString,
            )
        return None

    def _relay(self, request, context):
        with grpc.insecure_channel(self.relay_to) as channel:
            return jobs_pb2_grpc.MotionCloneStub(channel).ProveIdentity(request)

    def tokens_seen(self) -> list[str]:
        return [m["authorization"] for m in self.metadata if "authorization" in m]


@contextmanager
def impostor_on_a_port(relay_to: str | None = None) -> Iterator[tuple[Impostor, int]]:
    impostor = Impostor(relay_to)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), handlers=[impostor])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield impostor, port
    finally:
        server.stop(0)


def announce(config_dir, port: int, pid: int) -> None:
    (config_dir / "endpoint.json").write_text(json.dumps({"host": "127.0.0.1", "port": port, "tls": False, "pid": pid}))
    (config_dir / "token").write_text("the-users-token\n")


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_stale_endpoint_of_a_killed_daemon_gets_no_call(isolated_config_dir):
    with impostor_on_a_port() as (impostor, port):
        announce(isolated_config_dir, port, dead_pid())
        with DaemonClient() as client, pytest.raises(DaemonUnavailable, match="which is not running"):
            client.list()
    assert impostor.metadata == []


def test_a_listener_that_cannot_prove_it_holds_the_token_never_receives_it(isolated_config_dir):
    with impostor_on_a_port() as (impostor, port):
        announce(isolated_config_dir, port, os.getpid())
        with DaemonClient() as client, pytest.raises(ClientError, match="not a MotionClone daemon"):
            client.list()
    assert impostor.metadata and impostor.tokens_seen() == []


def test_a_listener_relaying_the_challenge_to_the_real_daemon_never_receives_the_token(
    tmp_path, isolated_config_dir, shared_engine
):
    with running_daemon(tmp_path, engine=shared_engine) as daemon:
        with impostor_on_a_port(relay_to=f"127.0.0.1:{daemon.port}") as (impostor, port):
            announce(isolated_config_dir, port, os.getpid())
            (isolated_config_dir / "token").write_text(daemon.token)
            with DaemonClient() as client, pytest.raises(ClientError, match="could not prove it holds your token"):
                client.list()
        assert impostor.tokens_seen() == []
        announce(isolated_config_dir, daemon.port, os.getpid())
        (isolated_config_dir / "token").write_text(daemon.token)
        with DaemonClient() as client:
            assert client.list() == []


def test_the_proof_is_served_without_the_token_and_refuses_a_short_nonce(tmp_path, shared_engine):
    with (
        running_daemon(tmp_path, engine=shared_engine) as daemon,
        grpc.insecure_channel(f"127.0.0.1:{daemon.port}") as channel,
    ):
        stub = jobs_pb2_grpc.MotionCloneStub(channel)
        reply = stub.ProveIdentity(jobs_pb2.ProveIdentityRequest(nonce=b"n" * 32))
        assert reply.port == daemon.port and len(reply.proof) == 32
        with pytest.raises(grpc.RpcError) as refused:
            stub.ProveIdentity(jobs_pb2.ProveIdentityRequest(nonce=b"short"))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
