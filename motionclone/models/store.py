"""`motionclone models pull | list`: the models in the Hugging Face cache, fetched with the hub's own code.

Downloads go through `huggingface_hub.snapshot_download` (the cache the engine loads from,
resumable `.incomplete` files, retries with HTTP ranges, tqdm progress). Only the files the loader
reads are pulled: for a diffusers pipeline repo model_index.json and the unet, vae, text_encoder,
tokenizer and scheduler folders; for a single part (VAE, motion adapter) the files at the root;
in both, configs plus one weights file per folder (safetensors over .bin, no fp16/ema variants),
never the single-file checkpoints some repos also carry at the root.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path, PurePosixPath

from huggingface_hub import HfApi, constants, scan_cache_dir, snapshot_download, try_to_load_from_cache
from huggingface_hub.errors import CacheNotFound, OfflineModeIsEnabled, RepositoryNotFoundError

from motionclone.config.settings import DEFAULT_MODEL, DEFAULT_MOTION_ADAPTER, PAIRED_VAES
from motionclone.errors import ModelError

try:  # huggingface_hub 2.x ships its HTTP client as httpx2, 1.x uses httpx
    import httpx2 as httpx
except ImportError:
    import httpx

PIPELINE_PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
CONFIG_SUFFIXES = (".json", ".txt")
WEIGHT_SUFFIXES = (".safetensors", ".bin")
HUB_SECONDS = 10
GB = 1e9


def default_models() -> list[str]:
    """What the daemon and the CLI use when not told otherwise: the official base, its VAE, the adapter."""
    return [DEFAULT_MODEL, PAIRED_VAES[DEFAULT_MODEL], DEFAULT_MOTION_ADAPTER]


def wanted_files(files: list[str]) -> list[str]:
    """Of a repo's files, those the loader reads (see the module's docstring)."""
    pipeline = "model_index.json" in files
    by_folder: dict[str, list[str]] = defaultdict(list)
    for name in files:
        by_folder[str(PurePosixPath(name).parent)].append(name)
    chosen = ["model_index.json"] if pipeline else []
    folders = [folder for folder in by_folder if folder in PIPELINE_PARTS] if pipeline else ["."]
    for folder in folders:
        names = by_folder.get(folder, [])
        chosen += sorted(name for name in names if name.endswith(CONFIG_SUFFIXES))
        plain = [name for name in names if name.endswith(WEIGHT_SUFFIXES) and PurePosixPath(name).name.count(".") == 1]
        preferred = [name for name in plain if name.endswith(".safetensors")] or plain
        chosen += sorted(preferred)
    return chosen


def _unreachable(repo: str, error: Exception) -> ModelError:
    return ModelError(
        f"cannot reach the Hugging Face hub for {repo} ({error}). Offline: run `motionclone models pull` "
        f"on a connected machine and copy its cache ({constants.HF_HUB_CACHE}) to the same place here, or "
        "download the repo's folders (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/) and "
        "pass the folder with --model; a pull that was cut off resumes when run again"
    )


def pull(repo: str, say=print) -> Path:
    """Download `repo`'s loader files into the HF cache after saying how much space they take."""
    try:
        info = HfApi().model_info(repo, files_metadata=True, timeout=HUB_SECONDS)
    except RepositoryNotFoundError:
        raise ModelError(f"no model {repo} on the Hugging Face hub") from None
    except (httpx.TransportError, OfflineModeIsEnabled) as error:
        raise _unreachable(repo, error) from None
    sizes = {sibling.rfilename: sibling.size or 0 for sibling in info.siblings or []}
    chosen = wanted_files(list(sizes))
    total = sum(sizes[name] for name in chosen)
    cached = sum(sizes[name] for name in chosen if _cached(repo, name, info.sha))
    cache = Path(constants.HF_HUB_CACHE)
    free = shutil.disk_usage(next(p for p in (cache, *cache.parents) if p.exists())).free
    say(
        f"{repo}: {len(chosen)} files, {total / GB:.2f} GB ({(total - cached) / GB:.2f} GB to download); "
        f"{free / GB:.1f} GB free in {cache}"
    )
    if total - cached > free:
        raise ModelError(f"not enough disk space for {repo}: free {(total - cached) / GB:.2f} GB in {cache}")
    try:
        folder = snapshot_download(repo, revision=info.sha, allow_patterns=chosen, etag_timeout=HUB_SECONDS)
    except (httpx.TransportError, OfflineModeIsEnabled) as error:
        raise _unreachable(repo, error) from None
    return Path(folder)


def _cached(repo: str, name: str, revision: str | None) -> bool:
    return isinstance(try_to_load_from_cache(repo, name, revision=revision), str)


def list_models(say=print) -> None:
    """The cached model repos with their sizes, marking the ones the daemon uses by default."""
    try:
        repos = sorted(scan_cache_dir().repos, key=lambda repo: repo.repo_id)
    except CacheNotFound:
        repos = []
    defaults = default_models()
    say(f"{'model':50}  {'size':>9}  daemon")
    for repo in repos:
        if repo.repo_type == "model":
            used = "default (on a GPU)" if repo.repo_id in defaults else ""
            say(f"{repo.repo_id:50}  {repo.size_on_disk / GB:7.2f} GB  {used}")
    missing = [name for name in defaults if name not in {repo.repo_id for repo in repos}]
    for name in missing:
        say(f"{name:50}  {'missing':>9}  default (on a GPU): `motionclone models pull`")
    say("without a GPU the daemon uses the built-in tiny-random; `default_model` in daemon.yaml overrides both")
