"""The install manifest: every file, folder and service the installer created, so uninstall removes
exactly those. Kept as JSON in the user data dir; a re-install extends it (what an earlier install
created stays ours, even when this one leaves it unchanged).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

MANIFEST_NAME = "install-manifest.json"
FORMAT = 1


@dataclass
class Manifest:
    source: str = ""  # the source checkout the plugins were built from
    files: list[str] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)
    services: list[dict[str, str]] = field(default_factory=list)  # {"kind": systemd|launchd|schtasks, "name": ...}
    blender: dict[str, dict[str, str]] = field(default_factory=dict)  # user folder -> digest, route, command
    resolve: dict[str, str] = field(default_factory=dict)  # edit folder, python
    format: int = FORMAT

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """The manifest at `path`, or an empty one when nothing was installed yet."""
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return cls()

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n", encoding="utf-8")

    def add_file(self, path: Path) -> None:
        if str(path) not in self.files:
            self.files.append(str(path))

    def add_dir(self, path: Path) -> None:
        if str(path) not in self.dirs:
            self.dirs.append(str(path))

    def add_service(self, kind: str, name: str) -> None:
        entry = {"kind": kind, "name": name}
        if entry not in self.services:
            self.services.append(entry)

    def files_under(self, folder: Path) -> set[Path]:
        return {Path(file) for file in self.files if Path(file).is_relative_to(folder)}
