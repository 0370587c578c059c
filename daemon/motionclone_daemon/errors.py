"""Domain errors of the daemon, and the one place that maps them to gRPC status codes."""

from __future__ import annotations

import logging

import grpc

from motionclone.errors import MotionCloneError

log = logging.getLogger(__name__)


class DaemonError(Exception):
    """An error whose message is meant for the client."""

    status = grpc.StatusCode.INTERNAL


class NotFound(DaemonError):
    status = grpc.StatusCode.NOT_FOUND


class InvalidRequest(DaemonError):
    status = grpc.StatusCode.INVALID_ARGUMENT


class Forbidden(DaemonError):
    status = grpc.StatusCode.PERMISSION_DENIED


class TooLarge(DaemonError):
    status = grpc.StatusCode.RESOURCE_EXHAUSTED


class Busy(DaemonError):
    """Every place for this kind of call is taken; retrying later will work."""

    status = grpc.StatusCode.RESOURCE_EXHAUSTED


class UploadAborted(DaemonError):
    """The client stopped sending before its clip was complete; nothing was kept."""

    status = grpc.StatusCode.CANCELLED


class Conflict(DaemonError):
    status = grpc.StatusCode.FAILED_PRECONDITION


def abort_with(context: grpc.ServicerContext, error: Exception) -> None:
    """Turn a domain or engine error into a status; anything else is logged and kept generic."""
    if isinstance(error, DaemonError):
        context.abort(error.status, str(error))
    if isinstance(error, MotionCloneError):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
    log.exception("internal error while serving a call")
    context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(error).__name__}")
