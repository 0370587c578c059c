"""What the editor shows of a movie strip, turned into the job's reference range and output span.

Blender shows a movie strip one file frame per scene frame, whatever the file's own rate (a 25 fps
file in a 24 fps scene has as many strip frames as file frames), so the visible part of the strip
is a range of file frames, sent exactly as frame numbers ("12f"). The result must cover the same
scene frames, and Blender would play it one file frame per scene frame too, so it is asked for as
exactly that many frames at the scene's rate (`output_frames`, `output_fps`). A retimed strip shows
another number of file frames than scene frames (`retiming.file_frames`): the result still covers
the scene frames, so the reference's motion plays at the strip's speed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from motionclone_options import TARGET_MOTION_FPS, span_motion_summary


@dataclass(frozen=True)
class SourceSpan:
    """A strip's visible range on the timeline and in its file."""

    timeline_start: int
    timeline_end: int
    first_file_frame: int
    end_file_frame: int
    movie_fps: float
    scene_fps: float

    @property
    def length(self) -> int:
        """Scene frames the strip covers, and so the frames the result file must hold."""
        return self.timeline_end - self.timeline_start

    def job_settings(self) -> dict[str, Any]:
        """The job's reference range (file frames) and the output span (scene frames at the scene's rate)."""
        return {
            "start": f"{self.first_file_frame}f",
            "end": f"{self.end_file_frame}f",
            "output_fps": self.scene_fps,
            "output_frames": self.length,
        }

    def describe(self, motion_fps: float = TARGET_MOTION_FPS) -> str:
        """The strip's range and what a job generates over it at the chosen model's motion rate
        (`target_motion_fps`: Wan generates twice as many frames as AnimateDiff)."""
        seconds = f"{self.first_file_frame / self.movie_fps:.2f}-{self.end_file_frame / self.movie_fps:.2f} s"
        return (
            f"Source frames {self.first_file_frame}-{self.end_file_frame} ({seconds} at {self.movie_fps:g} fps), "
            f"result over {self.length} frames from frame {self.timeline_start}:"
            f" {span_motion_summary(self.length, self.scene_fps, motion_fps)}"
        )
