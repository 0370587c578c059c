"""What the editor sees of a timeline item, turned into the job's source range and output span.

`GetSourceStartFrame()` and `GetSourceEndFrame()` (README: "the start / end frame position of the
media pool clip in the timeline clip") count clip frames, and they follow a speed change: a clip at
200% shows twice the clip frames its timeline length would at 100%. Where a release lacks
`GetSourceEndFrame` (it answers None), the end is the item's length in timeline frames converted
with the clip's own FPS (Resolve plays a clip in real time whatever its rate: a 25 fps clip in a
24 fps timeline shows 25 clip frames per 24 timeline frames), which is right at 100% only. The
result must cover the same timeline frames, so it is asked for at the timeline's rate with exactly
the item's duration (`output_fps`, `output_frames`, the setting the Blender add-on uses too).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from motionclone_options import TARGET_MOTION_FPS, span_motion_summary

from motionclone_resolve.errors import ClipSkipped
from motionclone_resolve.frame_rate import frame_rate


@dataclass(frozen=True)
class SourceClip:
    """One timeline item to send: where it sits on the timeline and which part of which file it shows."""

    item: Any
    name: str
    file: Path
    track: int
    record_start: int
    duration: int
    source_start: int
    # The clip frame after the last one shown (the file's end at most).
    source_end: int
    clip_fps: float
    timeline_fps: float
    clip_frames: int | None

    def job_settings(self) -> dict[str, Any]:
        return {
            "start": f"{self.source_start}f",
            "end": f"{self.source_end}f",
            "output_fps": self.timeline_fps,
            "output_frames": self.duration,
        }

    def describe(self, motion_fps: float = TARGET_MOTION_FPS) -> str:
        """The item's range and what a job generates over it at the model's motion rate
        (`target_motion_fps`)."""
        return (
            f"{self.name}: clip frames {self.source_start}-{self.source_end} at {self.clip_fps:g} fps, "
            f"{self.duration} timeline frames at {self.timeline_fps:g} fps on V{self.track}"
            f" ({span_motion_summary(self.duration, self.timeline_fps, motion_fps)})"
        )


def source_clip(item: Any, timeline_fps: float) -> SourceClip:
    """The sendable facts of a video item; `ClipSkipped` for generators, titles, compound clips, offline media."""
    name = item.GetName() or "clip"
    media = item.GetMediaPoolItem()
    path = media_path(item)
    if not path:
        raise ClipSkipped(f"{name}: not a media file (a generator, title or compound clip); skipped")
    file = Path(path)
    if not file.is_file():
        raise ClipSkipped(f"{name}: media offline ({file} not found); skipped")
    _, track = item.GetTrackTypeAndIndex()
    frames = str(media.GetClipProperty("Frames") or "")
    clip_frames = int(frames) if frames.isdigit() else None
    duration, source_start = int(item.GetDuration()), int(item.GetSourceStartFrame())
    clip_fps = frame_rate(media.GetClipProperty("FPS"), f"clip {name}")
    end = _shown_end(item, source_start, duration * clip_fps / timeline_fps)
    return SourceClip(
        item=item,
        name=name,
        file=file,
        track=int(track),
        record_start=int(item.GetStart()),
        duration=duration,
        source_start=source_start,
        source_end=min(end, clip_frames) if clip_frames else end,
        clip_fps=clip_fps,
        timeline_fps=timeline_fps,
        clip_frames=clip_frames,
    )


def media_path(item: Any) -> str:
    """The file a timeline item shows ("" for generators, titles and compound clips)."""
    media = item.GetMediaPoolItem()
    return media.GetClipProperty("File Path") if media else ""


def _shown_end(item: Any, source_start: int, clip_frames_at_full_speed: float) -> int:
    """`GetSourceEndFrame()`, or where the release lacks it, the end a 100% speed would give."""
    documented = item.GetSourceEndFrame()
    return source_start + round(clip_frames_at_full_speed) if documented is None else int(documented)
