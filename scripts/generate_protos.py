"""Generate the Python gRPC code from protos/ into plugins/client (or another folder).

The .proto is the single source of truth; a test regenerates into a temporary folder and
compares, so the committed code never drifts from it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
DEFAULT_OUT = ROOT / "plugins" / "client"


def generate(out: Path) -> list[Path]:
    """Run protoc on every .proto under protos/; return the generated files."""
    from grpc_tools import protoc

    out.mkdir(parents=True, exist_ok=True)
    sources = sorted(p.relative_to(PROTOS).as_posix() for p in PROTOS.rglob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    args = ["protoc", f"-I{PROTOS}", f"-I{include}", f"--python_out={out}", f"--pyi_out={out}"]
    args += [f"--grpc_python_out={out}", *sources]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    generated = []
    for source in sources:
        package = out / Path(source).parent
        for folder in Path(source).parents[:-1]:
            (out / folder / "__init__.py").touch()
        stem = Path(source).stem
        generated += [package / f"{stem}_pb2.py", package / f"{stem}_pb2.pyi", package / f"{stem}_pb2_grpc.py"]
    return generated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    for path in generate(parser.parse_args().out):
        print(path, file=sys.stderr)


if __name__ == "__main__":
    main()
