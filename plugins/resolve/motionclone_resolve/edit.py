"""The project and timeline a run works in, found (or refused) before anything is sent."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from motionclone_resolve.errors import ScriptError
from motionclone_resolve.frame_rate import frame_rate


@dataclass(frozen=True)
class Edit:
    project: Any
    timeline: Any
    timeline_fps: float


def current_edit(resolve: Any) -> Edit:
    manager = resolve.GetProjectManager()
    project = manager.GetCurrentProject() if manager else None
    if not project:
        raise ScriptError("no project is open in DaVinci Resolve")
    timeline = project.GetCurrentTimeline()
    if not timeline:
        raise ScriptError(f"project {project.GetName()!r} has no open timeline: open one in the Edit page")
    rate = timeline.GetSetting("timelineFrameRate") or project.GetSetting("timelineFrameRate")
    return Edit(project, timeline, frame_rate(rate, f"timeline {timeline.GetName()!r}"))


@contextmanager
def timeline_made_current(edit: Edit) -> Iterator[None]:
    """`AppendToTimeline` works on the current timeline: make it ours while placing, then restore the user's."""
    current = edit.project.GetCurrentTimeline()
    switch = not current or current.GetUniqueId() != edit.timeline.GetUniqueId()
    if switch and not edit.project.SetCurrentTimeline(edit.timeline):
        raise ScriptError(f"cannot return to timeline {edit.timeline.GetName()!r} to place the result")
    try:
        yield
    finally:
        if switch and current:
            edit.project.SetCurrentTimeline(current)
