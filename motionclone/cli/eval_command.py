"""`motionclone eval`: score a result against its reference, or every result of a watch folder.

Pair mode prints the JSON report (or writes it with --report) and can draw a contact sheet and a
side-by-side video. Folder mode finds each `output/*.mp4` of a watch folder, its report beside
it and, by the reference digest that report records, the original clip in done/; it writes
`NAME.eval.json` beside each result (the scores, or why it could not be scored) and prints the
results ranked by motion fidelity.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from motionclone.errors import ConfigError, MotionCloneError
from motionclone.method.template import file_digest


def add_eval_command(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser("eval", help="measure how well a result carries its reference's motion")
    command.add_argument("reference", nargs="?", type=Path, help="reference clip")
    command.add_argument("result", nargs="?", type=Path, help="generated clip")
    command.add_argument("--prompt", help="the result's prompt (for the CLIP text alignment)")
    command.add_argument("--report", type=Path, help="write the JSON report here (default: print it)")
    command.add_argument("--sheet", type=Path, help="write a contact sheet PNG with the tracks drawn")
    command.add_argument("--side-by-side", type=Path, help="write reference | result as one video")
    command.add_argument("--resize", default="crop", help="how the job fitted the reference (default crop)")
    command.add_argument("--start", help="reference start the job used: seconds (1.5) or frame (36f)")
    command.add_argument("--end", help="reference end the job used")
    command.add_argument("--folder", type=Path, help="evaluate every result in this watch folder's output/")


def run_eval(args: argparse.Namespace) -> None:
    if args.folder:
        if args.reference or args.result:
            raise ConfigError("give either REFERENCE RESULT or --folder, not both")
        _print_ranking(evaluate_folder(args.folder))
        return
    if not (args.reference and args.result):
        raise ConfigError("eval needs REFERENCE and RESULT clips (or --folder WATCH_DIR)")
    _evaluate_pair(args)


def _evaluate_pair(args: argparse.Namespace) -> None:
    from motionclone.evaluation.evaluate import evaluate
    from motionclone.evaluation.sheet import contact_sheet, side_by_side, write_png
    from motionclone.media.video_io import probe, write_video

    evaluation = evaluate(args.reference, args.result, args.prompt, args.resize, args.start, args.end)
    if args.sheet:
        sheet = contact_sheet(
            evaluation.reference, evaluation.reference_tracks, evaluation.result, evaluation.result_tracks
        )
        write_png(args.sheet, sheet)
    if args.side_by_side:
        write_video(args.side_by_side, side_by_side(evaluation.reference, evaluation.result), probe(args.result).fps)
    text = json.dumps(evaluation.report, indent=2)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text, encoding="utf-8")
    else:
        print(text)


def evaluate_folder(folder: Path) -> list[dict[str, Any]]:
    """Evaluate each result in `folder/output/` whose reference is still in the watch folder."""
    from motionclone.evaluation.evaluate import evaluate_job

    outputs = sorted((folder / "output").glob("*.mp4"))
    if not outputs:
        raise ConfigError(f"no results in {folder / 'output'}: is {folder} a watch folder?")
    clips = {
        file_digest(p): p
        for where in (folder / "done", folder)
        if where.is_dir()
        for p in where.iterdir()
        if p.is_file() and not p.name.startswith(".")
    }
    evaluated = []
    for output in outputs:
        job_report = json.loads(output.with_suffix(".json").read_text(encoding="utf-8"))
        reference = clips.get(job_report.get("template", {}).get("reference_sha256", ""))
        if reference is None:
            evaluated.append({"result": str(output), "skipped": "its reference clip is no longer in the folder"})
            continue
        try:
            report = evaluate_job(reference, output, job_report.get("settings", {})).report
        except MotionCloneError as error:  # one result that cannot be scored must not stop the batch
            report = {"result": str(output), "error": str(error)}
        output.with_suffix(".eval.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
        evaluated.append(report)
    return evaluated


def _print_ranking(reports: list[dict[str, Any]]) -> None:
    scored = [r for r in reports if "motion_fidelity" in r]
    scored.sort(key=lambda r: r["motion_fidelity"]["score"], reverse=True)
    print(f"{'motion fidelity':>15}  result")
    for report in scored:
        print(f"{report['motion_fidelity']['score']:15.3f}  {report['result']}")
    for report in reports:
        for reason in ("skipped", "error"):
            if reason in report:
                print(f"{reason:>15}  {report['result']}: {report[reason]}")
