"""MotionClone for DaVinci Resolve: send timeline clips with a prompt, get generated clips back above them.

Menu:     copy this file and MotionClone_lib/ into Fusion/Scripts/Edit, then Workspace > Scripts > MotionClone.
Terminal: python MotionClone.py --prompt TEXT [generation flags as in `motionclone submit`]
          [--all-marked] [--address HOST:PORT]   (Resolve Studio, external scripting set to Local)

Resolve runs scripts with the user's own Python (3.10 or newer for this script), which usually has
no grpcio: MotionClone_lib/ beside this file carries it, built by `plugins/resolve/build.py` for
the Pythons and platforms named there. This file only finds that folder and Resolve's objects;
the work is in the `motionclone_resolve` package. Written to run (and explain itself) even on the
oldest Python Resolve accepts.
"""

import json
import os
import sys

LIB_FOLDER = "MotionClone_lib"
BUILD_INFO = "BUILD.json"
PYTHON_FLOOR = (3, 10)
EDIT_SCRIPT_FOLDERS = (
    "~/.local/share/DaVinciResolve/Fusion/Scripts/Edit",
    "/opt/resolve/Fusion/Scripts/Edit",
    "/home/resolve/Fusion/Scripts/Edit",
    "~/Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Edit",
    "/Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Edit",
    "%APPDATA%/Blackmagic Design/DaVinci Resolve/Support/Fusion/Scripts/Edit",
    "%PROGRAMDATA%/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Edit",
)


def script_folder():
    """This file's folder; Resolve may run a menu script without `__file__`, then its install folders are tried."""
    try:
        return os.path.dirname(os.path.abspath(__file__))
    except NameError:
        pass
    for folder in EDIT_SCRIPT_FOLDERS:
        candidate = os.path.expandvars(os.path.expanduser(folder))
        if os.path.isdir(os.path.join(candidate, LIB_FOLDER)):
            return candidate
    return os.getcwd()


def use_vendored_lib(folder):
    """Put MotionClone_lib (and, in a source checkout, this folder) first on sys.path."""
    for path in (folder, os.path.join(folder, LIB_FOLDER)):
        if os.path.isdir(path) and path not in sys.path:
            sys.path.insert(0, path)


def python_problem(folder):
    """Why this Python cannot run the script and how to fix it, or None when it can."""
    here = f"Python {sys.version.split()[0]} ({sys.executable or 'embedded in Resolve'})"
    if sys.version_info < PYTHON_FLOOR:
        floor = ".".join(map(str, PYTHON_FLOOR))
        return (
            f"MotionClone needs Python {floor} or newer; DaVinci Resolve is using {here}. Install a newer 64-bit one."
        )
    try:
        import grpc  # noqa: F401 - only checking that it loads
    except ImportError as error:
        return (
            f"grpcio cannot be loaded ({error}) in the Python DaVinci Resolve is using: {here}. {_lib_advice(folder)}"
        )
    return None


def _lib_advice(folder):
    target = f"{sys.version_info[0]}.{sys.version_info[1]}"
    info_path = os.path.join(folder, LIB_FOLDER, BUILD_INFO)
    try:
        with open(info_path, encoding="utf-8") as handle:
            built = json.load(handle)
    except (OSError, ValueError):
        return f"{LIB_FOLDER} is missing from {folder}: copy it there with this script (README, 'DaVinci Resolve')."
    pythons, platforms = ", ".join(built.get("pythons", [])), ", ".join(built.get("platforms", []))
    return (
        f"{LIB_FOLDER} holds grpcio for Python {pythons} on {platforms}: rebuild it for this Python with "
        f"`python plugins/resolve/build.py --output DIR --python {target}` and copy DIR's contents here again, "
        "or make Resolve use one of those Pythons."
    )


def run(resolve_object, bmd_object, argv):
    folder = script_folder()
    use_vendored_lib(folder)
    problem = python_problem(folder)
    if problem:
        print("MotionClone: error: " + problem, file=sys.stderr)
        return 1
    from motionclone_resolve.app import main

    menu = resolve_object is not None or bmd_object is not None
    return main(argv, resolve=resolve_object, bmd=bmd_object, menu=menu)


if __name__ == "__main__":
    status = run(globals().get("resolve"), globals().get("bmd"), sys.argv[1:])
    if globals().get("bmd") is None:
        sys.exit(status)
