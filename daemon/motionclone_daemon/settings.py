"""Daemon settings, declared once: defaults, the YAML file in the user config dir, flag overrides.

A bad file or value stops start-up with a message naming the key, before anything listens.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs
from motionclone_client.locations import APP, CONFIG_FILE, DEFAULT_HOST, DEFAULT_PORT, config_dir

from motionclone.config import load_yaml_mapping
from motionclone.errors import ConfigError


@dataclass
class DaemonSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    data_dir: str = field(default_factory=lambda: platformdirs.user_data_dir(APP, appauthor=False))
    # "" = automatic: the SD1.5 + AnimateDiff default on CUDA, tiny-random without a GPU.
    default_model: str = ""
    model_paths: list[str] = field(default_factory=list)
    allowed_roots: list[str] = field(default_factory=list)
    max_upload_mb: float = 2048.0
    max_clip_seconds: float = 600.0
    retention_days: float = 30.0
    max_attempts: int = 3
    device: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    watch: list[str] = field(default_factory=list)
    watch_settle_seconds: float = 3.0
    watch_rescan_seconds: float = 10.0

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
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ConfigError(f"invalid daemon setting max_attempts={self.max_attempts!r}: must be >= 1")
        for name in ("max_upload_mb", "max_clip_seconds", "retention_days", "watch_settle_seconds"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"invalid daemon setting {name}={value!r}: must be a number >= 0")
        if not isinstance(self.watch_rescan_seconds, (int, float)) or self.watch_rescan_seconds <= 0:
            raise ConfigError(f"invalid daemon setting watch_rescan_seconds={self.watch_rescan_seconds!r}: must be > 0")
        for name in ("model_paths", "allowed_roots", "watch"):
            if not isinstance(getattr(self, name), list):
                raise ConfigError(f"invalid daemon setting {name}: must be a list of folders")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("invalid daemon settings: tls_cert and tls_key go together")
        if not self.is_loopback and not self.uses_tls:
            raise ConfigError(f"host={self.host!r} is not loopback: listening on a network needs tls_cert and tls_key")

    @property
    def uses_tls(self) -> bool:
        return bool(self.tls_cert and self.tls_key)

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)
