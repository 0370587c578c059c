"""The tree's layers point one way: the library (the engine and the method) knows nothing of
the command line, the workstation tools, the daemon, the editor plugins or gRPC.

    plugins/* -> plugins/client -> motionclone_options  <- motionclone (library) <- daemon
                                                           ^ cli/, workstation/ (may use the client)
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENGINE = REPO / "motionclone"
# Top-level packages and the motionclone subpackages above the library.
ABOVE_THE_LIBRARY = (
    "grpc",
    "motionclone_client",
    "motionclone_api",
    "motionclone_daemon",
    "motionclone_blender",
    "motionclone_resolve",
    "plugin_packaging",
    "motionclone.cli",
    "motionclone.workstation",
)
UPPER_SUBPACKAGES = ("cli", "workstation")
# What an editor plugin must never need: the engine, the daemon, torch.
BELOW_THE_CLIENT = ("motionclone", "motionclone_daemon", "torch")


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function (a lazy import is still a dependency)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def library_modules() -> list[Path]:
    return [
        path
        for path in sorted(ENGINE.rglob("*.py"))
        if path.relative_to(ENGINE).parts[0] not in UPPER_SUBPACKAGES and "__pycache__" not in path.parts
    ]


def reaches_above(name: str) -> bool:
    return any(name == upper or name.startswith(f"{upper}.") for upper in ABOVE_THE_LIBRARY)


def test_no_library_module_imports_a_higher_layer():
    offenders = {
        str(path.relative_to(REPO)): sorted(name for name in imported_modules(path) if reaches_above(name))
        for path in library_modules()
    }
    assert not {path: names for path, names in offenders.items() if names}


def test_the_daemon_uses_neither_the_command_line_nor_the_workstation_tools():
    daemon = REPO / "daemon" / "motionclone_daemon"
    wrong = ("motionclone.cli", "motionclone.workstation")
    offenders = {
        path.name: sorted(n for n in imported_modules(path) if n.startswith(wrong)) for path in daemon.rglob("*.py")
    }
    assert not {name: names for name, names in offenders.items() if names}


def test_the_client_and_plugins_never_import_the_engine_or_the_daemon():
    plugins = REPO / "plugins"
    offenders = {
        str(path.relative_to(REPO)): sorted(
            name
            for name in imported_modules(path)
            if name.split(".")[0] in ("motionclone", "motionclone_daemon", "torch")
        )
        for path in plugins.rglob("*.py")
    }
    assert not {path: names for path, names in offenders.items() if names}


def test_importing_the_whole_library_loads_no_grpc_and_no_client():
    """In a fresh interpreter, so nothing another test imported hides a dependency."""
    modules = [
        ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__") for path in library_modules()
    ]
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = json.loads(result.stdout)
    assert len(modules) > 30 and "motionclone.sampling.denoise" in loaded and "motionclone.engine" in loaded
    assert [name for name in loaded if reaches_above(name)] == []


def test_no_function_of_the_engine_runs_past_sixty_lines():
    """Small named parts: the sampler reads as numbered steps, not one long body (the old
    pipeline's generate ran 70 lines and resolve 126)."""
    long = []
    for path in sorted(ENGINE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}")
    assert long == []
