"""A fake of DaVinci Resolve's scripting API, for testing the MotionClone script without Resolve.

It follows the README.txt that ships with Resolve in Developer/Scripting, the edition headed
"Last Updated: 7 May 2025" (DaVinci Resolve 20.0), sections "DaVinci Resolve API" > Resolve,
ProjectManager, Project, MediaPool, Folder, MediaPoolItem, Timeline and TimelineItem, and
"Looking up Project and Clip properties" (timelineFrameRate; clip properties "File Path", "FPS",
"Frames", "Type"), and Gallery, GalleryStillAlbum and GalleryStill with `Project.GetGallery()`
and `Timeline.GrabStill()`. Only methods that README documents exist, with its signatures and return conventions:
None or False on failure, plain lists where it says [items...], 1-based track indices, marker
dicts keyed by frame. Like real Resolve, an attribute the API lacks reads as None rather than
raising, so `callable(getattr(timeline, "GetSelectedClips", None))` is False here;
`Resolve21Timeline` adds that method, first documented in the Resolve 21 README.

Frame arithmetic follows Resolve: a timeline starts at 01:00:00:00 (frame 3600 x the nominal
rate); `GetStart`/`GetEnd`/`GetDuration` count timeline frames; a clip plays in real time
whatever its own rate, so an item shows `duration x clip fps / timeline fps` clip frames;
`GetSourceStartFrame` counts clip frames and `GetLeftOffset` timeline frames (as users measured).
`GrabStill` grabs the frame under the playhead into the gallery's current album; `ExportStills`
writes it as a real image file (with PIL, in the README's formats PIL writes) named with the
prefix it is given, then a name of the fake's own (the README documents only the prefix).
`AppendToTimeline`'s `endFrame` is exclusive, as users measured recent releases to behave; a
timeline made with `end_inclusive=True` behaves as older guides describe.

The UIManager part (`fusion.UIManager`, `bmd.UIDispatcher`) follows the element and event
conventions of Blackmagic's UIManager examples and the community's UIManager reference: elements
made as `ui.Kind({props}, [children])` with their properties as attributes, `ui.Icon({'File':
path})` as a Button's `Icon`, handlers set as `window.On.<ID>.<Event>`, timer ticks on
`dispatcher.On.Timeout`; the dispatcher's `RunLoop` hands the window to a scripted `DialogUser`.

Test-only helpers are module functions (`new_resolve`, `add_clip`, `add_still`, `snapshot`,
`with_dialogs`), never methods.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
from PIL import Image

from motionclone.media.video_io import probe

_ids = itertools.count(1)
MARKER_FIELDS = ("color", "duration", "note", "name", "customData")
# ExportStills' formats (the README: dpx, cin, tif, jpg, png, ppm, bmp, xpm) that PIL writes.
STILL_FORMATS = {"tif": "TIFF", "jpg": "JPEG", "png": "PNG", "ppm": "PPM", "bmp": "BMP"}


def nominal_rate(fps: float) -> int:
    return round(fps)


def timecode_to_frame(timecode: str, fps: float) -> int:
    hours, minutes, seconds, frames = (int(part) for part in timecode.replace(";", ":").split(":"))
    return ((hours * 60 + minutes) * 60 + seconds) * nominal_rate(fps) + frames


def frame_to_timecode(frame: int, fps: float) -> str:
    rate = nominal_rate(fps)
    seconds, frames = divmod(frame, rate)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}:{frames:02d}"


class _ResolveObject:
    """Unknown attributes read as None, as on Resolve's own objects."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return None

    def GetUniqueId(self) -> str:
        return self._id


class MediaPoolItem(_ResolveObject):
    def __init__(self, name: str, path: str, fps: float, frames: int, kind: str = "Video") -> None:
        self._id = f"mpi-{next(_ids)}"
        self._properties = {"Clip Name": name, "File Path": path, "FPS": f"{fps:g}", "Frames": str(frames)}
        self._properties["Type"] = kind
        self._markers: dict[float, dict] = {}

    def GetName(self) -> str:
        return self._properties["Clip Name"]

    def GetMediaId(self) -> str:
        return self._id

    def GetClipProperty(self, propertyName: str | None = None) -> Any:
        if propertyName is None:
            return dict(self._properties)
        return self._properties.get(propertyName, "")

    def GetMarkers(self) -> dict:
        return {frame: dict(info) for frame, info in self._markers.items()}

    @property
    def _fps(self) -> float:
        return float(self._properties["FPS"])

    @property
    def _frames(self) -> int:
        return int(self._properties["Frames"])


class Folder(_ResolveObject):
    def __init__(self, name: str) -> None:
        self._id = f"folder-{next(_ids)}"
        self._name = name
        self._clips: list[MediaPoolItem] = []
        self._subfolders: list[Folder] = []

    def GetClipList(self) -> list[MediaPoolItem]:
        return list(self._clips)

    def GetName(self) -> str:
        return self._name

    def GetSubFolderList(self) -> list[Folder]:
        return list(self._subfolders)

    def GetIsFolderStale(self) -> bool:
        return False


class TimelineItem(_ResolveObject):
    def __init__(
        self,
        timeline: Timeline,
        media: MediaPoolItem | None,
        name: str,
        track: int,
        record: int,
        span: tuple,
        speed: float = 1.0,
    ):
        self._id = f"item-{next(_ids)}"
        self._timeline, self._media, self._name, self._track, self._record = timeline, media, name, track, record
        self._source_start, self._source_end = span
        self._speed = speed  # a speed change (Clip Attributes > Retime): 2.0 shows the span in half the time
        self._markers: dict[float, dict] = {}

    @property
    def _clip_fps(self) -> float:
        return self._media._fps if self._media else self._timeline._fps

    def _timeline_frames(self, clip_frames: float) -> int:
        return round(clip_frames * self._timeline._fps / self._clip_fps)

    def GetName(self) -> str:
        return self._name

    def GetDuration(self, subframe_precision: bool = False) -> int:
        return self._timeline_frames((self._source_end - self._source_start) / self._speed)

    def GetStart(self, subframe_precision: bool = False) -> int:
        return self._record

    def GetEnd(self, subframe_precision: bool = False) -> int:
        return self._record + self.GetDuration()

    def GetLeftOffset(self, subframe_precision: bool = False) -> int:
        return self._timeline_frames(self._source_start)

    def GetRightOffset(self, subframe_precision: bool = False) -> int:
        total = self._media._frames if self._media else self._source_end
        return self._timeline_frames(total - self._source_end)

    def GetSourceStartFrame(self) -> int:
        return self._source_start

    def _clip_frame_at(self, frame: int) -> int:
        """The clip frame the item shows at timeline frame `frame` (a clip plays in real time)."""
        return self._source_start + int((frame - self._record) * self._speed * self._clip_fps / self._timeline._fps)

    def GetSourceEndFrame(self) -> int:
        return self._source_end

    def GetMediaPoolItem(self) -> MediaPoolItem | None:
        return self._media

    def GetTrackTypeAndIndex(self) -> list:
        return ["video", self._track]

    def AddMarker(
        self, frameId: float, color: str, name: str, note: str, duration: float, customData: str = ""
    ) -> bool:
        if float(frameId) in self._markers:
            return False
        self._markers[float(frameId)] = dict(zip(MARKER_FIELDS, (color, duration, note, name, customData), strict=True))
        return True

    def GetMarkers(self) -> dict:
        return {frame: dict(info) for frame, info in self._markers.items()}


class Timeline(_ResolveObject):
    def __init__(self, project: Project, name: str, fps: float, end_inclusive: bool = False) -> None:
        self._id = f"timeline-{next(_ids)}"
        self._project, self._name, self._fps, self._end_inclusive = project, name, fps, end_inclusive
        self._start = timecode_to_frame("01:00:00:00", fps)
        self._tracks: list[list[TimelineItem]] = [[]]
        self._locked: list[bool] = [False]
        self._playhead = self._start

    def GetName(self) -> str:
        return self._name

    def GetStartFrame(self) -> int:
        return self._start

    def GetEndFrame(self) -> int:
        return max([self._start, *(item.GetEnd() for track in self._tracks for item in track)])

    def GetStartTimecode(self) -> str:
        return frame_to_timecode(self._start, self._fps)

    def GetTrackCount(self, trackType: str) -> int:
        return len(self._tracks) if trackType == "video" else 0

    def AddTrack(self, trackType: str, subTrackType: Any = None) -> bool:
        if trackType != "video":
            return False
        self._tracks.append([])
        self._locked.append(False)
        return True

    def DeleteTrack(self, trackType: str, trackIndex: int) -> bool:
        if trackType != "video" or not 1 <= trackIndex <= len(self._tracks) or len(self._tracks) == 1:
            return False
        del self._tracks[trackIndex - 1], self._locked[trackIndex - 1]
        for number, track in enumerate(self._tracks, start=1):
            for item in track:
                item._track = number
        return True

    def SetTrackLock(self, trackType: str, trackIndex: int, locked: bool) -> bool:
        if trackType != "video" or not 1 <= trackIndex <= len(self._tracks):
            return False
        self._locked[trackIndex - 1] = bool(locked)
        return True

    def GetIsTrackLocked(self, trackType: str, trackIndex: int) -> bool:
        return trackType == "video" and 1 <= trackIndex <= len(self._tracks) and self._locked[trackIndex - 1]

    def GetIsTrackEnabled(self, trackType: str, trackIndex: int) -> bool:
        return trackType == "video" and 1 <= trackIndex <= len(self._tracks)

    def GetItemListInTrack(self, trackType: str, index: int) -> list[TimelineItem] | None:
        if trackType != "video" or not 1 <= index <= len(self._tracks):
            return None
        return sorted(self._tracks[index - 1], key=lambda item: item._record)

    def DeleteClips(self, timelineItems: list[TimelineItem], ripple: bool = False) -> bool:
        for item in timelineItems:
            if item not in self._tracks[item._track - 1]:
                return False
        for item in timelineItems:
            self._tracks[item._track - 1].remove(item)
        return True

    def GetCurrentTimecode(self) -> str:
        return frame_to_timecode(self._playhead, self._fps)

    def SetCurrentTimecode(self, timecode: str) -> bool:
        self._playhead = timecode_to_frame(timecode, self._fps)
        return True

    def GetCurrentVideoItem(self) -> TimelineItem | None:
        """The item under the playhead on the topmost track holding one."""
        for track in reversed(self._tracks):
            for item in track:
                if item.GetStart() <= self._playhead < item.GetEnd():
                    return item
        return None

    def GetSetting(self, settingName: str | None = None) -> Any:
        settings = {"timelineFrameRate": f"{self._fps:g}"}
        return dict(settings) if settingName is None else settings.get(settingName, "")

    def GetMarkers(self) -> dict:
        return {}

    def GrabStill(self) -> GalleryStill | None:
        """A still of the frame under the playhead, added to the current album (None where no
        media clip is there: the fake refuses what it cannot be sure of)."""
        item = self.GetCurrentVideoItem()
        if item is None or item._media is None:
            return None
        still = GalleryStill(item._media, item._clip_frame_at(self._playhead))
        self._project._gallery._current._stills.append(still)
        return still

    def _place(self, item: TimelineItem) -> bool:
        """Put an item on its track unless it overlaps one there (the fake refuses what it cannot be sure of)."""
        track = self._tracks[item._track - 1]
        if any(other.GetStart() < item.GetEnd() and item.GetStart() < other.GetEnd() for other in track):
            return False
        track.append(item)
        return True


class Resolve21Timeline(Timeline):
    """A timeline of Resolve 21, whose README adds `GetSelectedClips()`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._selected: list[TimelineItem] = []

    def GetSelectedClips(self) -> list[TimelineItem]:
        return list(self._selected)


class MediaPool(_ResolveObject):
    def __init__(self, project: Project) -> None:
        self._id = f"pool-{next(_ids)}"
        self._project = project
        self._root = Folder("Master")
        self._current = self._root

    def GetRootFolder(self) -> Folder:
        return self._root

    def AddSubFolder(self, folder: Folder, name: str) -> Folder | None:
        if any(sub._name == name for sub in folder._subfolders):
            return None
        created = Folder(name)
        folder._subfolders.append(created)
        return created

    def GetCurrentFolder(self) -> Folder:
        return self._current

    def SetCurrentFolder(self, folder: Folder) -> bool:
        if folder not in list(_all_folders(self._root)):
            return False
        self._current = folder
        return True

    def ImportMedia(self, items: list[str]) -> list[MediaPoolItem]:
        imported = []
        for path in items:
            try:
                info = probe(path)
            except Exception:  # Resolve skips what it cannot read
                continue
            imported.append(MediaPoolItem(Path(path).name, str(path), info.fps, _frame_count(info)))
        self._current._clips += imported
        return imported

    def DeleteClips(self, clips: list[MediaPoolItem]) -> bool:
        for folder in _all_folders(self._root):
            folder._clips = [clip for clip in folder._clips if clip not in clips]
        return True

    def DeleteFolders(self, subfolders: list[Folder]) -> bool:
        for folder in _all_folders(self._root):
            folder._subfolders = [sub for sub in folder._subfolders if sub not in subfolders]
        if self._current in subfolders:
            self._current = self._root
        return True

    def AppendToTimeline(self, clips: list[dict]) -> list[TimelineItem]:
        timeline = self._project._current_timeline
        appended = []
        for info in clips:
            item = _item_from_clip_info(timeline, info) if timeline else None
            if item is None or not timeline._place(item):
                continue
            appended.append(item)
        return appended


def _item_from_clip_info(timeline: Timeline, info: dict) -> TimelineItem | None:
    media = info.get("mediaPoolItem")
    if not isinstance(media, MediaPoolItem) or info.get("mediaType", 1) != 1:
        return None
    start = int(info.get("startFrame", 0))
    end = int(info.get("endFrame", media._frames)) + (1 if timeline._end_inclusive else 0)
    track = int(info.get("trackIndex", 1))
    if not 0 <= start < end <= media._frames or not 1 <= track <= len(timeline._tracks):
        return None
    record = int(info.get("recordFrame", timeline.GetEndFrame()))
    return TimelineItem(timeline, media, media.GetName(), track, record, (start, end))


class GalleryStill(_ResolveObject):
    """The README: "This class does not provide any API functions"; the fake keeps the frame it shows."""

    def __init__(self, media: MediaPoolItem, frame: int) -> None:
        self._id = f"still-{next(_ids)}"
        self._media, self._frame = media, frame

    def _image(self) -> Image.Image:
        capture = cv2.VideoCapture(self._media.GetClipProperty("File Path"))
        capture.set(cv2.CAP_PROP_POS_FRAMES, self._frame)
        read, frame = capture.read()
        capture.release()
        assert read, f"cannot read frame {self._frame} of {self._media.GetName()}"
        return Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))


class GalleryStillAlbum(_ResolveObject):
    def __init__(self) -> None:
        self._id = f"album-{next(_ids)}"
        self._stills: list[GalleryStill] = []

    def GetStills(self) -> list[GalleryStill]:
        return list(self._stills)

    def ExportStills(self, galleryStill: list[GalleryStill], folderPath: str, filePrefix: str, format: str) -> bool:
        folder = Path(folderPath)
        if format not in STILL_FORMATS or not folder.is_dir() or not all(s in self._stills for s in galleryStill):
            return False
        for still in galleryStill:
            name = f"{filePrefix}{Path(still._media.GetName()).stem}_1.{self._stills.index(still) + 1}.1.{format}"
            still._image().save(folder / name, STILL_FORMATS[format])
        return True

    def DeleteStills(self, galleryStill: list[GalleryStill]) -> bool:
        if not all(still in self._stills for still in galleryStill):
            return False
        self._stills = [still for still in self._stills if still not in galleryStill]
        return True


class Gallery(_ResolveObject):
    def __init__(self) -> None:
        self._id = f"gallery-{next(_ids)}"
        self._current = GalleryStillAlbum()

    def GetCurrentStillAlbum(self) -> GalleryStillAlbum:
        return self._current


class Project(_ResolveObject):
    def __init__(self, name: str) -> None:
        self._id = f"project-{next(_ids)}"
        self._name = name
        self._pool = MediaPool(self)
        self._gallery = Gallery()
        self._timelines: list[Timeline] = []
        self._current_timeline: Timeline | None = None

    def GetName(self) -> str:
        return self._name

    def GetMediaPool(self) -> MediaPool:
        return self._pool

    def GetGallery(self) -> Gallery:
        return self._gallery

    def GetTimelineCount(self) -> int:
        return len(self._timelines)

    def GetTimelineByIndex(self, idx: int) -> Timeline | None:
        return self._timelines[idx - 1] if 1 <= idx <= len(self._timelines) else None

    def GetCurrentTimeline(self) -> Timeline | None:
        return self._current_timeline

    def SetCurrentTimeline(self, timeline: Timeline) -> bool:
        if timeline not in self._timelines:
            return False
        self._current_timeline = timeline
        return True

    def GetSetting(self, settingName: str | None = None) -> Any:
        rate = self._current_timeline._fps if self._current_timeline else 24
        settings = {"timelineFrameRate": f"{rate:g}"}
        return dict(settings) if settingName is None else settings.get(settingName, "")


class ProjectManager(_ResolveObject):
    def __init__(self, project: Project | None) -> None:
        self._id = f"manager-{next(_ids)}"
        self._project = project

    def GetCurrentProject(self) -> Project | None:
        return self._project


class Fusion(_ResolveObject):
    """Resolve's Fusion object; its UIManager is unavailable (as in the free edition since 19.1)
    unless a test gives it one with `with_dialogs`."""

    def __init__(self, ui_manager: UIManager | None = None) -> None:
        self._id = f"fusion-{next(_ids)}"
        self.UIManager = ui_manager


# -- UIManager (Fusion's UI toolkit), the part the documented examples use ----------------------------


class _Handlers:
    """`window.On.<ID>.<Event> = function` and `window.On[ID]`: a handler table per element ID."""

    def __init__(self) -> None:
        object.__setattr__(self, "_by_id", {})

    def __getattr__(self, element_id: str) -> SimpleNamespace:
        return self[element_id]

    def __getitem__(self, element_id: str) -> SimpleNamespace:
        return self._by_id.setdefault(element_id, SimpleNamespace())

    def __setattr__(self, event: str, handler: Any) -> None:  # dispatcher-wide: `disp.On.Timeout = f`
        setattr(self[""], event, handler)

    def fire(self, element_id: str, event: str) -> None:
        handler = getattr(self._by_id.get(element_id), event, None)
        if handler is not None:
            handler({"who": element_id, "what": event})


class Widget:
    """An element made by `ui.<Kind>({props}, [children])`; attributes read and write its properties."""

    def __init__(self, kind: str, props: dict | list | None = None, children: list | None = None) -> None:
        if isinstance(props, list):
            props, children = {}, props
        defaults = {"Text": "", "Checked": False}  # what Qt reports for an untouched field
        self.__dict__.update(_kind=kind, _props={**defaults, **(props or {})}, _children=list(children or []))
        self.__dict__["_items"] = []

    def __getattr__(self, name: str) -> Any:
        return self._props.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._props[name] = value

    def AddItems(self, items: list[str]) -> None:  # ComboBox
        self._items.extend(items)
        if self._props.get("CurrentText") is None and items:
            self._props["CurrentText"] = items[0]

    def walk(self):
        yield self
        for child in self._children:
            yield from child.walk()


class UIManager:
    """`fusion.UIManager`: `ui.VGroup(...)`, `ui.Button(...)`, ... make elements; `ui.Icon({'File': path})`
    an icon; `ui.Timer({'ID', 'Interval'})` a timer whose ticks reach `dispatcher.On.Timeout`."""

    def __init__(self, user: Callable[[DialogUser], None]) -> None:
        self._user = user
        self.timers: list[Widget] = []

    def __getattr__(self, kind: str) -> Callable[..., Widget]:
        if kind.startswith("_"):
            raise AttributeError(kind)
        return lambda props=None, children=None: Widget(kind, props, children)

    def Timer(self, props: dict) -> Widget:
        timer = Widget("Timer", {**props, "active": False})
        timer.__dict__.update(
            Start=lambda: setattr(timer, "active", True), Stop=lambda: setattr(timer, "active", False)
        )
        self.timers.append(timer)
        return timer


class Window:
    def __init__(self, props: dict, layout: Widget) -> None:
        self.props, self.layout = props, layout
        self.On = _Handlers()
        self.shown = False

    def GetItems(self) -> dict[str, Widget]:
        return {w.ID: w for w in self.layout.walk() if w.ID}

    def Show(self) -> None:
        self.shown = True

    def Hide(self) -> None:
        self.shown = False


class UIDispatcher:
    """`bmd.UIDispatcher(ui)`: makes windows and runs the event loop, here on behalf of a scripted user."""

    def __init__(self, ui: UIManager) -> None:
        self._ui = ui
        self.On = _Handlers()
        self.windows: list[Window] = []
        self.looping = False

    def AddWindow(self, props: dict, layout: Widget) -> Window:
        self.windows.append(Window(props, layout))
        return self.windows[-1]

    def RunLoop(self) -> None:
        self.looping = True
        self._ui._user(DialogUser(self))
        assert not self.looping, "the scripted user left the dialog open"

    def ExitLoop(self) -> None:
        self.looping = False


class DialogUser:
    """What a person does with the dialog, as UIManager delivers it: edits, clicks, timer ticks, closing."""

    def __init__(self, dispatcher: UIDispatcher) -> None:
        self._dispatcher = dispatcher
        self.window = dispatcher.windows[-1]
        self.items = self.window.GetItems()

    def click(self, element_id: str) -> None:
        self.window.On.fire(element_id, "Clicked")

    def wait_while_timer_runs(self, after_tick: Callable[[], None], timeout: float = 300.0) -> None:
        """Let the active timers tick (each tick is a `dispatcher.On.Timeout`) until all stop."""
        deadline = time.monotonic() + timeout
        while any(t.active for t in self._dispatcher._ui.timers):
            assert time.monotonic() < deadline, "the dialog's timer never stopped"
            time.sleep(min(t.Interval for t in self._dispatcher._ui.timers if t.active) / 1000)
            self._dispatcher.On.fire("", "Timeout")
            after_tick()

    def close(self) -> None:
        self.window.On.fire(self.window.props["ID"], "Close")


class Resolve(_ResolveObject):
    def __init__(self, project: Project | None) -> None:
        self._id = f"resolve-{next(_ids)}"
        self._manager = ProjectManager(project)
        self._ui_manager: UIManager | None = None

    def GetProjectManager(self) -> ProjectManager:
        return self._manager

    def Fusion(self) -> Fusion:
        return Fusion(self._ui_manager)

    def GetProductName(self) -> str:
        return "DaVinci Resolve"

    def GetVersionString(self) -> str:
        return "20.0.0.49"


def _frame_count(info: Any) -> int:
    return round(info.duration * info.fps)


def _all_folders(folder: Folder):
    yield folder
    for sub in folder._subfolders:
        yield from _all_folders(sub)


# -- test-side helpers (not part of Resolve's API) ---------------------------------------------------


def new_resolve(fps: float = 24, tracks: int = 1, timeline_class: type[Timeline] = Timeline, **options: Any) -> Resolve:
    """A Resolve with one project whose current timeline has `tracks` empty video tracks."""
    project = Project("Test Project")
    timeline = timeline_class(project, "Timeline 1", fps, **options)
    for _ in range(tracks - 1):
        timeline.AddTrack("video")
    project._timelines.append(timeline)
    project._current_timeline = timeline
    return Resolve(project)


def timeline_of(resolve: Resolve) -> Timeline:
    return resolve.GetProjectManager().GetCurrentProject().GetCurrentTimeline()


def add_clip(
    resolve: Resolve,
    path: Path | str,
    track: int,
    record: int,
    source: tuple[int, int],
    fps: float | None = None,
    frames: int | None = None,
    kind: str = "Video",
    speed: float = 1.0,
    bin_name: str | None = None,
) -> TimelineItem:
    """Put a media file on the timeline (imported into the master bin, or the bin named `bin_name`),
    showing clip frames [start, end) at `speed` (2.0: in half the timeline frames)."""
    project = resolve.GetProjectManager().GetCurrentProject()
    timeline = project.GetCurrentTimeline()
    if fps is None or frames is None:
        info = probe(path)
        fps, frames = info.fps, _frame_count(info)
    media = MediaPoolItem(Path(path).name, str(path), fps, frames, kind)
    _bin(project.GetMediaPool(), bin_name)._clips.append(media)
    item = TimelineItem(timeline, media, Path(path).name, track, record, source, speed)
    assert timeline._place(item), "test clips must not overlap"
    return item


def add_still(resolve: Resolve, path: Path | str, bin_name: str | None = None) -> MediaPoolItem:
    """An image in the media pool (master bin, or the bin named `bin_name`), as Resolve imports a
    still: clip property "Type" is "Still"."""
    project = resolve.GetProjectManager().GetCurrentProject()
    media = MediaPoolItem(Path(path).name, str(path), project.GetCurrentTimeline()._fps, 1, "Still")
    _bin(project.GetMediaPool(), bin_name)._clips.append(media)
    return media


def _bin(pool: MediaPool, name: str | None) -> Folder:
    """The root folder, or its bin `name` (made if missing)."""
    root = pool.GetRootFolder()
    if name is None:
        return root
    return next((f for f in root.GetSubFolderList() if f.GetName() == name), None) or pool.AddSubFolder(root, name)


def add_generator(resolve: Resolve, name: str, track: int, record: int, duration: int) -> TimelineItem:
    """A generator or title: a timeline item with no media pool item."""
    timeline = timeline_of(resolve)
    item = TimelineItem(timeline, None, name, track, record, (0, duration))
    assert timeline._place(item)
    return item


def with_dialogs(resolve: Resolve, user: Callable[[DialogUser], None]) -> SimpleNamespace:
    """Give `resolve` a UIManager (as Studio has) whose dialogs `user` works; returns the `bmd` global."""
    resolve._ui_manager = UIManager(user)
    return SimpleNamespace(UIDispatcher=UIDispatcher, scriptapp=lambda name: resolve)


def select(timeline: Resolve21Timeline, items: list[TimelineItem]) -> None:
    timeline._selected = list(items)


def snapshot(resolve: Resolve) -> Any:
    """Everything a run could change: bins and their clips, tracks, items, locks, the current
    folder/timeline, the gallery's stills."""
    project = resolve.GetProjectManager().GetCurrentProject()
    if project is None:
        return None
    pool = project._pool
    folders = [
        (f._name, [c.GetName() for c in f._clips], [s._name for s in f._subfolders]) for f in _all_folders(pool._root)
    ]
    timelines = [
        (
            t._name,
            list(t._locked),
            [[(i._name, i._record, i._source_start, i._source_end) for i in track] for track in t._tracks],
        )
        for t in project._timelines
    ]
    current = project._current_timeline._id if project._current_timeline else None
    return folders, timelines, pool._current._name, current, project._gallery._current.GetStills()
