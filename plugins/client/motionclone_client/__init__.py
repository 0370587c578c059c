"""The MotionClone client: the only way front ends talk to the daemon. Needs grpcio + protobuf."""

from motionclone_client.client import DaemonClient, JobFailed, ProgressEvent
from motionclone_client.errors import ClientError, DaemonUnavailable

__all__ = ["ClientError", "DaemonClient", "DaemonUnavailable", "JobFailed", "ProgressEvent"]
