"""The vendored MotionClone_lib: built for this machine's Python, it loads grpc where no grpcio is installed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from daemon_helpers import running_daemon

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "plugins" / "resolve" / "build.py"
THIS_PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"
# -I: no environment, no user site; -S: no site-packages, so the project's own grpcio is out of reach.
BARE = [sys.executable, "-I", "-S"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if sys.platform != "linux" or not sys.maxsize > 2**32:
        pytest.skip("the test builds for linux-x64")
    output = tmp_path_factory.mktemp("resolve-script")
    command = [sys.executable, str(BUILD), "--output", str(output), "--python", THIS_PYTHON, "--platforms", "linux-x64"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return output


def test_bare_python_has_no_grpc():
    assert subprocess.run([*BARE, "-c", "import grpc"], capture_output=True).returncode != 0


def test_vendored_lib_talks_to_a_daemon_from_a_python_without_grpcio(built, tmp_path, shared_engine):
    lib = built / "MotionClone_lib"
    assert json.loads((lib / "BUILD.json").read_text())["pythons"] == [THIS_PYTHON]
    with running_daemon(tmp_path, engine=shared_engine) as daemon:
        code = (
            f"import sys; sys.path.insert(0, {str(lib)!r}); import grpc; from motionclone_client import DaemonClient; "
            "import motionclone_resolve.app; "
            f"print(grpc.__file__, DaemonClient('127.0.0.1:{daemon.port}', {daemon.token!r}).info().version)"
        )
        result = subprocess.run([*BARE, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(str(lib / "grpc"))


def test_script_runs_from_its_folder_and_explains_a_missing_grpcio(built, tmp_path):
    help_text = subprocess.run([*BARE, str(built / "MotionClone.py"), "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0 and "--all-marked" in help_text.stdout and "--negative-prompt" in help_text.stdout
    alone = tmp_path / "MotionClone.py"
    alone.write_bytes((built / "MotionClone.py").read_bytes())
    result = subprocess.run([*BARE, str(alone), "--prompt", "x"], capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "grpcio cannot be loaded" in result.stderr and sys.version.split()[0] in result.stderr
    assert "MotionClone_lib is missing" in result.stderr
