"""Getting hold of Resolve: the menu script's global, `bmd.scriptapp`, or the external scripting module.

From a terminal, Resolve's README has the user set RESOLVE_SCRIPT_API and put its `Modules` folder
on PYTHONPATH; when only RESOLVE_SCRIPT_API (or nothing) is set, the documented install locations
are tried too, so the common case needs no setup.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

from motionclone_resolve.errors import ScriptError

SCRIPT_API_ENV = "RESOLVE_SCRIPT_API"
DEFAULT_SCRIPT_API = {
    "darwin": "/Library/Application Support/Blackmagic Design/DaVinci Resolve/Developer/Scripting",
    "win32": os.path.expandvars(r"%PROGRAMDATA%\Blackmagic Design\DaVinci Resolve\Support\Developer\Scripting"),
    "linux": "/opt/resolve/Developer/Scripting",
}


def menu_resolve(resolve: Any, bmd: Any) -> Any:
    """The `resolve` a menu script is given, else `bmd.scriptapp("Resolve")`."""
    found = resolve or (bmd.scriptapp("Resolve") if bmd is not None else None)
    if not found:
        raise ScriptError("this script was started without Resolve's `resolve` object; run it from Workspace > Scripts")
    return found


def external_resolve() -> Any:
    """Resolve through `DaVinciResolveScript.scriptapp("Resolve")` (Studio's external scripting)."""
    module = _scripting_module()
    found = module.scriptapp("Resolve")
    if not found:
        raise ScriptError(
            "DaVinci Resolve is not running, or it refuses external scripts: start it and set "
            "Preferences > System > General > External scripting using: Local (Studio only)"
        )
    return found


def _scripting_module() -> Any:
    try:
        return importlib.import_module("DaVinciResolveScript")
    except ImportError:
        pass
    api = os.environ.get(SCRIPT_API_ENV) or DEFAULT_SCRIPT_API.get(sys.platform, DEFAULT_SCRIPT_API["linux"])
    modules = Path(api) / "Modules"
    if modules.is_dir():
        sys.path.append(str(modules))
        try:
            return importlib.import_module("DaVinciResolveScript")
        except ImportError:
            pass
    raise ScriptError(
        f"cannot import DaVinciResolveScript: set {SCRIPT_API_ENV} to Resolve's Developer/Scripting folder and "
        f"add its Modules folder to PYTHONPATH, as Resolve's README.txt says (looked in {modules})"
    )
