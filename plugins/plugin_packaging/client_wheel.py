"""A pure-Python wheel of the client library for the plugins: `motionclone_client`, the generated
`motionclone_api` and the shared settings vocabulary `motionclone_options`.

Why a wheel, not a copied folder: the client imports itself by its top-level names (`from
motionclone_api.v1 import jobs_pb2`). Blender's extension rules forbid the sys.path edits a
copied-in package would need; as a wheel listed in the manifest, Blender installs it next to
grpcio and protobuf, under those same names, from the one source in plugins/client. The Resolve
build unpacks the same wheel into its lib folder beside the dependencies' wheels. It is written
here rather than by a build backend because it is a plain zip of three packages (no pyproject.toml
or setuptools run needed), and with fixed timestamps so the same source always gives the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

CLIENT_ROOT = Path(__file__).resolve().parent.parent / "client"
PACKAGES = ("motionclone_client", "motionclone_api", "motionclone_options")
DISTRIBUTION = "motionclone_client"
REQUIREMENTS = ("grpcio", "protobuf")
FIXED_TIMESTAMP = (2024, 1, 1, 0, 0, 0)


def build_client_wheel(version: str, output_dir: Path) -> Path:
    """Write `motionclone_client-VERSION-py3-none-any.whl` from plugins/client into `output_dir`."""
    files = {
        path.relative_to(CLIENT_ROOT).as_posix(): path.read_bytes()
        for package in PACKAGES
        for path in sorted((CLIENT_ROOT / package).rglob("*.py"))
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
