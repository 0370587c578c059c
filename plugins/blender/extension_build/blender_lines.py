"""Blender releases grouped by the CPython they bundle: the add-on ships one zip per group.

Blender 4.2.0's extension installer filters wheels by platform only and keeps one wheel per
distribution and version, so a zip carrying grpcio for both CPython 3.11 and 3.13 gets the cp313
wheel on 4.2.0's Python 3.11 and the add-on fails with "cannot import name 'cygrpc'" (4.2.x later
filters by Python tag). A zip per group, limited to that group's releases with
`blender_version_min`/`blender_version_max` (the maximum is exclusive), loads on every release.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BlenderLine:
    """Blender releases from `version_min` up to (not including) `version_max`, all bundling `python`."""

    python: str
    version_min: str
    version_max: str | None

    @property
    def label(self) -> str:
        """For the zip's file name, so a user sees which zip fits their Blender."""
        first = self.version_min.rsplit(".", 1)[0]
        if self.version_max is None:
            return f"blender{first}+"
        major, minor, _ = (int(part) for part in self.version_max.split("."))
        return f"blender{first}-{major}.{minor - 1}" if minor else f"blender{first}-{major - 1}.x"


BLENDER_LINES = (
    BlenderLine(python="3.11", version_min="4.2.0", version_max="5.1.0"),
    BlenderLine(python="3.13", version_min="5.1.0", version_max=None),
)
