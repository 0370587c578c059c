"""Daemon settings, declared once: defaults, the YAML file in the user config dir, flag overrides.

A bad file or value stops start-up with a message naming the key, before anything listens.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs
from motionclone_client.locations import APP, CONFIG_FILE, DEFAULT_HOST, DEFAULT_PORT, config_dir, is_loopback

from motionclone.config.checks import MIN_MEMORY_LIMIT_GIB
from motionclone.config.settings import load_yaml_mapping
from motionclone.errors import ConfigError

# Threads are cheap but not free: streams and uploads beyond this are a configuration mistake.
MAX_CONCURRENT = 4096
# Where jobs run: this machine's worker threads, or actors on a Ray cluster (ray_executor.py).
EXECUTORS = ("local", "ray")


def about(text: str) -> dict[str, str]:
    """Field metadata: the help text that `serve --help` and the docs show for a setting."""
    return {"help": text}


@dataclass
class DaemonSettings:
    host: str = field(default=DEFAULT_HOST, metadata=about("interface to listen on; anything but loopback needs TLS"))
    port: int = field(default=DEFAULT_PORT, metadata=about("port (0 picks a free one)"))
    web: bool = field(default=True, metadata=about("serve the web page (`motionclone open`) on loopback"))
    web_port: int = field(
        default=-1, metadata=about("the web page's port (-1: the gRPC port + 1, or a free one with port 0; 0: free)")
    )
    data_dir: str = field(
        default_factory=lambda: platformdirs.user_data_dir(APP, appauthor=False),
        metadata=about("jobs, clips, results and caches"),
    )
    default_model: str = field(
        default="", metadata=about("model for jobs naming none (default: SD1.5 on CUDA, else tiny-random)")
    )
    model_paths: list[str] = field(default_factory=list, metadata=about("folders of local models (repeatable)"))
    allowed_roots: list[str] = field(
        default_factory=list, metadata=about("folders whose clips may be sent by path (repeatable)")
    )
    local_paths: bool = field(
        default=True,
        metadata=about(
            "clients on this machine may send clips by path (the daemon then keeps only the range a job uses)"
        ),
    )
    max_upload_mb: float = field(default=2048.0, metadata=about("largest accepted clip (or range used), MB"))
    max_clip_seconds: float = field(default=600.0, metadata=about("longest accepted clip, seconds"))
    retention_days: float = field(
        default=30.0, metadata=about("finished jobs are deleted after this many days (0 = keep)")
    )
    template_cache_mb: float = field(
        default=10240.0,
        metadata=about("motion templates kept for reuse, MB; the least recently used go first (0 = no bound)"),
    )
    max_attempts: int = field(default=3, metadata=about("a job whose runs the daemon died in this often is failed"))
    device: str | None = field(
        default=None,
        metadata=about("cpu, cuda or cuda:N, or a comma list with one worker each (default: one worker per GPU)"),
    )
    tls_cert: str | None = field(default=None, metadata=about("TLS certificate (PEM)"))
    tls_key: str | None = field(default=None, metadata=about("TLS private key (PEM)"))
    watch: list[str] = field(default_factory=list, metadata=about("watch folder for batch jobs (repeatable)"))
    watch_settle_seconds: float = field(
        default=3.0, metadata=about("a dropped file must keep size and mtime this long")
    )
    watch_rescan_seconds: float = field(
        default=10.0, metadata=about("rescan watch folders this often (network shares)")
    )
    keep_alive: float = field(
        default=300.0,
        metadata=about("seconds a worker keeps its model loaded after its last job (0: unload after each; -1: never)"),
    )
    max_streams: int = field(default=128, metadata=about("progress streams open at once (more are refused)"))
    max_uploads: int = field(default=8, metadata=about("clip uploads in progress at once (more are refused)"))
    upload_stall_seconds: float = field(
        default=30.0, metadata=about("an upload that sends nothing for this long is cancelled")
    )
    evaluate: bool = field(
        default=False, metadata=about("add the motion-fidelity score to each job's report (for ranking batches)")
    )
    compile_unet: bool = field(
        default=False,
        metadata=about("compile the UNet (torch.compile): minutes per model load and video size, cached in data_dir"),
    )
    memory_limit_gib: float = field(
        default=0.0,
        metadata=about(
            "the most GPU memory (GiB) each worker's jobs may take, so an editor keeps the rest (0: no limit)"
        ),
    )
    executor: str = field(
        default="local", metadata=about("where jobs run: local (this machine's workers) or ray (a Ray cluster)")
    )
    ray_address: str = field(
        default="auto", metadata=about("the Ray cluster (executor: ray): auto (the one `ray start` made), HOST:PORT")
    )
    ray_cpu_actors: int = field(
        default=1, metadata=about("engine actors on a Ray cluster without GPUs (with GPUs: one actor per GPU)")
    )
    ray_cpus_per_actor: int = field(default=1, metadata=about("CPU cores each Ray engine actor reserves"))
    ray_shared_data_dir: bool = field(
        default=False,
        metadata=about("every Ray node sees data_dir at the same path: clips and results go by path, not object store"),
    )

    @classmethod
    def load(cls, path: Path | None = None, **overrides: Any) -> DaemonSettings:
        """Defaults, then the YAML file (if present), then non-None overrides; then validated."""
        path = path or config_dir() / CONFIG_FILE
        values = load_yaml_mapping(path) if path.is_file() else {}
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name: f for f in fields(cls)}
        for key in values:
            if key not in known:
                raise ConfigError(f"unknown daemon setting {key!r} in {path}")
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if not isinstance(self.port, int) or not 0 <= self.port < 65536:
            raise ConfigError(f"invalid daemon setting port={self.port!r}: must be 0-65535")
        if not isinstance(self.web_port, int) or not -1 <= self.web_port < 65536:
            raise ConfigError(f"invalid daemon setting web_port={self.web_port!r}: must be -1 or 0-65535")
        for name in ("max_attempts", "max_streams", "max_uploads", "ray_cpu_actors", "ray_cpus_per_actor"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENT:
                raise ConfigError(f"invalid daemon setting {name}={value!r}: must be 1-{MAX_CONCURRENT}")
        for name in (
            "max_upload_mb",
            "max_clip_seconds",
            "retention_days",
            "template_cache_mb",
            "watch_settle_seconds",
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise ConfigError(f"invalid daemon setting {name}={value!r}: must be a number >= 0")
        keep = self.keep_alive
        if not isinstance(keep, (int, float)) or not (keep == -1 or 0 <= keep < math.inf):
            raise ConfigError(f"invalid daemon setting keep_alive={keep!r}: must be seconds >= 0, or -1 (never)")
        limit = self.memory_limit_gib
        if not isinstance(limit, (int, float)) or not (limit == 0 or MIN_MEMORY_LIMIT_GIB <= limit < math.inf):
            raise ConfigError(
                f"invalid daemon setting memory_limit_gib={limit!r}: must be 0 (no limit) or >= {MIN_MEMORY_LIMIT_GIB}"
            )
        for name in ("watch_rescan_seconds", "upload_stall_seconds"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ConfigError(f"invalid daemon setting {name}={value!r}: must be a number > 0")
        for name in ("model_paths", "allowed_roots", "watch"):
            if not isinstance(getattr(self, name), list):
                raise ConfigError(f"invalid daemon setting {name}: must be a list of folders")
        for name in ("web", "evaluate", "ray_shared_data_dir"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"invalid daemon setting {name}={getattr(self, name)!r}: must be true or false")
        if self.executor not in EXECUTORS:
            raise ConfigError(
                f"invalid daemon setting executor={self.executor!r}: must be one of {', '.join(EXECUTORS)}"
            )
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("invalid daemon settings: tls_cert and tls_key go together")
        if not self.is_loopback and not self.uses_tls:
            raise ConfigError(f"host={self.host!r} is not loopback: listening on a network needs tls_cert and tls_key")

    @classmethod
    def add_flags(cls, parser: argparse.ArgumentParser) -> None:
        """One `--key` flag per setting (lists repeat), all defaulting to "not given"."""
        for setting in fields(cls):
            flag = "--" + setting.name.replace("_", "-")
            kind = str(setting.type)
            options: dict[str, Any] = {"dest": setting.name, "help": setting.metadata["help"]}
            if kind.startswith("list"):
                options["action"] = "append"
            elif kind == "bool":
                options["action"] = "store_true"
                options["default"] = None
            elif kind in ("int", "float"):
                options["type"] = int if kind == "int" else float
            parser.add_argument(flag, **options)

    @property
    def uses_tls(self) -> bool:
        return bool(self.tls_cert and self.tls_key)

    @property
    def is_loopback(self) -> bool:
        return is_loopback(self.host)

    @property
    def web_host(self) -> str:
        """The web page listens on loopback only (plain HTTP): the daemon's host when that is loopback."""
        return self.host if self.is_loopback else DEFAULT_HOST

    def web_port_for(self, port: int) -> int:
        """The web page's port once the gRPC one is bound: `web_port`, or the next one (free with port 0)."""
        if self.web_port >= 0:
            return self.web_port
        return port + 1 if self.port else 0

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)
