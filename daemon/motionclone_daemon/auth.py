"""The daemon's token: created on first start (0600, user config dir), checked on every call."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from motionclone_client.identity import MAX_NONCE_BYTES, MIN_NONCE_BYTES, identity_proof
from motionclone_client.locations import TOKEN_FILE, config_dir

# Answered without the token: it is how a client learns the listener holds the token at all.
OPEN_METHODS = frozenset({"/motionclone.v1.MotionClone/ProveIdentity"})


def ensure_token(folder: Path | None = None) -> str:
    """Read the token, creating it (readable by the owner only) when absent."""
    folder = folder or config_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / TOKEN_FILE
    if not path.exists():
        # Hex, not url-safe base64: one in 64 of those began with "-", which argparse then read as
        # an option (`motionclone status --token -x...` failed). 256 bits either way.
        token = secrets.token_hex(32)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return ensure_token(folder)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(token + "\n")
        return token
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def fingerprint(token: str) -> str:
    """A short digest to compare tokens by eye without showing them."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


@dataclass
class DaemonIdentity:
    """What the daemon proves itself with: its token and the port it listens on (set once bound)."""

    token: str
    port: int = 0
    pid: int = field(default_factory=os.getpid)

    def proof(self, nonce: bytes) -> bytes:
        if not MIN_NONCE_BYTES <= len(nonce) <= MAX_NONCE_BYTES:
            raise ValueError(f"a nonce has {MIN_NONCE_BYTES} to {MAX_NONCE_BYTES} bytes, not {len(nonce)}")
        return identity_proof(self.token, self.port, nonce)


class TokenInterceptor(grpc.ServerInterceptor):
    """Refuses every call whose `authorization` metadata is not `Bearer <token>`."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    def intercept_service(self, continuation, handler_call_details):
        metadata = dict(handler_call_details.invocation_metadata or ())
        given = str(metadata.get("authorization", "")).encode()
        handler = continuation(handler_call_details)
        if handler_call_details.method in OPEN_METHODS:
            return handler
        if hmac.compare_digest(given, self._expected) or handler is None:
            return handler
        return _refusing(handler)


def _refusing(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    def refuse(_request, context: grpc.ServicerContext):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong token")

    kinds = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }
    make = kinds[(handler.request_streaming, handler.response_streaming)]
    return make(
        refuse,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
