"""DaemonClient: submit a clip, follow its progress, fetch the result. Plain Python objects out.

Address and token are found on their own on the daemon's machine (see `locations`); that token
is never sent off the machine (see `connection_for`). Every gRPC failure becomes a `ClientError`
whose message a user can act on; a watch that loses its connection reconnects and resumes from
the last event it saw, so no progress is lost.
"""

from __future__ import annotations

import hmac
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from motionclone_api.v1 import jobs_pb2, jobs_pb2_grpc

from motionclone_client import locations
from motionclone_client.errors import ClientError, DaemonUnavailable, PathRefused
from motionclone_client.identity import identity_proof, new_nonce, process_alive
from motionclone_client.local_files import file_fingerprint
from motionclone_client.protocol import KEYFRAMES_KEY, keyframes_to_proto, settings_to_proto, spec_settings

CHUNK = 1 << 20
RECONNECT_ATTEMPTS = 5
FINISHED = ("succeeded", "failed", "cancelled")


@dataclass
class JobInfo:
    id: str
    state: str
    settings: dict[str, Any]
    reference_name: str = ""
    error: str = ""
    phase: str = ""
    step: int = 0
    total_steps: int = 0
    queue_position: int = 0
    attempts: int = 0
    created_at: float = 0.0
    finished_at: float = 0.0
    result_size: int = 0
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @classmethod
    def from_proto(cls, job: jobs_pb2.Job) -> JobInfo:
        return cls(
            id=job.id,
            state=jobs_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_").lower(),
            settings=spec_settings(job.spec),
            reference_name=job.spec.reference_name,
            error=job.error,
            phase=job.phase,
            step=job.step,
            total_steps=job.total_steps,
            queue_position=job.queue_position,
            attempts=job.attempts,
            created_at=job.created_at,
            finished_at=job.finished_at,
            result_size=job.result_size,
            report=json.loads(job.report_json) if job.report_json else {},
        )


@dataclass
class ProgressEvent:
    """One step in a job's life: queued, started, extracting, step i/N, encoding, done, ..."""

    job_id: str
    sequence: int
    kind: str
    step: int = 0
    total_steps: int = 0
    queue_position: int = 0
    motion_energy: float | None = None
    guided: bool = False
    message: str = ""
    preview: bytes | None = None  # JPEG of the predicted clean video at this step, when one was made

    @property
    def terminal(self) -> bool:
        return self.kind in FINISHED

    @classmethod
    def from_proto(cls, event: jobs_pb2.JobEvent) -> ProgressEvent:
        return cls(
            job_id=event.job_id,
            sequence=event.sequence,
            kind=jobs_pb2.EventKind.Name(event.kind).removeprefix("EVENT_KIND_").lower(),
            step=event.step,
            total_steps=event.total_steps,
            queue_position=event.queue_position,
            motion_energy=event.motion_energy if event.HasField("motion_energy") else None,
            guided=event.guided,
            message=event.message,
            preview=event.preview if event.HasField("preview") else None,
        )


class JobFailed(ClientError):
    def __init__(self, job: JobInfo) -> None:
        super().__init__(f"job {job.id} {job.state}: {job.error}" if job.error else f"job {job.id} {job.state}")
        self.job = job


@dataclass(frozen=True)
class Connection:
    """Where to connect, which token to present and whether over TLS; `announced_pid` is the
    process endpoint.json names when the address came from there."""

    address: str
    token: str
    tls: bool
    announced_pid: int | None = None


def connection_for(address: str | None, token: str | None, root_certificates: bytes | None) -> Connection:
    """Decide, before any byte is sent, what an address may be told.

    The token file's token goes only to this machine's daemon: the one endpoint.json announces (no
    address given) or a loopback address. Any other address may be a stranger, so it gets only a
    token the caller gave for it, and only over TLS (the system's roots unless `root_certificates`).
    """
    if address is None:
        endpoint = locations.read_endpoint() or {}
        tls = root_certificates is not None or bool(endpoint.get("tls"))
        pid = endpoint.get("pid")
        announced = pid if isinstance(pid, int) and not isinstance(pid, bool) else None
        return Connection(locations.default_address(), _local_token(token), tls, announced)
    if locations.is_loopback(address):
        return Connection(address, _local_token(token), root_certificates is not None)
    if not token:
        raise ClientError(
            f"{address} is not this machine's daemon: pass its token with --token or MOTIONCLONE_TOKEN "
            "(the local token is never sent off this machine)"
        )
    return Connection(address, token, tls=True)


def _port_of(address: str) -> int:
    """The port of HOST:PORT or [IPv6]:PORT."""
    return int(address.rpartition(":")[2])


def _local_token(token: str | None) -> str:
    return token if token is not None else locations.read_token() or ""


class DaemonClient:
    def __init__(self, address: str | None = None, token: str | None = None, root_certificates: bytes | None = None):
        connection = connection_for(address, token, root_certificates)
        self.address = connection.address
        self._connection = connection
        self._token_metadata = (("authorization", f"Bearer {connection.token}"),)
        # Over TLS the certificate identifies the daemon; in plain text it proves it holds the token.
        self._proven = connection.tls
        if connection.tls:
            self._channel = grpc.secure_channel(self.address, grpc.ssl_channel_credentials(root_certificates))
        else:
            self._channel = grpc.insecure_channel(self.address)
        self._stub = jobs_pb2_grpc.MotionCloneStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> DaemonClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def _metadata(self) -> tuple[tuple[str, str], ...]:
        """The token, handed out only once the listener has shown it is the daemon that holds it."""
        if not self._proven:
            self._prove_identity()
        return self._token_metadata

    def _prove_identity(self) -> None:
        """Check the announced process is alive, then that the listener holds the token (see `identity`)."""
        pid = self._connection.announced_pid
        if pid is not None and not process_alive(pid):
            raise DaemonUnavailable(self.address, f"endpoint.json names process {pid}, which is not running")
        nonce = new_nonce()
        try:
            reply = self._stub.ProveIdentity(jobs_pb2.ProveIdentityRequest(nonce=nonce), timeout=30.0)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                raise ClientError(
                    f"the program at {self.address} is not a MotionClone daemon of this version; the token was not sent"
                ) from None
            raise self._error(error) from None
        # A daemon named by endpoint.json listens on the port it announced; a listener that answers
        # for another port relays the challenge. A given address may be a tunnel to another port.
        relayed = pid is not None and reply.port != _port_of(self.address)
        expected = identity_proof(self._connection.token, reply.port, nonce)
        if relayed or not hmac.compare_digest(reply.proof, expected):
            raise ClientError(
                f"the daemon at {self.address} could not prove it holds your token, so it was not sent: "
                "use the token file from its config dir (or another program listens there)"
            )
        self._proven = True

    def _error(self, error: grpc.RpcError) -> ClientError:
        code = error.code() if hasattr(error, "code") else None
        details = error.details() if hasattr(error, "details") else str(error)
        if code == grpc.StatusCode.UNAVAILABLE:
            return self._unreachable(details or "")
        if code == grpc.StatusCode.PERMISSION_DENIED:
            return PathRefused(details or "the daemon refused to read that path")
        if code == grpc.StatusCode.UNAUTHENTICATED:
            return ClientError(
                f"the daemon at {self.address} refused the token; use the token file from its config dir"
            )
        return ClientError(details or str(code))

    def _unreachable(self, details: str) -> ClientError:
        """UNAVAILABLE means nobody listens or a TLS handshake failed; only the details tell which."""
        if "CERTIFICATE_VERIFY_FAILED" in details:
            return ClientError(
                f"the daemon at {self.address} presented a certificate this machine does not trust; "
                "pass the daemon's certificate with --ca-cert FILE"
            )
        if "handshake failed" in details.lower():
            return ClientError(
                f"the TLS handshake with {self.address} failed; check that the daemon serves TLS with that certificate"
            )
        return DaemonUnavailable(self.address)

    def _call(self, method: Callable, request: Any, timeout: float | None = 30.0) -> Any:
        try:
            return method(request, metadata=self._metadata, timeout=timeout)
        except grpc.RpcError as error:
            raise self._error(error) from None

    # -- calls ----------------------------------------------------------------------------------

    def info(self) -> jobs_pb2.ServerInfo:
        return self._call(self._stub.GetServerInfo, jobs_pb2.GetServerInfoRequest())

    def submit(
        self,
        clip: str | Path | None,
        settings: dict[str, Any],
        *,
        by_path: bool | None = None,
        motion_from_job: str = "",
        idempotency_key: str | None = None,
        priority: int = 0,
    ) -> JobInfo:
        """Send a job.

        By default a clip goes by path to a daemon on this machine, which then reads and keeps
        only the range the job uses (a 3 s strip of a 20-minute take is neither streamed nor
        stored whole, and the upload limit applies to those 3 s); it is streamed when the daemon
        is elsewhere or refuses the path. `by_path` True or False forces one way. Keyframes
        (`settings["keyframes"]`, "IMAGE[@FRAME]" texts) always travel as bytes with the spec.
        """
        others = {key: value for key, value in settings.items() if key != KEYFRAMES_KEY}
        try:
            spec = jobs_pb2.JobSpec(
                settings=settings_to_proto(others),
                idempotency_key=idempotency_key or uuid.uuid4().hex,
                priority=priority,
                motion_from_job=motion_from_job,
                keyframes=keyframes_to_proto(settings.get(KEYFRAMES_KEY) or ()),
            )
        except (ValueError, TypeError) as error:
            raise ClientError(f"cannot send this job to the daemon: {error}") from None
        if clip is None:
            return self._send(spec, None)
        clip = Path(clip)
        if not clip.is_file():
            raise ClientError(f"clip not found: {clip}")
        spec.reference_name = clip.name
        if by_path is False or (by_path is None and not locations.is_loopback(self.address)):
            return self._send(spec, clip)
        path_spec = jobs_pb2.JobSpec()
        path_spec.CopyFrom(spec)
        path_spec.reference_path = str(clip.resolve())
        path_spec.reference_fingerprint = file_fingerprint(clip)
        try:
            return self._send(path_spec, None)
        except PathRefused:
            if by_path:
                raise
        return self._send(spec, clip)

    def _send(self, spec: jobs_pb2.JobSpec, upload: Path | None) -> JobInfo:
        """One SubmitJob call: the spec, then the bytes of `upload` when given."""

        def messages() -> Iterator[jobs_pb2.SubmitJobRequest]:
            yield jobs_pb2.SubmitJobRequest(spec=spec)
            if upload is not None:
                with open(upload, "rb") as handle:
                    for data in iter(lambda: handle.read(CHUNK), b""):
                        yield jobs_pb2.SubmitJobRequest(chunk=data)

        return JobInfo.from_proto(self._call(self._stub.SubmitJob, messages(), timeout=None))

    def get(self, job_id: str) -> JobInfo:
        return JobInfo.from_proto(self._call(self._stub.GetJob, jobs_pb2.GetJobRequest(job_id=job_id)))

    def list(self, states: list[str] | None = None, limit: int = 0) -> list[JobInfo]:
        """Jobs newest first, at most `limit` (0: all), following the daemon's pages."""
        numbers = [jobs_pb2.JobState.Value(f"JOB_STATE_{s.upper()}") for s in states or []]
        jobs: list[JobInfo] = []
        token = ""
        while True:
            wanted = limit - len(jobs) if limit else 0
            request = jobs_pb2.ListJobsRequest(states=numbers, limit=wanted, page_token=token)
            reply = self._call(self._stub.ListJobs, request)
            jobs += [JobInfo.from_proto(job) for job in reply.jobs]
            token = reply.next_page_token
            if not token or (limit and len(jobs) >= limit):
                return jobs[:limit] if limit else jobs

    def cancel(self, job_id: str) -> JobInfo:
        return JobInfo.from_proto(self._call(self._stub.CancelJob, jobs_pb2.CancelJobRequest(job_id=job_id)))

    def delete(self, job_id: str) -> None:
        self._call(self._stub.DeleteJob, jobs_pb2.DeleteJobRequest(job_id=job_id))

    def events(self, job_id: str, after: int = 0) -> Iterator[ProgressEvent]:
        """The job's events until it ends; reconnects and resumes if the connection drops."""
        failures = 0
        while True:
            try:
                stream = self._stub.WatchJob(
                    jobs_pb2.WatchJobRequest(job_id=job_id, after_sequence=after), metadata=self._metadata
                )
                for message in stream:
                    failures = 0
                    event = ProgressEvent.from_proto(message)
                    after = event.sequence
                    yield event
                    if event.terminal:
                        return
                return
            except grpc.RpcError as error:
                problem = self._error(error)
                if not isinstance(problem, DaemonUnavailable) or failures >= RECONNECT_ATTEMPTS:
                    raise problem from None
                failures += 1
                time.sleep(min(2.0**failures * 0.25, 5.0))

    def wait(self, job_id: str, on_event: Callable[[ProgressEvent], None] | None = None) -> JobInfo:
        """Follow a job to its end; raise `JobFailed` unless it succeeded."""
        for event in self.events(job_id):
            if on_event:
                on_event(event)
        job = self.get(job_id)
        if job.state != "succeeded":
            raise JobFailed(job)
        return job

    def download(self, job_id: str, destination: str | Path) -> Path:
        """Write the job's result to `destination` (via a temporary name, then rename)."""
        destination = Path(destination)
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_name(f".{destination.name}.partial")
        try:
            with open(partial, "wb") as handle:
                stream = self._stub.FetchResult(jobs_pb2.FetchResultRequest(job_id=job_id), metadata=self._metadata)
                for chunk in stream:
                    handle.write(chunk.data)
            os.replace(partial, destination)
        except grpc.RpcError as error:
            raise self._error(error) from None
        finally:
            partial.unlink(missing_ok=True)
        return destination

    def result_path(self, job_id: str) -> Path:
        """The result's path on the daemon's machine (for clients that share its filesystem)."""
        try:
            stream = self._stub.FetchResult(
                jobs_pb2.FetchResultRequest(job_id=job_id, as_path=True), metadata=self._metadata
            )
            return Path(next(iter(stream)).path)
        except grpc.RpcError as error:
            raise self._error(error) from None
