"""Conversions between plain settings dicts and the API's messages, shared by both ends.

Settings travel as `GenerationSettings`, whose field names are the config keys; only fields a
caller set are sent, so the daemon's defaults apply to the rest. Keyframes are the exception: a
setting holds them as "IMAGE@FRAME" texts (as `--keyframe` takes them), while the API carries
each image's bytes in the spec (`Keyframe`), since the daemon may not see the client's files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from motionclone_api.v1 import jobs_pb2
from motionclone_options import parse_keyframe

KEYFRAMES_KEY = "keyframes"
SETTINGS_FIELDS = frozenset(f.name for f in jobs_pb2.GenerationSettings.DESCRIPTOR.fields)
# Keyframes ride in the spec message, which the daemon receives whole (main.MAX_MESSAGE): bound
# them so a spec always fits. 16 MiB holds an 8-bit 4K PNG of a graded plate.
MAX_KEYFRAME_BYTES = 16 << 20
MAX_KEYFRAMES_BYTES = 32 << 20


def settings_to_proto(settings: dict[str, Any]) -> jobs_pb2.GenerationSettings:
    unknown = set(settings) - SETTINGS_FIELDS
    if unknown:
        raise ValueError(f"{sorted(unknown)[0]!r} is not a per-job setting (the daemon's own configuration sets it)")
    return jobs_pb2.GenerationSettings(**{k: v for k, v in settings.items() if v is not None})


def settings_from_proto(message: jobs_pb2.GenerationSettings) -> dict[str, Any]:
    return {f.name: getattr(message, f.name) for f in message.DESCRIPTOR.fields if message.HasField(f.name)}


def keyframes_to_proto(texts: list[str] | tuple[str, ...] | str, base: Path | None = None) -> list[jobs_pb2.Keyframe]:
    """The keyframes "IMAGE[@FRAME]" with their images' bytes (paths relative to `base` when
    given); ValueError naming the image for a missing, unreadable or too large file."""
    keyframes = []
    total = 0
    for text in [texts] if isinstance(texts, str) else texts:
        name, frame = parse_keyframe(str(text))
        path = Path(name).expanduser()
        if base is not None and not path.is_absolute():
            path = base / path
        try:
            size = path.stat().st_size
            if size > MAX_KEYFRAME_BYTES:
                raise ValueError(
                    f"keyframe image {path} is {size / 2**20:.1f} MiB; the daemon takes at most "
                    f"{MAX_KEYFRAME_BYTES >> 20} MiB per image: save it smaller (JPEG, or a lower resolution)"
                )
            data = path.read_bytes()
        except OSError as error:
            raise ValueError(f"cannot read keyframe image {path}: {error.strerror or error}") from None
        total += len(data)
        if total > MAX_KEYFRAMES_BYTES:
            raise ValueError(
                f"the keyframe images add up to more than {MAX_KEYFRAMES_BYTES >> 20} MiB: send fewer or smaller"
            )
        keyframes.append(jobs_pb2.Keyframe(frame=frame, name=path.name, image=data))
    return keyframes


def spec_settings(spec: jobs_pb2.JobSpec) -> dict[str, Any]:
    """A job spec's settings as a settings dict, its keyframes as "NAME@FRAME" texts."""
    settings = settings_from_proto(spec.settings)
    if spec.keyframes:
        settings[KEYFRAMES_KEY] = [f"{keyframe.name}@{keyframe.frame}" for keyframe in spec.keyframes]
    return settings
