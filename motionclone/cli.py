"""`motionclone`: generate a video with a clip's motion, or extract a reusable motion template.

Every user mistake ends in one line on stderr and a non-zero exit (2), never a traceback; the
generation flags are declared once here so other commands can share them.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from motionclone.config import PRESETS, MotionCloneConfig, parse_size, read_yaml_settings
from motionclone.errors import MotionCloneError

if TYPE_CHECKING:
    from motionclone.pipeline import StepInfo

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

# flag -> config field, for flags whose value is copied as given
_DIRECT_FLAGS = {
    "model": "model",
    "motion_adapter": "motion_adapter",
    "device": "device",
    "dtype": "dtype",
    "preset": "preset",
    "seed": "seed",
    "steps": "steps",
    "guidance_steps": "guidance_steps",
    "guidance_weight": "motion_guidance_weight",
    "cfg_scale": "cfg_scale",
    "frames": "frames",
    "fps": "fps",
    "start": "start",
    "end": "end",
    "resize": "resize",
    "negative_prompt": "negative_prompt",
    "extraction_mode": "extraction_mode",
    "inversion_steps": "inversion_steps",
    "subject": "subject",
    "reference_prompt": "reference_prompt",
    "semantic_weight": "semantic_guidance_weight",
    "cache_dir": "cache_dir",
}


def add_generation_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that describe a generation; shared by every command that starts one."""
    parser.add_argument("--prompt", help="what the new video shows")
    parser.add_argument("--negative-prompt", help="what to avoid (default: the official negative prompt)")
    parser.add_argument("--model", help="tiny-random, a diffusers folder, a .safetensors checkpoint or a hub id")
    parser.add_argument("--motion-adapter", help="AnimateDiff motion adapter (folder, file or hub id)")
    parser.add_argument("--config", type=Path, help="YAML file of settings; flags override it")
    parser.add_argument("--preset", help=f"motion schedule: {' or '.join(PRESETS)} (default camera)")
    parser.add_argument("--seed", type=int, help="noise seed (default: random, recorded in the report)")
    parser.add_argument("--steps", type=int, help="denoising steps (keeps the preset's guided fraction)")
    parser.add_argument("--guidance-steps", type=int, help="how many of the first steps are guided")
    parser.add_argument("--guidance-weight", type=float, help="motion guidance weight (default: the model's)")
    parser.add_argument("--no-motion-guidance", action="store_true", help="same pipeline, guidance weight 0")
    parser.add_argument("--cfg-scale", type=float, help="classifier-free guidance scale (7.5)")
    parser.add_argument("--frames", type=int, help="frames to sample and generate")
    parser.add_argument("--size", help="WIDTHxHEIGHT of the generated video")
    parser.add_argument("--fps", type=float, help="frame rate of the written video (8)")
    parser.add_argument("--start", help="reference start: seconds (1.5) or frame (36f)")
    parser.add_argument("--end", help="reference end: seconds (3.0) or frame (72f)")
    parser.add_argument("--resize", help="fit the reference to the size: crop (default), pad or stretch")
    parser.add_argument("--extraction-mode", help="single-step (default) or inversion")
    parser.add_argument("--inversion-steps", type=int, help="DDIM inversion steps (inversion mode)")
    parser.add_argument("--subject", help="word of the prompt for location-aware semantic guidance")
    parser.add_argument("--reference-prompt", help="prompt describing the reference (semantic guidance)")
    parser.add_argument("--semantic-weight", type=float, help="semantic guidance weight (0 = off)")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when present)")
    parser.add_argument("--dtype", help="float32, float16 or bfloat16 (default: float16 on CUDA)")
    parser.add_argument("--cache-dir", help="where extracted templates are cached")


def settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Only the settings the user gave: the YAML file's, then the flags'."""
    settings = read_yaml_settings(args.config) if args.config else {}
    settings.update(
        {field: getattr(args, flag) for flag, field in _DIRECT_FLAGS.items() if getattr(args, flag) is not None}
    )
    if args.prompt is not None:
        settings["prompt"] = args.prompt
    if args.size is not None:
        settings["width"], settings["height"] = parse_size(args.size)
    if args.no_motion_guidance:
        settings["motion_guidance_weight"] = 0.0
    return settings


def config_from_args(args: argparse.Namespace) -> MotionCloneConfig:
    """Defaults, then the YAML file, then the flags that were given."""
    return MotionCloneConfig().replace(**settings_from_args(args))


class ProgressBar:
    """A tqdm bar on stderr per phase (extraction, denoising, ...) showing the motion energy."""

    def __init__(self) -> None:
        self._bar: tqdm | None = None
        self._phase = ""

    def advance(self, phase: str, total: int, energy: float | None = None, guided: bool = False) -> None:
        if phase != self._phase or self._bar is None:
            self.close()
            self._phase = phase
            self._bar = tqdm(total=total, desc=phase, file=sys.stderr, unit="step", leave=True)
        if energy is not None:
            self._bar.set_postfix(energy=f"{energy:.4g}", guided=guided, refresh=False)
        self._bar.update(1)

    def __call__(self, info: StepInfo) -> None:
        self.advance(info.phase, info.total, info.motion_energy, info.guided)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="motionclone", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="generate a video with the motion of a reference clip")
    generate.add_argument("reference", nargs="?", type=Path, help="reference clip (omit with --motion)")
    generate.add_argument("-o", "--output", type=Path, required=True, help="output .mp4")
    generate.add_argument("--motion", type=Path, help="use a saved motion template instead of a clip")
    generate.add_argument("--report", type=Path, help="write a JSON report here")
    add_generation_arguments(generate)
    extract = commands.add_parser("extract", help="save the motion of a clip as a reusable template")
    extract.add_argument("reference", type=Path, help="reference clip")
    extract.add_argument("-o", "--output", type=Path, required=True, help="output .safetensors template")
    extract.add_argument("--report", type=Path, help="write a JSON report here")
    add_generation_arguments(extract)
    from motionclone.client_commands import add_client_commands

    add_client_commands(commands, add_generation_arguments)
    return parser


def _run(args: argparse.Namespace) -> None:
    from motionclone.engine import Engine, write_report

    config = config_from_args(args)
    engine = Engine()
    progress = ProgressBar()
    try:
        if args.command == "extract":
            outcome = engine.extract(config, args.reference, args.output, on_step=progress)
        else:
            outcome = engine.generate(config, args.output, args.reference, args.motion, on_step=progress)
    finally:
        progress.close()
    if args.report:
        write_report(outcome.report, args.report)
    print(outcome.output)
    if "note" in outcome.report:
        print(f"note: {outcome.report['note']}", file=sys.stderr)


def quiet_libraries() -> None:
    """Library chatter (diffusers' dtype notes, transformers' warnings) is not for end users."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    from motionclone_client import ClientError

    from motionclone.client_commands import COMMANDS, run_client_command

    args = _build_parser().parse_args(argv)
    try:
        if args.command in COMMANDS:
            run_client_command(args, settings_from_args(args) if args.command == "submit" else None)
        else:
            quiet_libraries()
            _run(args)
    except (MotionCloneError, ClientError) as error:
        print(f"motionclone: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("motionclone: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
