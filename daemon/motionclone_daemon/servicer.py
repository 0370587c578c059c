"""The gRPC servicer: protos in, `JobService` calls, protos out. No logic of its own."""

from __future__ import annotations

import functools
import inspect
import json
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import grpc
from motionclone_api.v1 import jobs_pb2, jobs_pb2_grpc
from motionclone_client.locations import is_loopback
from motionclone_client.protocol import KEYFRAMES_KEY, settings_from_proto, settings_to_proto
from motionclone_options import parse_keyframe

from motionclone.config.checks import MAX_TEXT_CHARS
from motionclone.engine import Engine
from motionclone.report import package_version
from motionclone_daemon.auth import DaemonIdentity
from motionclone_daemon.errors import InvalidRequest, UploadAborted, abort_with
from motionclone_daemon.jobs import EventKind, Job, JobEvent, JobState
from motionclone_daemon.limits import Slots
from motionclone_daemon.service import JobService, KeyframeUpload, Submission, stored_keyframe_name
from motionclone_daemon.status import device_status, worker_status

if TYPE_CHECKING:
    from motionclone_daemon.ray_executor import RayExecutor

API_VERSION = "motionclone.v1"
RESULT_CHUNK = 1 << 20
# Replies stay well under the 4 MiB message limit (main.MAX_MESSAGE) whatever the jobs hold.
REPLY_BYTES = 3 << 20
JOB_REPLY_BYTES = 256 << 10
PAGE_JOBS = 500
_STATES = {state: getattr(jobs_pb2, f"JOB_STATE_{state.name}") for state in JobState}
_STATES_BACK = {number: state for state, number in _STATES.items()}
_KINDS = {kind: getattr(jobs_pb2, f"EVENT_KIND_{kind.name}") for kind in EventKind}


def job_to_proto(job: Job) -> jobs_pb2.Job:
    """The job as the API shows it, never larger than `JOB_REPLY_BYTES` (see `_bounded`)."""
    return _bounded(_job_message(job))


def _bounded(message: jobs_pb2.Job) -> jobs_pb2.Job:
    """Cut a job that an older daemon accepted with huge texts down to a size every reply can carry.

    Today's limits keep new jobs far below it; a store may still hold jobs from before them, and
    one such job must not make every listing or download fail.
    """
    if message.ByteSize() <= JOB_REPLY_BYTES:
        return message
    message.report_json = json.dumps({"note": "the report of this job is too large to send"})
    settings = message.spec.settings
    for field, value in settings.ListFields():
        if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
            setattr(settings, field.name, value[:MAX_TEXT_CHARS])
    return message


def _job_message(job: Job) -> jobs_pb2.Job:
    return jobs_pb2.Job(
        id=job.id,
        state=_STATES[job.state],
        spec=jobs_pb2.JobSpec(
            settings=settings_to_proto({k: v for k, v in job.settings.items() if k != KEYFRAMES_KEY}),
            keyframes=[_stored_keyframe(text) for text in job.settings.get(KEYFRAMES_KEY, ())],
            idempotency_key=job.idempotency_key,
            priority=job.priority,
            reference_name=job.reference_name,
            motion_from_job=job.motion_from_job,
        ),
        error=job.error,
        attempts=job.attempts,
        queue_position=job.queue_position,
        phase=job.phase,
        step=job.step,
        total_steps=job.total_steps,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        result_size=job.result_size,
        report_json=job.report_json,
    )


def _stored_keyframe(text: str) -> jobs_pb2.Keyframe:
    """A job's stored keyframe ("<data dir>/keyframes/<job>-<index>-<name>@FRAME") as the API
    shows it: the name it was sent with and its frame, no bytes and no daemon path."""
    path, frame = parse_keyframe(text)
    return jobs_pb2.Keyframe(frame=frame, name=stored_keyframe_name(path))


def event_to_proto(event: JobEvent, queue_position: int = 0) -> jobs_pb2.JobEvent:
    payload = event.payload
    message = jobs_pb2.JobEvent(
        job_id=event.job_id,
        sequence=event.sequence,
        kind=_KINDS[event.kind],
        time=event.time,
        queue_position=queue_position,
        step=payload.get("step", 0),
        total_steps=payload.get("total_steps", 0),
        guided=payload.get("guided", False),
        message=payload.get("message", ""),
    )
    if "motion_energy" in payload:
        message.motion_energy = payload["motion_energy"]
    if event.preview is not None:
        message.preview = event.preview
    return message


def _mapping_errors(method: Callable) -> Callable:
    """Run an RPC method with every error turned into a status by `abort_with` (streams too)."""
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def streaming(self, request, context):
            try:
                yield from method(self, request, context)
            except Exception as error:
                abort_with(context, error)

        return streaming

    @functools.wraps(method)
    def unary(self, request, context):
        try:
            return method(self, request, context)
        except Exception as error:
            abort_with(context, error)

    return unary


class MotionCloneServicer(jobs_pb2_grpc.MotionCloneServicer):
    def __init__(
        self,
        service: JobService,
        engines: list[Engine],
        identity: DaemonIdentity,
        cluster: RayExecutor | None = None,
    ) -> None:
        self.service = service
        self.identity = identity
        self.engines = engines
        self.cluster = cluster
        settings = service.settings
        self.streams = Slots("progress streams", settings.max_streams)
        self.uploads = Slots("uploads", settings.max_uploads)

    def ProveIdentity(self, request, context):
        try:
            proof = self.identity.proof(request.nonce)
        except ValueError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        return jobs_pb2.ProveIdentityResponse(proof=proof, port=self.identity.port, pid=self.identity.pid)

    @_mapping_errors
    def GetServerInfo(self, request, context):
        return jobs_pb2.ServerInfo(
            version=package_version(),
            api_version=API_VERSION,
            loaded_model=", ".join(sorted({e.loaded_model for e in self.engines if e.loaded_model})),
            available_models=self.service.catalog.available(),
            queue_length=self.service.store.queue_length(),
            default_model=self.service.catalog.default(),
            max_upload_bytes=self.service.settings.max_upload_bytes,
            problems=self.service.problems(),
            workers=[
                jobs_pb2.WorkerInfo(
                    **worker_status(worker),
                    node=worker.engine.node if self.cluster else "",  # a RayEngine's actor's node
                )
                for worker in self.service.workers
            ],
            executor=self.service.settings.executor,
            cluster_nodes=[jobs_pb2.ClusterNode(**vars(node)) for node in self.cluster.nodes()] if self.cluster else [],
            **device_status(),
        )

    @_mapping_errors
    def SubmitJob(self, request_iterator: Iterator[jobs_pb2.SubmitJobRequest], context):
        first = next(request_iterator, None)
        if first is None or not first.HasField("spec"):
            raise InvalidRequest("the first message of SubmitJob must carry the job spec")
        with self.uploads.taken():
            return self._submit(first.spec, request_iterator, context)

    def _submit(self, spec: jobs_pb2.JobSpec, requests: Iterator[jobs_pb2.SubmitJobRequest], context) -> jobs_pb2.Job:
        submission = Submission(
            settings=settings_from_proto(spec.settings),
            idempotency_key=spec.idempotency_key,
            priority=spec.priority,
            reference_name=spec.reference_name,
            reference_path=spec.reference_path,
            motion_from_job=spec.motion_from_job,
            reference_fingerprint=spec.reference_fingerprint,
            keyframes=tuple(KeyframeUpload(k.name, k.frame, k.image) for k in spec.keyframes),
            local_peer=is_loopback_peer(context.peer()),
        )
        stall = self.service.settings.upload_stall_seconds
        return job_to_proto(self.service.submit(submission, _chunks(requests, context, stall)))

    @_mapping_errors
    def WatchJob(self, request, context):
        with self.streams.taken():
            for event in self.service.watch(request.job_id, request.after_sequence, context.is_active):
                position = 0
                if event.kind in (EventKind.QUEUED, EventKind.REQUEUED):
                    position = self.service.get(request.job_id).queue_position
                yield event_to_proto(event, position)

    @_mapping_errors
    def GetJob(self, request, context):
        return job_to_proto(self.service.get(request.job_id))

    @_mapping_errors
    def ListJobs(self, request, context):
        """One page, newest first: at most `limit` (and `PAGE_JOBS`) jobs, and never more bytes
        than a reply may carry; `next_page_token` says where the next page starts."""
        if request.limit < 0:
            raise InvalidRequest(f"invalid limit {request.limit}: must be 0 (every job) or more")
        states = [_STATES_BACK[s] for s in request.states if s in _STATES_BACK]
        wanted = min(request.limit or PAGE_JOBS, PAGE_JOBS)
        jobs = self.service.list(states or None, wanted + 1, before=request.page_token)
        reply = jobs_pb2.ListJobsResponse()
        for job in jobs[:wanted]:
            message = job_to_proto(job)
            if reply.jobs and reply.ByteSize() + message.ByteSize() + 16 > REPLY_BYTES:
                break
            reply.jobs.append(message)
        if len(jobs) > len(reply.jobs):
            reply.next_page_token = reply.jobs[-1].id
        return reply

    @_mapping_errors
    def CancelJob(self, request, context):
        return job_to_proto(self.service.cancel(request.job_id))

    @_mapping_errors
    def DeleteJob(self, request, context):
        self.service.delete(request.job_id)
        return jobs_pb2.DeleteJobResponse()

    @_mapping_errors
    def FetchResult(self, request, context):
        path = self.service.result_path(request.job_id)
        size = path.stat().st_size
        if request.as_path:
            yield jobs_pb2.ResultChunk(path=str(path), total_size=size)
            return
        with open(path, "rb") as handle:
            first = True
            for data in iter(lambda: handle.read(RESULT_CHUNK), b""):
                yield jobs_pb2.ResultChunk(data=data, total_size=size if first else 0)
                first = False


def _chunks(requests: Iterator[jobs_pb2.SubmitJobRequest], context, stall_seconds: float) -> Iterator[bytes]:
    """The clip's chunks; an upload that sends nothing for `stall_seconds` is cancelled.

    A stalled client would otherwise hold its upload place (and a server thread) forever. A
    cancelled or broken stream ends the iteration early, so the end is checked: only a stream
    the client closed itself is a complete clip.
    """
    stalled = threading.Event()

    def give_up() -> None:
        stalled.set()
        context.cancel()

    timer = threading.Timer(stall_seconds, give_up)
    timer.start()
    try:
        for request in requests:
            timer.cancel()
            if not request.HasField("chunk"):
                raise InvalidRequest("after the spec, SubmitJob messages must carry clip chunks")
            yield request.chunk
            timer = threading.Timer(stall_seconds, give_up)
            timer.start()
    except grpc.RpcError:
        broken = True
    else:
        broken = not context.is_active()
    finally:
        timer.cancel()
    if stalled.is_set():
        raise UploadAborted(f"the upload sent nothing for {stall_seconds:g} s and was cancelled")
    if broken:
        raise UploadAborted("the client went away before the upload was complete")


def add_to_server(server: grpc.Server, servicer: MotionCloneServicer) -> None:
    jobs_pb2_grpc.add_MotionCloneServicer_to_server(servicer, server)


def is_loopback_peer(peer: str) -> bool:
    """Whether a gRPC peer ("ipv4:127.0.0.1:5123", "ipv6:[::1]:5123", "unix:...") is this machine."""
    kind, _, address = peer.partition(":")
    return kind == "unix" or (kind in ("ipv4", "ipv6") and is_loopback(address))
