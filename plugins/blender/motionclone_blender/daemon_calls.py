"""The short daemon calls the UI makes (status, cancel), each on its own connection, run off the main thread."""

from __future__ import annotations

from motionclone_api.v1 import jobs_pb2
from motionclone_client import DaemonClient

from .preferences import Connection

GIB = 1024**3


def server_info(daemon: Connection) -> jobs_pb2.ServerInfo:
    with DaemonClient(daemon.address, daemon.token) as client:
        return client.info()


def cancel_job(daemon: Connection, job_id: str) -> None:
    with DaemonClient(daemon.address, daemon.token) as client:
        client.cancel(job_id)


def describe_server(info: jobs_pb2.ServerInfo) -> str:
    """One line for "Test connection": version, device, GPU memory, models, and any problem."""
    device = f"{info.device} ({info.device_name})" if info.device_name else info.device
    memory = f", {info.memory_free / GIB:.1f} of {info.memory_total / GIB:.1f} GB free" if info.memory_total else ""
    models = ", ".join(info.available_models) or info.default_model
    problems = f"; problems: {'; '.join(info.problems)}" if info.problems else ""
    return f"MotionClone {info.version} on {device}{memory}; models: {models}{problems}"
