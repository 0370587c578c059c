"""Conversions between plain settings dicts and the API's messages, shared by both ends.

Settings travel as `GenerationSettings`, whose field names are the config keys; only fields a
caller set are sent, so the daemon's defaults apply to the rest.
"""

from __future__ import annotations

from typing import Any

from motionclone_api.v1 import jobs_pb2

SETTINGS_FIELDS = frozenset(f.name for f in jobs_pb2.GenerationSettings.DESCRIPTOR.fields)


def settings_to_proto(settings: dict[str, Any]) -> jobs_pb2.GenerationSettings:
    unknown = set(settings) - SETTINGS_FIELDS
    if unknown:
        raise ValueError(f"{sorted(unknown)[0]!r} is not a per-job setting (the daemon's own configuration sets it)")
    return jobs_pb2.GenerationSettings(**{k: v for k, v in settings.items() if v is not None})


def settings_from_proto(message: jobs_pb2.GenerationSettings) -> dict[str, Any]:
    return {f.name: getattr(message, f.name) for f in message.DESCRIPTOR.fields if message.HasField(f.name)}
