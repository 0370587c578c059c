"""The UIManager dialog: prompt, negative prompt, seed, preset, all marked clips, a progress bar,
the live preview of a running job, Cancel.

UIManager is Fusion's UI toolkit, the only one a Resolve script may use. The free edition blocks
its dialogs since 19.1 (`fusion.UIManager` is then unavailable): `open_dialog` returns None and the
caller works from markers. The dispatcher's timer drives the session's `poll()`, so the window
keeps answering (Cancel) while jobs run. UIManager shows an image file only as a widget's icon,
so the preview is a flat, icon-only button.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from motionclone_options import OFFICIAL_SEED, PRESET_NAMES

from motionclone_resolve.errors import ScriptError
from motionclone_resolve.request import Request
from motionclone_resolve.session import ClipJob

WINDOW = "MotionCloneWindow"
POLL_MS = 200
MAX_SEED = 2**31 - 1
PREVIEW_SIZE = [256, 96]  # the preview strip (at most 256 px wide) is scaled to fit, keeping its shape


def request_from_fields(prompt: str, negative: str, seed: int, preset: str, all_marked: bool) -> Request:
    """The dialog's fields as a request; `ScriptError` for a missing prompt (unless markers give them)."""
    settings: dict[str, Any] = {"prompt": prompt.strip(), "seed": int(seed), "preset": preset}
    if negative.strip():
        settings["negative_prompt"] = negative.strip()
    if not all_marked and not settings["prompt"]:
        raise ScriptError("type a prompt (or tick 'All marked clips' to use each clip's marker)")
    return Request(settings, all_marked)


def user_interface(resolve: Any, bmd: Any) -> tuple[Any, Any] | None:
    """UIManager and its dispatcher, or None where Resolve blocks dialogs (free edition since 19.1)."""
    fusion = resolve.Fusion() if bmd is not None else None
    ui = fusion.UIManager if fusion else None
    if not ui:
        return None
    dispatcher = bmd.UIDispatcher(ui)
    return (ui, dispatcher) if dispatcher else None


class Dialog:
    """The window; `on_generate(request)` starts a run, `poll()` advances it, `cancel()` stops it."""

    def __init__(self, ui: Any, dispatcher: Any) -> None:
        self._ui, self._dispatcher = ui, dispatcher
        self._window = dispatcher.AddWindow(
            {"ID": WINDOW, "WindowTitle": "MotionClone", "Geometry": [200, 200, 560, 320]}, self._layout(ui)
        )
        self.items = self._window.GetItems()
        self.items["Preset"].AddItems(list(PRESET_NAMES))
        self._timer = ui.Timer({"ID": "MotionClonePoll", "Interval": POLL_MS})

    @staticmethod
    def _layout(ui: Any) -> Any:
        def row(label: str, field: Any) -> Any:
            return ui.HGroup({"Weight": 0}, [ui.Label({"Text": label, "Weight": 0.25}), field])

        return ui.VGroup(
            [
                row("Prompt", ui.LineEdit({"ID": "Prompt", "PlaceholderText": "what the new clip shows"})),
                row("Negative prompt", ui.LineEdit({"ID": "Negative", "PlaceholderText": "blank: the official one"})),
                row("Seed", ui.SpinBox({"ID": "Seed", "Minimum": 0, "Maximum": MAX_SEED, "Value": OFFICIAL_SEED})),
                row("Preset", ui.ComboBox({"ID": "Preset"})),
                ui.CheckBox({"ID": "AllMarked", "Text": "All marked clips (prompt from each 'motionclone:' marker)"}),
                ui.Slider({"ID": "Progress", "Minimum": 0, "Maximum": 100, "Value": 0, "Enabled": False}),
                ui.Label({"ID": "Status", "Text": "Selected clips, or the clip under the playhead.", "WordWrap": True}),
                ui.Button({"ID": "Preview", "Flat": True, "IconSize": PREVIEW_SIZE, "MinimumSize": PREVIEW_SIZE}),
                ui.HGroup(
                    {"Weight": 0},
                    [ui.Button({"ID": "Generate", "Text": "Generate"}), ui.Button({"ID": "Cancel", "Text": "Cancel"})],
                ),
            ]
        )

    def run(self, on_generate: Callable[[Request], None], poll: Callable[[], bool], cancel: Callable[[], None]) -> None:
        """Show the window until the user closes it; Cancel stops running jobs, or closes when idle."""
        running = {"now": False}

        def generate(_: Any) -> None:
            try:
                request = request_from_fields(
                    self.items["Prompt"].Text,
                    self.items["Negative"].Text,
                    self.items["Seed"].Value,
                    self.items["Preset"].CurrentText,
                    bool(self.items["AllMarked"].Checked),
                )
                on_generate(request)
            except ScriptError as error:
                self.status(str(error))
                return
            running["now"] = True
            self.items["Generate"].Enabled = False
            self._timer.Start()

        def tick(_: Any) -> None:
            if running["now"] and poll():
                running["now"] = False
                self._timer.Stop()
                self.items["Generate"].Enabled = True

        def stop(_: Any) -> None:
            if running["now"]:
                cancel()
                self.status("cancelling...")
            else:
                self._dispatcher.ExitLoop()

        self._window.On[WINDOW].Close = stop
        self._window.On.Generate.Clicked = generate
        self._window.On.Cancel.Clicked = stop
        self._dispatcher.On.Timeout = tick
        self._window.Show()
        self._dispatcher.RunLoop()
        self._window.Hide()

    def status(self, text: str) -> None:
        self.items["Status"].Text = text

    def show_preview(self, path: Path | None) -> None:
        """Show the preview image at `path`, or none."""
        self.items["Preview"].Icon = self._ui.Icon({"File": str(path)} if path else {})


class DialogReporter:
    """Progress in the dialog: the bar shows all jobs together, the label the latest change, the
    image the latest preview of the job that changed (else of any running job)."""

    def __init__(self, dialog: Dialog) -> None:
        self._dialog = dialog

    def message(self, text: str) -> None:
        self._dialog.status(text)

    def changed(self, number: int, jobs: list[ClipJob]) -> None:
        self._dialog.items["Progress"].Value = round(100 * sum(job.fraction for job in jobs) / len(jobs))
        self._dialog.status(f"[{number + 1}/{len(jobs)}] {jobs[number].source.name}: {jobs[number].status}")
        self._dialog.show_preview(next((job.preview for job in [jobs[number], *jobs] if job.preview), None))
