"""The keyframe an image or sketch run starts from, as the dialog offers it: a still of the media
pool, or the frame under the playhead.

Only calls the scripting README documents. A media pool item is a still when its clip property
"Type" is "Still" or its "File Path" is an image file (a still imported as a file of its own).
The current frame is `Timeline.GrabStill()`, a still that lands in the gallery's current album,
written to disk with `GalleryStillAlbum.ExportStills([still], folder, prefix, "png")`. The README
gives only the prefix of the file's name (Resolve adds the rest), so the export goes into a folder
of the run's own and the newest `<prefix>*.png` there is it. The grabbed still is then deleted
from the album (`DeleteStills`): the user's gallery is left as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from motionclone_resolve.edit import Edit
from motionclone_resolve.errors import ScriptError

NO_KEYFRAME = "None"
CURRENT_FRAME = "Current frame (grabbed from the timeline)"
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"})
EXPORT_PREFIX = "motionclone_keyframe_"  # as the daemon shows it: it makes a name's "-" "_"
EXPORT_FORMAT = "png"


@dataclass(frozen=True)
class KeyframeChoice:
    """The dialog's keyframe fields: a still's file (None: the current frame, grabbed when the
    run starts, so it is the frame under the playhead then), its generated frame and strength."""

    still: Path | None
    frame: int = 0
    strength: float = 1.0


def media_pool_stills(project: Any) -> dict[str, Path]:
    """The media pool's stills, every bin from the root down, by the label the dialog lists them
    under: the clip's name, with its bin's where two share a name. Offline stills are left out:
    the daemon could not be sent them."""
    stills: dict[str, Path] = {}
    if not project:
        return stills
    for bin_name, media in pool_items(project.GetMediaPool().GetRootFolder()):
        file = still_file(media)
        if file is not None:
            label = media.GetName() or file.name
            stills[f"{label} ({bin_name})" if label in stills else label] = file
    return stills


def pool_items(folder: Any) -> Iterator[tuple[str, Any]]:
    """(bin name, media pool item) for every clip in `folder` and the bins below it."""
    for media in folder.GetClipList() or []:
        yield folder.GetName(), media
    for sub in folder.GetSubFolderList() or []:
        yield from pool_items(sub)


def still_file(media: Any) -> Path | None:
    """The image file of a still; None for video, audio, timelines and stills whose file is
    offline (an image sequence's "File Path" names a frame range, no file, so it is no still)."""
    path = str(media.GetClipProperty("File Path") or "")
    is_image = media.GetClipProperty("Type") == "Still" or Path(path).suffix.lower() in IMAGE_SUFFIXES
    return Path(path) if path and is_image and Path(path).is_file() else None


def keyframe_choice(label: str, frame: int, strength: float, stills: dict[str, Path]) -> KeyframeChoice | None:
    """The dialog's keyframe fields as a choice; None when the list says no keyframe."""
    if label == CURRENT_FRAME:
        return KeyframeChoice(None, frame, strength)
    still = stills.get(label)
    return KeyframeChoice(still, frame, strength) if still is not None else None


def keyframe_settings(choice: KeyframeChoice, edit: Edit, folder: Path) -> dict[str, Any]:
    """The job settings of a choice (`IMAGE@FRAME`, as `--keyframe` takes it); the current frame
    is grabbed now and exported into `folder`, which must outlive the jobs' submission."""
    still = choice.still or grab_current_frame(edit.project, edit.timeline, folder)
    return {"keyframes": [f"{still}@{choice.frame}"], "keyframe_strength": choice.strength}


def grab_current_frame(project: Any, timeline: Any, folder: Path) -> Path:
    """The frame under the playhead as a PNG in `folder`; `ScriptError` saying what to do when
    Resolve grabs or exports nothing."""
    album = current_still_album(project)
    still = timeline.GrabStill()
    if not still:
        raise ScriptError("Resolve grabbed no still: move the playhead over a video clip to use the current frame")
    try:
        exported = album.ExportStills([still], str(folder), EXPORT_PREFIX, EXPORT_FORMAT)
    finally:
        album.DeleteStills([still])
    files = sorted(folder.glob(f"{EXPORT_PREFIX}*.{EXPORT_FORMAT}"), key=lambda file: file.stat().st_mtime)
    if not exported or not files:
        raise ScriptError(
            "Resolve did not export the current frame: open the Color page with its Gallery shown and "
            "try again, or choose a still of the media pool as the keyframe"
        )
    return files[-1]


def current_still_album(project: Any) -> Any:
    """The gallery album `GrabStill` adds to, which `ExportStills` and `DeleteStills` work on."""
    gallery = project.GetGallery()
    album = gallery.GetCurrentStillAlbum() if gallery else None
    if not album:
        raise ScriptError("the gallery has no current still album: open the Color page's Gallery and select one")
    return album
