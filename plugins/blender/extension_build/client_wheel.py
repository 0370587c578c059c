"""A pure-Python wheel of the client library (`motionclone_client` + `motionclone_api`) for the add-on.

Why a wheel, not a copy inside the add-on's folder: the client imports itself by its top-level
names (`from motionclone_api.v1 import jobs_pb2`), so a copied-in package would need sys.path
edits, which Blender's extension rules forbid. As a wheel listed in the manifest, Blender installs
it next to grpcio and protobuf in the extensions' site-packages, under those same names, from the
one source in plugins/client. It is written here rather than by a build backend because it is a
plain zip of two packages (no pyproject.toml or setuptools run needed), and with fixed timestamps
so the same source always gives the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

PACKAGES = ("motionclone_client", "motionclone_api")
DISTRIBUTION = "motionclone_client"
REQUIREMENTS = ("grpcio", "protobuf")
FIXED_TIMESTAMP = (2024, 1, 1, 0, 0, 0)


def build_client_wheel(client_root: Path, version: str, output_dir: Path) -> Path:
    """Write `motionclone_client-VERSION-py3-none-any.whl` from `client_root` into `output_dir`."""
    files = {
        path.relative_to(client_root).as_posix(): path.read_bytes()
        for package in PACKAGES
        for path in sorted((client_root / package).rglob("*.py"))
    }
    dist_info = f"{DISTRIBUTION}-{version}.dist-info"
    files[f"{dist_info}/METADATA"] = _metadata(version)
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: motionclone-build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record_name = f"{dist_info}/RECORD"
    record = "".join(f"{name},{_digest(data)},{len(data)}\n" for name, data in files.items()) + f"{record_name},,\n"
    files[record_name] = record.encode()
    output_dir.mkdir(parents=True, exist_ok=True)
    wheel = output_dir / f"{DISTRIBUTION}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, FIXED_TIMESTAMP), data, zipfile.ZIP_DEFLATED)
    return wheel


def _metadata(version: str) -> bytes:
    requirements = "".join(f"Requires-Dist: {name}\n" for name in REQUIREMENTS)
    return f"Metadata-Version: 2.1\nName: motionclone-client\nVersion: {version}\n{requirements}".encode()


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
