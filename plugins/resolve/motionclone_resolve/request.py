"""What a run is asked to do, from the terminal's flags or the dialog's fields.

The generation flags are `motionclone submit`'s, from the shared declaration in
`motionclone_options`, so the CLI, the Blender add-on and this script agree.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from motionclone_options import add_generation_arguments, official_seed, settings_from_namespace

from motionclone_resolve.keyframe_choice import KeyframeChoice


@dataclass
class Request:
    """Settings for every clip (a marker's own prompt and options override them for its clip)."""

    settings: dict[str, Any] = field(default_factory=dict)
    all_marked: bool = False
    address: str | None = None
    token: str | None = None
    results_dir: str | None = None
    # The dialog's keyframe, made into settings when the run starts (the terminal's are in `settings`).
    keyframe: KeyframeChoice | None = None

    @property
    def prompt(self) -> str:
        return str(self.settings.get("prompt") or "").strip()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="MotionClone.py",
        description="Send DaVinci Resolve timeline clips to the MotionClone daemon; place the results above them.",
    )
    add_generation_arguments(parser)
    parser.add_argument(
        "--all-marked",
        action="store_true",
        help="every video clip with a marker whose note starts with 'motionclone:' (the rest is its prompt)",
    )
    parser.add_argument("--address", help="daemon HOST:PORT (default: the daemon on this computer)")
    parser.add_argument(
        "--token",
        default=os.environ.get("MOTIONCLONE_TOKEN"),
        help="the daemon's token (default: $MOTIONCLONE_TOKEN, else this computer's token file)",
    )
    parser.add_argument(
        "--results-dir",
        help="where results go when the media's folder is not writable "
        "(default: $MOTIONCLONE_RESOLVE_RESULTS, else your videos folder)",
    )
    return parser


def request_from_argv(argv: Sequence[str] | None) -> Request:
    """Parse the terminal's flags (argparse exits with status 2 on a bad one)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from_namespace(args)
    except ValueError as error:
        parser.error(str(error))
    # The daemon's default too (per preset): the file name says which seed made it.
    settings.setdefault("seed", official_seed(settings.get("preset")))
    if not args.all_marked and not str(settings.get("prompt") or "").strip():
        parser.error("--prompt is required (or --all-marked, to take each clip's prompt from its marker)")
    return Request(settings, args.all_marked, args.address, args.token, args.results_dir)
