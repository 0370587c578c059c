"""`motionclone doctor`: one row per check (ok / warn / fail) with the fix for each that is not ok.

Exit status 0 when generation can run (no check failed), 1 otherwise. Every probe has a short
deadline (a dead daemon refuses the connection at once; subprocesses are bounded), so it takes
seconds.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import socket
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from motionclone_client import ClientError, DaemonClient
from motionclone_client.locations import TOKEN_FILE, config_dir, default_address, read_endpoint

from motionclone.config.model_defaults import ModelDefaults
from motionclone.config.plan import ResolvedConfig
from motionclone.config.plan import resolve as resolve_config
from motionclone.config.settings import MotionCloneConfig
from motionclone.workstation.install import blender, resolve
from motionclone.workstation.install.commands import data_dir, manifest_path
from motionclone.workstation.install.layout import Layout
from motionclone.workstation.install.manifest import Manifest

OK, WARN, FAIL = "ok", "warn", "fail"
PROBE_SECONDS = 5
CONNECT_SECONDS = 2
GIB = 2**30


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


def check_python() -> Check:
    """Informational: this code cannot even start below Python 3.10 (its floor in pyproject.toml)."""
    return Check("python", OK, f"Python {platform.python_version()} on {platform.system()} {platform.machine()}")


def _nvidia_gpus() -> list[dict[str, str]]:
    query = "--query-gpu=name,driver_version,memory.total,memory.free"
    try:
        result = subprocess.run(
            ["nvidia-smi", query, "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=PROBE_SECONDS,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    rows = [line.split(", ") for line in result.stdout.strip().splitlines() if result.returncode == 0]
    return [dict(zip(("name", "driver", "total", "free"), row, strict=False)) for row in rows if len(row) == 4]


def check_torch_and_gpu() -> list[Check]:
    import torch

    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU build"
    checks = [Check("torch", OK, f"torch {torch.__version__} ({build})")]
    gpus = _nvidia_gpus()
    if not gpus:
        checks.append(
            Check(
                "gpu",
                WARN,
                "no NVIDIA GPU: generation runs on the CPU (the daemon uses tiny-random; real models are very slow)",
                "use a machine with an NVIDIA GPU of 8 GB or more and its driver (nvidia-smi must list it)",
            )
        )
        return checks
    if not torch.cuda.is_available():
        checks.append(
            Check(
                "gpu",
                WARN,
                f"{gpus[0]['name']} (driver {gpus[0]['driver']}) but torch cannot use it ({build})",
                "re-run installer/install.sh (install.ps1): it installs the CUDA torch for this driver",
            )
        )
        return checks
    checks.extend(gpu_check(index, gpu) for index, gpu in enumerate(gpus))
    return checks


def gpu_check(index: int, gpu: dict[str, str]) -> Check:
    """One GPU (nvidia-smi's row, MiB) against the default model's 16x512x512 fp16 run, planned as
    a job is (`memory.fitting_config`, `low_memory: auto`): the least recomputation that fits, so
    a 12 GB card is told it runs, and how; then keyframe runs and Wan 2.1 1.3B's native run
    (bfloat16, its text encoder on the CPU) in what is free."""
    import torch

    from motionclone.backbones.wan.loading import WAN_DEFAULTS, WAN_MODEL
    from motionclone.config.memory_plan import fitting_config, needed_bytes
    from motionclone.errors import ResourceError

    total, free = (float(gpu[key]) * 2**20 for key in ("total", "free"))
    detail = f"cuda:{index} {gpu['name']}, driver {gpu['driver']}, {free / GIB:.1f} of {total / GIB:.1f} GiB free"
    defaults, device = ModelDefaults(), torch.device("cuda", index)
    run = resolve_config(MotionCloneConfig(prompt="doctor"), defaults, seed=0)

    keyframe_run = dataclasses.replace(run, keyframes=(("keyframe.png", 0),))
    wan_run = resolve_config(MotionCloneConfig(model=WAN_MODEL, prompt="doctor"), WAN_DEFAULTS, seed=0)

    def plan(
        available: float, job: ResolvedConfig = run, model: ModelDefaults = defaults, dtype: torch.dtype = torch.float16
    ) -> tuple[str, float]:
        """The level `job` takes with `available` bytes, and the GiB it needs then."""
        fitted = fitting_config(model, job, device, dtype, int(available), weights_loaded=False)
        needed = needed_bytes(model, job, dtype, False, fitted.low_memory, fitted.decode_frames)
        return fitted.low_memory, needed / GIB

    try:
        _level, need_on_card = plan(total)
    except ResourceError as error:
        return Check("gpu", WARN, detail, str(error))
    try:
        level, need = plan(free)
    except ResourceError:
        return Check("gpu", WARN, detail, f"free {need_on_card:.1f} GiB (close other GPU programs) for 16x512x512")
    try:
        keyframe_level, keyframe_need = plan(free, keyframe_run)
        level_used = "" if keyframe_level == "off" else f" (low_memory {keyframe_level})"
        keyframes = f"; with a keyframe (SparseCtrl) about {keyframe_need:.1f} GiB{level_used}"
    except ResourceError:
        keyframes = "; keyframe runs (SparseCtrl) do not fit in what is free"
    try:
        wan = f"; Wan 2.1 1.3B at 81x480x832 about {plan(free, wan_run, WAN_DEFAULTS, torch.bfloat16)[1]:.1f} GiB"
    except ResourceError:
        wan = "; Wan 2.1 1.3B at 81x480x832 does not fit in what is free (try fewer frames or a smaller size)"
    how = "" if level == "off" else f" with low_memory {level}, which recomputes activations to fit"
    return Check("gpu", OK, f"{detail} (16x512x512 needs about {need:.1f} GiB{how}{keyframes}{wan})")


def check_ffmpeg() -> Check:
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "probe.mp4"
        encode = ["-f", "lavfi", "-i", "testsrc=size=64x64:rate=8", "-frames:v", "8", "-c:v", "libx264"]
        try:
            result = subprocess.run(
                [ffmpeg, "-v", "error", *encode, "-pix_fmt", "yuv420p", str(output)],
                capture_output=True,
                text=True,
                timeout=PROBE_SECONDS * 4,
            )
        except subprocess.TimeoutExpired:
            result = None
        if result is None or result.returncode != 0 or not output.is_file():
            reason = result.stderr.strip()[-200:] if result else "timed out"
            return Check(
                "ffmpeg",
                FAIL,
                f"{ffmpeg} cannot encode H.264: {reason}",
                "pip install --force-reinstall imageio-ffmpeg",
            )
    return Check("ffmpeg", OK, f"{ffmpeg} encodes H.264")


def check_models() -> Check:
    from huggingface_hub import try_to_load_from_cache

    from motionclone.models.store import default_models

    missing = [
        repo
        for repo in default_models()
        if not any(isinstance(try_to_load_from_cache(repo, name), str) for name in ("model_index.json", "config.json"))
    ]
    if missing:
        return Check("models", WARN, f"not downloaded: {', '.join(missing)}", "motionclone models pull")
    return Check("models", OK, f"present: {', '.join(default_models())}")


def check_service(layout: Layout) -> Check:
    if layout.service_file.is_file():
        return Check("service", OK, f"installed: {layout.service_file}")
    return Check("service", WARN, "the daemon is not installed as a service", "motionclone install")


def check_token() -> Check:
    path = config_dir() / TOKEN_FILE
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return Check("token", WARN, f"no token yet at {path}", "start the daemon once: it creates the token")
    except (OSError, UnicodeError) as error:
        return Check(
            "token",
            FAIL,
            f"cannot read {path}: {getattr(error, 'strerror', None) or error}",
            f"remove {path} and restart the daemon (it writes a new one, mode 0600, owned by you)",
        )
    return Check(
        "token",
        OK if token else FAIL,
        f"{path} readable" if token else f"{path} is empty",
        "" if token else f"remove {path} and restart the daemon",
    )


def check_daemon() -> Check:
    address = default_address()
    host, _, port = address.rpartition(":")
    start = "start it: systemctl --user start motionclone-daemon (or `motionclone-daemon serve`)"
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_SECONDS).close()
    except OSError:
        return Check("daemon", FAIL, f"nothing listens at {address}", start)
    try:
        with DaemonClient() as client:
            info = client.info()
    except ClientError as error:
        return Check("daemon", FAIL, f"{address}: {error}", "check the token file and the daemon's log")
    ours = _package_version()
    detail = f"{address}: daemon {info.version} on {info.device_name}, pid {(read_endpoint() or {}).get('pid', '?')}"
    if info.version != ours:
        return Check("daemon", WARN, f"{detail}; this client is {ours}", "restart the daemon after upgrading")
    return Check("daemon", OK, detail)


def _package_version() -> str:
    try:
        return version("motionclone-studio")
    except PackageNotFoundError:
        return "0+unknown"


def check_blender(layout: Layout) -> list[Check]:
    folders = layout.blender_user_folders()
    if not folders:
        return [
            Check(
                "blender",
                WARN,
                "no Blender 4.2+ user folder found",
                "install Blender 4.2+, run it once, then motionclone install",
            )
        ]
    checks = []
    for version_found, folder in folders:
        name = f"blender {version_found[0]}.{version_found[1]}"
        if not blender.is_installed(folder):
            checks.append(Check(name, WARN, f"extension not installed in {folder}", "motionclone install"))
            continue
        enabled = blender.is_enabled(folder)
        if enabled:
            checks.append(Check(name, OK, f"extension installed and enabled in {folder}"))
        else:
            state = "not enabled" if enabled is False else "installed (enabled state unknown: compressed preferences)"
            checks.append(
                Check(
                    name, WARN, f"extension {state} in {folder}", "Blender: Edit > Preferences > Add-ons > MotionClone"
                )
            )
    return checks


def check_resolve(layout: Layout, manifest: Manifest) -> Check:
    if not resolve.resolve_present(layout):
        return Check(
            "resolve", WARN, "DaVinci Resolve not found", "install Resolve, run it once, then motionclone install"
        )
    edit = layout.resolve_edit
    if not ((edit / resolve.SCRIPT).is_file() and (edit / resolve.LIB).is_dir()):
        return Check("resolve", WARN, f"script not installed in {edit}", "motionclone install")
    python = Path(manifest.resolve["python"]) if manifest.resolve.get("python") else resolve.find_python(None)
    problem = resolve.import_check(python, edit) if python else "no Python on PATH"
    if problem:
        return Check(
            "resolve",
            FAIL,
            f"{edit}: Resolve's Python {python} cannot load MotionClone_lib: {problem}",
            "motionclone install --resolve-python PATH (the Python Resolve uses)",
        )
    return Check("resolve", OK, f"script and MotionClone_lib in {edit} load with {python}")


def run_checks() -> list[Check]:
    layout = Layout.here(data_dir())
    manifest = Manifest.load(manifest_path())
    return [
        check_python(),
        *check_torch_and_gpu(),
        check_ffmpeg(),
        check_models(),
        check_service(layout),
        check_token(),
        check_daemon(),
        *check_blender(layout),
        check_resolve(layout, manifest),
    ]


def run_doctor(as_json: bool) -> int:
    checks = run_checks()
    if as_json:
        print(json.dumps([asdict(check) for check in checks], indent=2))
    else:
        width = max(len(check.name) for check in checks)
        for check in checks:
            print(f"{check.name:{width}}  {check.status:4}  {check.detail}")
            if check.fix:
                print(f"{'':{width}}        fix: {check.fix}")
    return 1 if any(check.status == FAIL for check in checks) else 0
