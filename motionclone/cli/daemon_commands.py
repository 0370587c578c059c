"""`motionclone submit | jobs | cancel | status`: the command line as a client of the daemon.

These commands import no torch: they only need the client library (grpcio + protobuf).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from motionclone_api.v1 import jobs_pb2
from motionclone_client import DaemonClient
from motionclone_client.client import JobInfo, ProgressEvent
from motionclone_client.previews import save_preview
from motionclone_options import add_generation_arguments

from motionclone.cli.progress import ProgressBar
from motionclone.errors import ConfigError

COMMANDS = ("submit", "jobs", "cancel", "status")
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def add_client_commands(commands: argparse._SubParsersAction) -> None:
    submit = commands.add_parser("submit", help="send a clip to the daemon")
    submit.add_argument("reference", type=Path, help="reference clip")
    submit.add_argument("--wait", action="store_true", help="follow progress until the job ends")
    submit.add_argument("-o", "--output", type=Path, help="download the result here (implies --wait)")
    submit.add_argument("--report", type=Path, help="write the job's JSON report here (implies --wait)")
    submit.add_argument(
        "--by-path",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="send the clip's path (--no-by-path: its bytes; default: the path to a daemon on this "
        "machine, which keeps only the range used, else the bytes)",
    )
    submit.add_argument("--priority", type=int, default=0, help="higher runs first")
    submit.add_argument("--preview-dir", type=Path, help="write live previews here as they arrive (implies --wait)")
    add_generation_arguments(submit)
    jobs = commands.add_parser("jobs", help="list the daemon's jobs")
    jobs.add_argument("--limit", type=int, default=50)
    cancel = commands.add_parser("cancel", help="cancel a queued or running job")
    cancel.add_argument("job_id")
    commands.add_parser("status", help="the daemon's version, device, models and queue")
    for name in COMMANDS:
        command = commands.choices[name]
        command.add_argument("--address", help="HOST:PORT (default: the local daemon)")
        command.add_argument(
            "--token",
            default=os.environ.get("MOTIONCLONE_TOKEN"),
            help="the daemon's token, required for another machine's daemon (default: $MOTIONCLONE_TOKEN, "
            "else the local token file for a daemon on this machine)",
        )
        command.add_argument("--ca-cert", type=Path, help="PEM certificate to trust, for a self-signed daemon")


def run_client_command(args: argparse.Namespace, settings: dict | None) -> None:
    _check_ranges(args)
    with _connect(args) as client:
        if args.command == "submit":
            _submit(client, args, settings or {})
        elif args.command == "jobs":
            _print_jobs(client.list(limit=args.limit))
        elif args.command == "cancel":
            job = client.cancel(args.job_id)
            print(f"{job.id} {'cancelling' if job.state == 'running' else job.state}")
        else:
            _print_status(client)


def _check_ranges(args: argparse.Namespace) -> None:
    """The API carries these numbers as int32: refuse others here in one line, not in a protobuf traceback."""
    if args.command == "submit":
        _within("--priority", args.priority, INT32_MIN, INT32_MAX)
    elif args.command == "jobs":
        _within("--limit", args.limit, 1, INT32_MAX)


def _within(flag: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{flag} must be from {low} to {high}, not {value}")


def _connect(args: argparse.Namespace) -> DaemonClient:
    """A client for --address with --token and --ca-cert; the certificate is read here so a bad path is one line."""
    root_certificates = None
    if args.ca_cert:
        try:
            root_certificates = args.ca_cert.read_bytes()
        except OSError as error:
            raise ConfigError(f"cannot read --ca-cert {args.ca_cert}: {error.strerror}") from None
    return DaemonClient(address=args.address, token=args.token, root_certificates=root_certificates)


def _submit(client: DaemonClient, args: argparse.Namespace, settings: dict) -> None:
    job = client.submit(args.reference, settings, by_path=args.by_path, priority=args.priority)
    print(job.id, flush=True)
    if not (args.wait or args.output or args.report or args.preview_dir):
        return
    bar = ProgressBar()

    def show(event: ProgressEvent) -> None:
        if event.preview is not None and args.preview_dir:
            save_preview(args.preview_dir, event.step, event.preview)
        if event.kind == "queued" and event.queue_position > 1:
            print(f"queued at position {event.queue_position}", file=sys.stderr)
        elif event.kind == "step":
            bar.advance("denoise", event.total_steps, event.motion_energy, event.guided)
        elif event.kind in ("extracting", "encoding", "requeued"):
            bar.close()
            print(event.kind + (f": {event.message}" if event.message else ""), file=sys.stderr)

    try:
        finished = client.wait(job.id, on_event=show)
    finally:
        bar.close()
    if args.output:
        print(client.download(finished.id, args.output))
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(finished.report, indent=2), encoding="utf-8")


def _print_jobs(jobs: list[JobInfo]) -> None:
    print(f"{'id':16}  {'state':9}  {'progress':9}  {'created':16}  clip / prompt")
    for job in jobs:
        progress = (
            f"{job.step}/{job.total_steps}"
            if job.total_steps
            else (f"#{job.queue_position}" if job.queue_position else "")
        )
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.created_at))
        detail = f"{job.reference_name} / {job.settings.get('prompt', '')}"
        if job.error:
            detail += f"  ({job.error})"
        print(f"{job.id:16}  {job.state:9}  {progress:9}  {created:16}  {detail}")


def _print_status(client: DaemonClient) -> None:
    info = client.info()
    memory = (
        f", {info.memory_free / 2**30:.1f} of {info.memory_total / 2**30:.1f} GiB free" if info.memory_total else ""
    )
    print(f"daemon {info.version} ({info.api_version}) at {client.address}")
    print(f"device: {info.device_name}{memory}")
    print(f"default model: {info.default_model}; loaded: {info.loaded_model or 'none'}")
    print(f"models: {', '.join(info.available_models)}")
    if info.executor == "ray":
        _print_cluster(info)
    for worker in info.workers:
        print(f"worker {worker.device}: {_worker_state(worker, info.executor == 'ray')}")
    print(f"queue: {info.queue_length} job(s)")
    for problem in info.problems:
        print(f"problem: {problem}")


def _print_cluster(info: jobs_pb2.ServerInfo) -> None:
    """The Ray cluster behind a daemon with `executor: ray`: its nodes and what they offer."""
    alive = [node for node in info.cluster_nodes if node.alive]
    gpus = sum(node.gpus for node in alive)
    print(f"executor: ray, {len(alive)} node(s) up, {gpus:g} GPU(s)")
    for node in info.cluster_nodes:
        state = "up" if node.alive else "down"
        print(f"node {node.hostname or node.address} ({node.address}): {state}, {node.cpus:g} CPUs, {node.gpus:g} GPUs")


def _worker_state(worker: jobs_pb2.WorkerInfo, on_cluster: bool) -> str:
    """A worker's model, loaded (with its resident memory) or unloaded, and when it unloads; a Ray
    actor's worker also says where it runs and whether it is running, idle or starting."""
    keep = worker.keep_alive_seconds
    unloads = "never unloads" if keep < 0 else f"unloads after {keep:g} s idle"
    where = f"{worker.state} on {worker.node or 'no node yet'}, " if on_cluster else ""
    if not worker.loaded:
        return f"{where}model unloaded ({unloads})"
    return f"{where}{worker.model} loaded, {worker.resident_bytes / 2**20:.0f} MiB resident ({unloads})"
