"""`motionclone`: generate a video with a clip's motion, or extract a reusable motion template.

Every user mistake ends in one line on stderr and a non-zero exit (2), never a traceback. The
generation flags come from the client package, where every front end finds the same ones.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from motionclone_client import ClientError
from motionclone_client.previews import save_preview
from motionclone_options import add_generation_arguments, settings_from_namespace

from motionclone.cli.daemon_commands import COMMANDS, add_client_commands, run_client_command
from motionclone.cli.eval_command import add_eval_command, run_eval
from motionclone.cli.open_command import add_open_command, run_open
from motionclone.cli.progress import ProgressBar
from motionclone.cli.setup_commands import SETUP_COMMANDS, add_setup_commands, run_setup_command
from motionclone.config.settings import MotionCloneConfig, check_setting, read_yaml_settings
from motionclone.errors import ConfigError, MotionCloneError
from motionclone.library_chatter import quiet_libraries

if TYPE_CHECKING:
    from motionclone.media.preview import LivePreview

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
# Settings of the engine in this process only: a daemon has its own device and cache.
LOCAL_KEYS = ("device", "dtype", "cache_dir", "compile_unet", "memory_limit_gib")


def add_local_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of commands that run the engine in this process, on top of the shared generation flags."""
    add_generation_arguments(parser)
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when present)")
    parser.add_argument("--dtype", help="float32, float16 or bfloat16 (default: float16 on CUDA)")
    parser.add_argument("--cache-dir", help="where extracted templates are cached")
    parser.add_argument(
        "--compile",
        dest="compile_unet",
        action="store_true",
        default=None,
        help="compile the UNet with torch.compile (minutes once per video size, then cached on disk)",
    )
    parser.add_argument(
        "--memory-limit",
        dest="memory_limit_gib",
        type=float,
        metavar="GIB",
        help="the most device memory the run may take, weights included (low_memory auto plans within it)",
    )


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML file of settings; flags override it")


def settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Only the settings the user gave: the YAML file's, then the flags', all checked alike."""
    settings = read_yaml_settings(args.config) if args.config else {}
    try:
        flags = settings_from_namespace(args)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    flags.update({key: getattr(args, key, None) for key in LOCAL_KEYS if getattr(args, key, None) is not None})
    for key, value in flags.items():
        check_setting(key, value)
    return settings | flags


def config_from_args(args: argparse.Namespace) -> MotionCloneConfig:
    """Defaults, then the YAML file, then the flags that were given."""
    return MotionCloneConfig().replace(**settings_from_args(args))


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="motionclone", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="generate a video with the motion of a reference clip")
    generate.add_argument("reference", nargs="?", type=Path, help="reference clip (omit with --motion)")
    generate.add_argument("-o", "--output", type=Path, required=True, help="output .mp4")
    generate.add_argument("--motion", type=Path, help="use a saved motion template instead of a clip")
    generate.add_argument("--report", type=Path, help="write a JSON report here")
    generate.add_argument("--preview-dir", type=Path, help="write a live preview JPEG here every --preview-every steps")
    add_local_arguments(generate)
    extract = commands.add_parser("extract", help="save the motion of a clip as a reusable template")
    extract.add_argument("reference", type=Path, help="reference clip")
    extract.add_argument("-o", "--output", type=Path, required=True, help="output .safetensors template")
    extract.add_argument("--report", type=Path, help="write a JSON report here")
    add_local_arguments(extract)
    for command in (generate, extract):
        add_config_argument(command)
    add_client_commands(commands)
    add_eval_command(commands)
    add_open_command(commands)
    add_config_argument(commands.choices["submit"])
    add_setup_commands(commands)
    return parser


def _run(args: argparse.Namespace) -> None:
    from motionclone.engine import Engine
    from motionclone.report import write_report

    config = config_from_args(args)
    engine = Engine()
    progress = ProgressBar()
    try:
        if args.command == "extract":
            outcome = engine.extract(config, args.reference, args.output, on_step=progress)
        else:
            on_preview = _preview_writer(args.preview_dir) if args.preview_dir else None
            outcome = engine.generate(
                config, args.output, args.reference, args.motion, on_step=progress, on_preview=on_preview
            )
    finally:
        progress.close()
    if args.report:
        write_report(outcome.report, args.report)
    print(outcome.output)
    if "note" in outcome.report:
        print(f"note: {outcome.report['note']}", file=sys.stderr)


def _preview_writer(folder: Path) -> Callable[[LivePreview], None]:
    """Write each live preview into `folder` as it is made (the same files `submit --preview-dir` writes)."""

    def write(preview: LivePreview) -> None:
        save_preview(folder, preview.step, preview.jpeg)

    return write


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        if args.command in SETUP_COMMANDS:
            return run_setup_command(args)
        if args.command == "open":
            run_open(args)
        elif args.command == "eval":
            quiet_libraries()
            run_eval(args)
        elif args.command in COMMANDS:
            run_client_command(args, settings_from_args(args) if args.command == "submit" else None)
        else:
            from motionclone.device.cpu_threads import use_usable_cores  # torch only for the engine's commands

            quiet_libraries()
            use_usable_cores()
            _run(args)
    except (MotionCloneError, ClientError) as error:
        print(f"motionclone: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("motionclone: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0
