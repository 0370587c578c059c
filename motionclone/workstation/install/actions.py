"""Changes to the user's disk and system, each said as it is done and recorded in the manifest.

With dry_run, every change is only said: the same code path walks the whole install, so the dry
run lists exactly what a real run would do. A file whose content is already right is left as it
is (not even its mtime changes), which makes a second install a no-op.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

from motionclone.errors import MotionCloneError
from motionclone.workstation.install.manifest import Manifest

COMMAND_SECONDS = 300


class Changes:
    def __init__(self, manifest: Manifest, dry_run: bool, say: Callable[[str], None] = print) -> None:
        self.manifest = manifest
        self.dry_run = dry_run
        self._say = say

    def say(self, text: str) -> None:
        self._say(f"[dry run] {text}" if self.dry_run else text)

    def make_dirs(self, folder: Path) -> None:
        """Create `folder` and its missing parents, recording each one created."""
        missing = [parent for parent in (folder, *folder.parents) if not parent.exists()]
        for created in reversed(missing):
            self.say(f"create folder {created}")
            if not self.dry_run:
                created.mkdir()
            self.manifest.add_dir(created)

    def write(self, path: Path, data: bytes) -> bool:
        """Write `data` to `path` unless it already holds exactly that; True when it was (or would be) written."""
        existed = path.exists()
        if existed and path.is_file() and path.read_bytes() == data:
            return False
        self.make_dirs(path.parent)
        self.say(f"{'update' if existed else 'write'} {path}")
        if not self.dry_run:
            path.write_bytes(data)
        if not existed:
            self.manifest.add_file(path)
        return True

    def symlink(self, link: Path, target: Path) -> None:
        """A symbolic link at `link` to `target`, unless it is already that link."""
        if link.is_symlink() and Path(os.readlink(link)) == target:
            return
        self.make_dirs(link.parent)
        self.say(f"link {link} -> {target}")
        if not self.dry_run:
            link.symlink_to(target)
        self.manifest.add_file(link)

    def copy_tree(self, source: Path, target: Path) -> set[Path]:
        """Mirror the files of `source` under `target`; return the target paths."""
        written = set()
        for file in sorted(source.rglob("*")):
            if file.is_file():
                destination = target / file.relative_to(source)
                self.write(destination, file.read_bytes())
                written.add(destination)
        return written

    def remove_files(self, files: Iterable[Path]) -> None:
        """Remove files we created (an upgrade dropped them, or uninstall), then our folders left empty."""
        for file in sorted(files, reverse=True):
            if file.is_file() or file.is_symlink():
                self.say(f"remove {file}")
                if not self.dry_run:
                    file.unlink()
            if str(file) in self.manifest.files and not self.dry_run:
                self.manifest.files.remove(str(file))

    def remove_created_dirs(self) -> None:
        """Remove the folders we created, deepest first; one that holds files not ours is kept, and said."""
        for folder in sorted(map(Path, self.manifest.dirs), key=lambda path: len(path.parts), reverse=True):
            if folder.is_dir() and any(folder.iterdir()):
                self.say(f"keep folder {folder}: it holds files MotionClone did not create")
            elif folder.is_dir():
                self.say(f"remove folder {folder}")
                if not self.dry_run:
                    folder.rmdir()
            if not self.dry_run:
                self.manifest.dirs.remove(str(folder))

    def run(self, command: list[str], env: dict[str, str] | None = None, check: bool = True) -> bool:
        """Run a command (said first); False (or, with check, an error) when it fails."""
        self.say(f"run {shlex.join(command)}")
        if self.dry_run:
            return True
        result = subprocess.run(
            command, capture_output=True, text=True, env=env and {**os.environ, **env}, timeout=COMMAND_SECONDS
        )
        if result.returncode != 0 and check:
            output = (result.stderr or result.stdout).strip().splitlines()
            raise InstallError(f"{shlex.join(command[:3])} failed: {output[-1] if output else result.returncode}")
        return result.returncode == 0


class InstallError(MotionCloneError):
    """A step of install or uninstall failed; the message says which and why."""


def tree_state(*roots: Path) -> dict[Path, tuple[int, int]]:
    """Every path in and under `roots` (and their ancestors) with (size, mtime_ns): to see what a
    program we run created there."""
    state = {}
    for root in roots:
        for path in (*root.parents, root):
            if path.exists():
                stat = path.lstat()
                state[path] = (stat.st_size, stat.st_mtime_ns)
        for folder, dirs, files in os.walk(root):
            for name in (*dirs, *files):
                path = Path(folder) / name
                stat = path.lstat()
                state[path] = (stat.st_size, stat.st_mtime_ns)
    return state
