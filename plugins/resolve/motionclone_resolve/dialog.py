"""The UIManager dialog: prompt, negative prompt, seed, preset, the keyframe of the image and
sketch presets (a still of the media pool, or the current frame; its frame and strength), all
marked clips, a progress bar, the live preview of a running job, Cancel.

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

from motionclone_options import KEYFRAME_PRESETS, OFFICIAL_KEYFRAME_SEED, OFFICIAL_SEED, PRESET_NAMES, official_seed

from motionclone_resolve.errors import ScriptError
from motionclone_resolve.keyframe_choice import CURRENT_FRAME, NO_KEYFRAME, KeyframeChoice, keyframe_choice
from motionclone_resolve.request import Request
from motionclone_resolve.session import ClipJob

WINDOW = "MotionCloneWindow"
POLL_MS = 200
MAX_SEED = 2**31 - 1
PREVIEW_SIZE = [256, 96]  # the preview strip (at most 256 px wide) is scaled to fit, keeping its shape
MAX_KEYFRAME_FRAME = 999  # the daemon says when a frame is past the run's last
MAX_KEYFRAME_STRENGTH = 10.0  # the engine's bound
OFFICIAL_SEEDS = (OFFICIAL_SEED, OFFICIAL_KEYFRAME_SEED)


def request_from_fields(
    prompt: str, negative: str, seed: int, preset: str, all_marked: bool, keyframe: KeyframeChoice | None = None
) -> Request:
    """The dialog's fields as a request; `ScriptError` for a missing prompt (unless markers give
    them) or a keyframe preset without a keyframe. Other presets take no keyframe, so a choice left
    in the list is not sent with them."""
    settings: dict[str, Any] = {"prompt": prompt.strip(), "seed": int(seed), "preset": preset}
    if negative.strip():
        settings["negative_prompt"] = negative.strip()
    if not all_marked and not settings["prompt"]:
        raise ScriptError("type a prompt (or tick 'All marked clips' to use each clip's marker)")
    if preset not in KEYFRAME_PRESETS:
        return Request(settings, all_marked)
    if keyframe is None:
        raise ScriptError(
            f"the {preset} preset starts from a keyframe: choose a still of the media pool or "
            f"'{CURRENT_FRAME}' under Keyframe"
        )
    return Request(settings, all_marked, keyframe=keyframe)


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

    def __init__(self, ui: Any, dispatcher: Any, stills: dict[str, Path]) -> None:
        """`stills`: the media pool's stills by label (`media_pool_stills`), listed as keyframes."""
        self._ui, self._dispatcher, self._stills = ui, dispatcher, stills
        self._window = dispatcher.AddWindow(
            {"ID": WINDOW, "WindowTitle": "MotionClone", "Geometry": [200, 200, 560, 380]}, self._layout(ui)
        )
        self.items = self._window.GetItems()
        self.items["Preset"].AddItems(list(PRESET_NAMES))
        self.items["Keyframe"].AddItems([NO_KEYFRAME, CURRENT_FRAME, *stills])
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
                row("Keyframe (image, sketch)", ui.ComboBox({"ID": "Keyframe"})),
                ui.HGroup(
                    {"Weight": 0},
                    [
                        ui.Label({"Text": "at generated frame", "Weight": 0.25}),
                        ui.SpinBox({"ID": "KeyframeFrame", "Minimum": 0, "Maximum": MAX_KEYFRAME_FRAME, "Value": 0}),
                        ui.Label({"Text": "strength", "Weight": 0}),
                        ui.DoubleSpinBox(
                            {
                                "ID": "KeyframeStrength",
                                "Minimum": 0.0,
                                "Maximum": MAX_KEYFRAME_STRENGTH,
                                "SingleStep": 0.1,
                                "Value": 1.0,
                            }
                        ),
                    ],
                ),
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
                    self._keyframe(),
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
        self._window.On.Preset.CurrentIndexChanged = self._seed_follows_preset
        self._window.On.Cancel.Clicked = stop
        self._dispatcher.On.Timeout = tick
        self._window.Show()
        self._dispatcher.RunLoop()
        self._window.Hide()

    def _keyframe(self) -> KeyframeChoice | None:
        """The keyframe fields as they are when Generate is pressed."""
        return keyframe_choice(
            self.items["Keyframe"].CurrentText,
            int(self.items["KeyframeFrame"].Value),
            float(self.items["KeyframeStrength"].Value),
            self._stills,
        )

    def _seed_follows_preset(self, _: Any) -> None:
        """An official seed becomes the new preset's official one (image and sketch have their own,
        as `--seed` says); a seed the user typed stays."""
        if self.items["Seed"].Value in OFFICIAL_SEEDS:
            self.items["Seed"].Value = official_seed(self.items["Preset"].CurrentText)

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
