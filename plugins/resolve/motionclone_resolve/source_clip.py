"""What the editor sees of a timeline item, turned into the job's source range and output span.

Resolve plays a clip in real time whatever its own rate (a 25 fps clip in a 24 fps timeline shows
25 clip frames per 24 timeline frames), so the item's length in timeline frames is converted to
clip frames with the clip's own FPS. `GetSourceStartFrame()` (README: "the start frame position of
the media pool clip in the timeline clip") already counts clip frames. The result must cover the
same timeline frames, so it is asked for at the timeline's rate with exactly the item's duration
(`output_fps`, `output_frames`, the setting the Blender add-on uses too).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    clip_fps: float
    timeline_fps: float
    clip_frames: int | None

    @property
    def source_end(self) -> int:
        """The clip frame after the last one shown (the file's end at most)."""
        end = self.source_start + round(self.duration * self.clip_fps / self.timeline_fps)
        return min(end, self.clip_frames) if self.clip_frames else end

    def job_settings(self) -> dict[str, Any]:
        return {
            "start": f"{self.source_start}f",
            "end": f"{self.source_end}f",
            "output_fps": self.timeline_fps,
            "output_frames": self.duration,
        }

    def describe(self) -> str:
        return (
            f"{self.name}: clip frames {self.source_start}-{self.source_end} at {self.clip_fps:g} fps, "
            f"{self.duration} timeline frames at {self.timeline_fps:g} fps on V{self.track}"
        )


def source_clip(item: Any, timeline_fps: float) -> SourceClip:
    """The sendable facts of a video item; `ClipSkipped` for generators, titles, compound clips, offline media."""
    name = item.GetName() or "clip"
    media = item.GetMediaPoolItem()
    path = media.GetClipProperty("File Path") if media else ""
    if not path:
        raise ClipSkipped(f"{name}: not a media file (a generator, title or compound clip); skipped")
    file = Path(path)
    if not file.is_file():
        raise ClipSkipped(f"{name}: media offline ({file} not found); skipped")
    _, track = item.GetTrackTypeAndIndex()
    frames = str(media.GetClipProperty("Frames") or "")
    return SourceClip(
        item=item,
        name=name,
        file=file,
        track=int(track),
        record_start=int(item.GetStart()),
        duration=int(item.GetDuration()),
        source_start=int(item.GetSourceStartFrame()),
        clip_fps=frame_rate(media.GetClipProperty("FPS"), f"clip {name}"),
        timeline_fps=timeline_fps,
        clip_frames=int(frames) if frames.isdigit() else None,
    )
