"""The gRPC servicer: protos in, `JobService` calls, protos out. No logic of its own."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator

import grpc
import torch
from motionclone_api.v1 import jobs_pb2, jobs_pb2_grpc
from motionclone_client.protocol import settings_from_proto, settings_to_proto

from motionclone.engine import Engine, package_version
from motionclone_daemon.errors import InvalidRequest, abort_with
from motionclone_daemon.jobs import EventKind, Job, JobEvent, JobState
from motionclone_daemon.service import JobService, Submission

API_VERSION = "motionclone.v1"
RESULT_CHUNK = 1 << 20
_STATES = {state: getattr(jobs_pb2, f"JOB_STATE_{state.name}") for state in JobState}
_STATES_BACK = {number: state for state, number in _STATES.items()}
_KINDS = {kind: getattr(jobs_pb2, f"EVENT_KIND_{kind.name}") for kind in EventKind}


def job_to_proto(job: Job) -> jobs_pb2.Job:
    return jobs_pb2.Job(
        id=job.id,
        state=_STATES[job.state],
        spec=jobs_pb2.JobSpec(
            settings=settings_to_proto(job.settings),
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
    def __init__(self, service: JobService, engines: list[Engine]) -> None:
        self.service = service
        self.engines = engines

    @_mapping_errors
    def GetServerInfo(self, request, context):
        info = jobs_pb2.ServerInfo(
            version=package_version(),
            api_version=API_VERSION,
            loaded_model=", ".join(sorted({e.loaded_model for e in self.engines if e.loaded_model})),
            available_models=self.service.catalog.available(),
            queue_length=self.service.store.queue_length(),
            default_model=self.service.catalog.default(),
            max_upload_bytes=self.service.settings.max_upload_bytes,
        )
        if torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info()
            info.device, info.device_name = "cuda", torch.cuda.get_device_name()
            info.memory_total, info.memory_free = total, free
        else:
            info.device, info.device_name = "cpu", "CPU"
        return info

    @_mapping_errors
    def SubmitJob(self, request_iterator: Iterator[jobs_pb2.SubmitJobRequest], context):
        first = next(request_iterator, None)
        if first is None or not first.HasField("spec"):
            raise InvalidRequest("the first message of SubmitJob must carry the job spec")
        spec = first.spec
        submission = Submission(
            settings=settings_from_proto(spec.settings),
            idempotency_key=spec.idempotency_key,
            priority=spec.priority,
            reference_name=spec.reference_name,
            reference_path=spec.reference_path,
            motion_from_job=spec.motion_from_job,
        )
        return job_to_proto(self.service.submit(submission, _chunks(request_iterator)))

    @_mapping_errors
    def WatchJob(self, request, context):
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
        states = [_STATES_BACK[s] for s in request.states if s in _STATES_BACK]
        jobs = self.service.list(states or None, request.limit)
        return jobs_pb2.ListJobsResponse(jobs=[job_to_proto(job) for job in jobs])

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


def _chunks(requests: Iterator[jobs_pb2.SubmitJobRequest]) -> Iterator[bytes]:
    for request in requests:
        if not request.HasField("chunk"):
            raise InvalidRequest("after the spec, SubmitJob messages must carry clip chunks")
        yield request.chunk


def add_to_server(server: grpc.Server, servicer: MotionCloneServicer) -> None:
    jobs_pb2_grpc.add_MotionCloneServicer_to_server(servicer, server)
