from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]

class EventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_KIND_UNSPECIFIED: _ClassVar[EventKind]
    EVENT_KIND_QUEUED: _ClassVar[EventKind]
    EVENT_KIND_STARTED: _ClassVar[EventKind]
    EVENT_KIND_EXTRACTING: _ClassVar[EventKind]
    EVENT_KIND_STEP: _ClassVar[EventKind]
    EVENT_KIND_ENCODING: _ClassVar[EventKind]
    EVENT_KIND_SUCCEEDED: _ClassVar[EventKind]
    EVENT_KIND_FAILED: _ClassVar[EventKind]
    EVENT_KIND_CANCELLED: _ClassVar[EventKind]
    EVENT_KIND_REQUEUED: _ClassVar[EventKind]
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState
EVENT_KIND_UNSPECIFIED: EventKind
EVENT_KIND_QUEUED: EventKind
EVENT_KIND_STARTED: EventKind
EVENT_KIND_EXTRACTING: EventKind
EVENT_KIND_STEP: EventKind
EVENT_KIND_ENCODING: EventKind
EVENT_KIND_SUCCEEDED: EventKind
EVENT_KIND_FAILED: EventKind
EVENT_KIND_CANCELLED: EventKind
EVENT_KIND_REQUEUED: EventKind

class ProveIdentityRequest(_message.Message):
    __slots__ = ("nonce",)
    NONCE_FIELD_NUMBER: _ClassVar[int]
    nonce: bytes
    def __init__(self, nonce: _Optional[bytes] = ...) -> None: ...

class ProveIdentityResponse(_message.Message):
    __slots__ = ("proof", "port", "pid")
    PROOF_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    proof: bytes
    port: int
    pid: int
    def __init__(self, proof: _Optional[bytes] = ..., port: _Optional[int] = ..., pid: _Optional[int] = ...) -> None: ...

class GenerationSettings(_message.Message):
    __slots__ = ("prompt", "negative_prompt", "seed", "preset", "steps", "guidance_steps", "motion_guidance_weight", "cfg_scale", "frames", "width", "height", "fps", "start", "end", "resize", "model", "motion_adapter", "extraction_mode", "inversion_steps", "subject", "reference_prompt", "semantic_guidance_weight", "output_fps", "output_frames", "extraction_seed", "noise_schedule", "vae", "reference_subject", "semantic_mask_threshold", "semantic_app_threshold", "semantic_sigma", "preview_every", "low_memory", "motion_fps", "context_overlap", "context_blend", "interpolate", "shuffle_context", "keyframe_strength", "sparse_control")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_STEPS_FIELD_NUMBER: _ClassVar[int]
    MOTION_GUIDANCE_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    CFG_SCALE_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    RESIZE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MOTION_ADAPTER_FIELD_NUMBER: _ClassVar[int]
    EXTRACTION_MODE_FIELD_NUMBER: _ClassVar[int]
    INVERSION_STEPS_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    SEMANTIC_GUIDANCE_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FPS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FRAMES_FIELD_NUMBER: _ClassVar[int]
    EXTRACTION_SEED_FIELD_NUMBER: _ClassVar[int]
    NOISE_SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    VAE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    SEMANTIC_MASK_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SEMANTIC_APP_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SEMANTIC_SIGMA_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_EVERY_FIELD_NUMBER: _ClassVar[int]
    LOW_MEMORY_FIELD_NUMBER: _ClassVar[int]
    MOTION_FPS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_OVERLAP_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_BLEND_FIELD_NUMBER: _ClassVar[int]
    INTERPOLATE_FIELD_NUMBER: _ClassVar[int]
    SHUFFLE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    KEYFRAME_STRENGTH_FIELD_NUMBER: _ClassVar[int]
    SPARSE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    negative_prompt: str
    seed: int
    preset: str
    steps: int
    guidance_steps: int
    motion_guidance_weight: float
    cfg_scale: float
    frames: int
    width: int
    height: int
    fps: float
    start: str
    end: str
    resize: str
    model: str
    motion_adapter: str
    extraction_mode: str
    inversion_steps: int
    subject: str
    reference_prompt: str
    semantic_guidance_weight: float
    output_fps: float
    output_frames: int
    extraction_seed: int
    noise_schedule: str
    vae: str
    reference_subject: str
    semantic_mask_threshold: float
    semantic_app_threshold: float
    semantic_sigma: float
    preview_every: int
    low_memory: str
    motion_fps: float
    context_overlap: int
    context_blend: str
    interpolate: str
    shuffle_context: bool
    keyframe_strength: float
    sparse_control: str
    def __init__(self, prompt: _Optional[str] = ..., negative_prompt: _Optional[str] = ..., seed: _Optional[int] = ..., preset: _Optional[str] = ..., steps: _Optional[int] = ..., guidance_steps: _Optional[int] = ..., motion_guidance_weight: _Optional[float] = ..., cfg_scale: _Optional[float] = ..., frames: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., fps: _Optional[float] = ..., start: _Optional[str] = ..., end: _Optional[str] = ..., resize: _Optional[str] = ..., model: _Optional[str] = ..., motion_adapter: _Optional[str] = ..., extraction_mode: _Optional[str] = ..., inversion_steps: _Optional[int] = ..., subject: _Optional[str] = ..., reference_prompt: _Optional[str] = ..., semantic_guidance_weight: _Optional[float] = ..., output_fps: _Optional[float] = ..., output_frames: _Optional[int] = ..., extraction_seed: _Optional[int] = ..., noise_schedule: _Optional[str] = ..., vae: _Optional[str] = ..., reference_subject: _Optional[str] = ..., semantic_mask_threshold: _Optional[float] = ..., semantic_app_threshold: _Optional[float] = ..., semantic_sigma: _Optional[float] = ..., preview_every: _Optional[int] = ..., low_memory: _Optional[str] = ..., motion_fps: _Optional[float] = ..., context_overlap: _Optional[int] = ..., context_blend: _Optional[str] = ..., interpolate: _Optional[str] = ..., shuffle_context: _Optional[bool] = ..., keyframe_strength: _Optional[float] = ..., sparse_control: _Optional[str] = ...) -> None: ...

class Keyframe(_message.Message):
    __slots__ = ("frame", "name", "image")
    FRAME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    frame: int
    name: str
    image: bytes
    def __init__(self, frame: _Optional[int] = ..., name: _Optional[str] = ..., image: _Optional[bytes] = ...) -> None: ...

class JobSpec(_message.Message):
    __slots__ = ("settings", "idempotency_key", "priority", "reference_path", "reference_name", "motion_from_job", "reference_fingerprint", "keyframes")
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_PATH_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_NAME_FIELD_NUMBER: _ClassVar[int]
    MOTION_FROM_JOB_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    KEYFRAMES_FIELD_NUMBER: _ClassVar[int]
    settings: GenerationSettings
    idempotency_key: str
    priority: int
    reference_path: str
    reference_name: str
    motion_from_job: str
    reference_fingerprint: str
    keyframes: _containers.RepeatedCompositeFieldContainer[Keyframe]
    def __init__(self, settings: _Optional[_Union[GenerationSettings, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., priority: _Optional[int] = ..., reference_path: _Optional[str] = ..., reference_name: _Optional[str] = ..., motion_from_job: _Optional[str] = ..., reference_fingerprint: _Optional[str] = ..., keyframes: _Optional[_Iterable[_Union[Keyframe, _Mapping]]] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("spec", "chunk")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    spec: JobSpec
    chunk: bytes
    def __init__(self, spec: _Optional[_Union[JobSpec, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("id", "state", "spec", "error", "attempts", "queue_position", "phase", "step", "total_steps", "created_at", "started_at", "finished_at", "result_size", "report_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    RESULT_SIZE_FIELD_NUMBER: _ClassVar[int]
    REPORT_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    state: JobState
    spec: JobSpec
    error: str
    attempts: int
    queue_position: int
    phase: str
    step: int
    total_steps: int
    created_at: float
    started_at: float
    finished_at: float
    result_size: int
    report_json: str
    def __init__(self, id: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ..., error: _Optional[str] = ..., attempts: _Optional[int] = ..., queue_position: _Optional[int] = ..., phase: _Optional[str] = ..., step: _Optional[int] = ..., total_steps: _Optional[int] = ..., created_at: _Optional[float] = ..., started_at: _Optional[float] = ..., finished_at: _Optional[float] = ..., result_size: _Optional[int] = ..., report_json: _Optional[str] = ...) -> None: ...

class JobEvent(_message.Message):
    __slots__ = ("job_id", "sequence", "kind", "time", "queue_position", "step", "total_steps", "guided", "motion_energy", "message", "preview")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    GUIDED_FIELD_NUMBER: _ClassVar[int]
    MOTION_ENERGY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    sequence: int
    kind: EventKind
    time: float
    queue_position: int
    step: int
    total_steps: int
    guided: bool
    motion_energy: float
    message: str
    preview: bytes
    def __init__(self, job_id: _Optional[str] = ..., sequence: _Optional[int] = ..., kind: _Optional[_Union[EventKind, str]] = ..., time: _Optional[float] = ..., queue_position: _Optional[int] = ..., step: _Optional[int] = ..., total_steps: _Optional[int] = ..., guided: _Optional[bool] = ..., motion_energy: _Optional[float] = ..., message: _Optional[str] = ..., preview: _Optional[bytes] = ...) -> None: ...

class GetServerInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServerInfo(_message.Message):
    __slots__ = ("version", "api_version", "device", "device_name", "memory_total", "memory_free", "loaded_model", "available_models", "queue_length", "default_model", "max_upload_bytes", "problems", "workers", "executor", "cluster_nodes")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TOTAL_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FREE_FIELD_NUMBER: _ClassVar[int]
    LOADED_MODEL_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_MODELS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODEL_FIELD_NUMBER: _ClassVar[int]
    MAX_UPLOAD_BYTES_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_NODES_FIELD_NUMBER: _ClassVar[int]
    version: str
    api_version: str
    device: str
    device_name: str
    memory_total: int
    memory_free: int
    loaded_model: str
    available_models: _containers.RepeatedScalarFieldContainer[str]
    queue_length: int
    default_model: str
    max_upload_bytes: int
    problems: _containers.RepeatedScalarFieldContainer[str]
    workers: _containers.RepeatedCompositeFieldContainer[WorkerInfo]
    executor: str
    cluster_nodes: _containers.RepeatedCompositeFieldContainer[ClusterNode]
    def __init__(self, version: _Optional[str] = ..., api_version: _Optional[str] = ..., device: _Optional[str] = ..., device_name: _Optional[str] = ..., memory_total: _Optional[int] = ..., memory_free: _Optional[int] = ..., loaded_model: _Optional[str] = ..., available_models: _Optional[_Iterable[str]] = ..., queue_length: _Optional[int] = ..., default_model: _Optional[str] = ..., max_upload_bytes: _Optional[int] = ..., problems: _Optional[_Iterable[str]] = ..., workers: _Optional[_Iterable[_Union[WorkerInfo, _Mapping]]] = ..., executor: _Optional[str] = ..., cluster_nodes: _Optional[_Iterable[_Union[ClusterNode, _Mapping]]] = ...) -> None: ...

class ClusterNode(_message.Message):
    __slots__ = ("address", "hostname", "alive", "cpus", "gpus")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    ALIVE_FIELD_NUMBER: _ClassVar[int]
    CPUS_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    address: str
    hostname: str
    alive: bool
    cpus: float
    gpus: float
    def __init__(self, address: _Optional[str] = ..., hostname: _Optional[str] = ..., alive: _Optional[bool] = ..., cpus: _Optional[float] = ..., gpus: _Optional[float] = ...) -> None: ...

class WorkerInfo(_message.Message):
    __slots__ = ("device", "model", "loaded", "resident_bytes", "keep_alive_seconds", "state", "node")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    LOADED_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_BYTES_FIELD_NUMBER: _ClassVar[int]
    KEEP_ALIVE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    device: str
    model: str
    loaded: bool
    resident_bytes: int
    keep_alive_seconds: float
    state: str
    node: str
    def __init__(self, device: _Optional[str] = ..., model: _Optional[str] = ..., loaded: _Optional[bool] = ..., resident_bytes: _Optional[int] = ..., keep_alive_seconds: _Optional[float] = ..., state: _Optional[str] = ..., node: _Optional[str] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id", "after_sequence")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    after_sequence: int
    def __init__(self, job_id: _Optional[str] = ..., after_sequence: _Optional[int] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("states", "limit", "page_token")
    STATES_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[JobState]
    limit: int
    page_token: str
    def __init__(self, states: _Optional[_Iterable[_Union[JobState, str]]] = ..., limit: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class DeleteJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class DeleteJobResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class FetchResultRequest(_message.Message):
    __slots__ = ("job_id", "as_path")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    AS_PATH_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    as_path: bool
    def __init__(self, job_id: _Optional[str] = ..., as_path: _Optional[bool] = ...) -> None: ...

class ResultChunk(_message.Message):
    __slots__ = ("data", "path", "total_size")
    DATA_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    path: str
    total_size: int
    def __init__(self, data: _Optional[bytes] = ..., path: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...
