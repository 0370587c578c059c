"""The command line as a client: the local token stays on this machine, other daemons need a token
and TLS, and numbers the wire cannot carry are refused in one line before anything connects."""

from __future__ import annotations

import ipaddress
import socket
from concurrent import futures

import grpc
import pytest
from daemon_helpers import running_daemon, self_signed_certificate
from motionclone_daemon.auth import ensure_token

from motionclone.cli.main import main


def this_machine_ip() -> str:
    """An address of this machine that is not loopback: the one its default route leaves by."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("198.51.100.1", 9))  # TEST-NET-2; a UDP connect sends nothing, it only picks a route
        except OSError:
            pytest.skip("this machine has no route off loopback")
        address = probe.getsockname()[0]
    if ipaddress.ip_address(address).is_loopback:
        pytest.skip("this machine has no address but loopback")
    return address


class RecordingHandler(grpc.GenericRpcHandler):
    """A stranger's plain gRPC server: serves nothing, remembers the metadata of every call."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> None:
        self.calls.append(dict(handler_call_details.invocation_metadata))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ([], "is not this machine's daemon: pass its token with --token or MOTIONCLONE_TOKEN"),
        (["--token", "secret"], "TLS handshake"),
    ],
)
def test_no_token_goes_in_cleartext_to_another_address(flags, message, capsys):
    ensure_token()
    ip = this_machine_ip()
    recorder = RecordingHandler()
    stranger = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[recorder])
    port = stranger.add_insecure_port(f"{ip}:0")
    stranger.start()
    try:
        assert main(["status", "--address", f"{ip}:{port}", *flags]) == 2
    finally:
        stranger.stop(None)
    assert recorder.calls == []
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_a_self_signed_daemon_elsewhere_is_trusted_with_ca_cert(tmp_path, shared_engine, capsys, monkeypatch):
    ip = this_machine_ip()
    key, cert = self_signed_certificate(tmp_path, f"IP:{ip}")
    with running_daemon(tmp_path, engine=shared_engine, host=ip, tls_cert=str(cert), tls_key=str(key)) as daemon:
        address = f"{ip}:{daemon.port}"
        assert main(["status", "--address", address, "--token", daemon.token]) == 2
        err = capsys.readouterr().err.strip()
        assert err == (
            f"motionclone: error: the daemon at {address} presented a certificate this machine does not trust; "
            "pass the daemon's certificate with --ca-cert FILE"
        )
        monkeypatch.setenv("MOTIONCLONE_TOKEN", daemon.token)
        assert main(["status", "--address", address, "--ca-cert", str(cert)]) == 0
        assert "motionclone.v1" in capsys.readouterr().out


def test_an_unreadable_ca_cert_is_one_line(tmp_path, capsys):
    assert main(["status", "--address", "127.0.0.1:9", "--ca-cert", str(tmp_path / "missing.pem")]) == 2
    assert capsys.readouterr().err.startswith(f"motionclone: error: cannot read --ca-cert {tmp_path / 'missing.pem'}")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["submit", "clip.mp4", "--prompt", "x", "--priority", "99999999999"], "--priority must be from -2147483648"),
        (["submit", "clip.mp4", "--prompt", "x", "--priority", "-2147483649"], "--priority must be from -2147483648"),
        (["jobs", "--limit", "99999999999"], "--limit must be from 1 to 2147483647, not 99999999999"),
        (["jobs", "--limit", "0"], "--limit must be from 1 to 2147483647, not 0"),
    ],
)
def test_numbers_the_wire_cannot_carry_are_refused_before_connecting(argv, message, capsys):
    assert main([*argv, "--address", "127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
