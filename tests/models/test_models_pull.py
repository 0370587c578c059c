"""`motionclone models pull`: offline it fails fast and says what to do; cut off mid-file, it resumes
with an HTTP range request (huggingface_hub's own download code, against a loopback hub)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

from huggingface_hub import constants

from motionclone.models.store import wanted_files

REPO_ID = "someone/tiny-adapter"
COMMIT = "a" * 40
FILES = {
    "config.json": b'{"_class_name": "MotionAdapter"}',
    # Over two of the hub's download chunks, so the cut falls after one was written to the .incomplete file.
    "diffusion_pytorch_model.safetensors": os.urandom(constants.DOWNLOAD_CHUNK_SIZE * 5 // 2),
    "diffusion_pytorch_model.bin": os.urandom(1000),  # a duplicate the loader never reads
    "diffusion_pytorch_model.fp16.safetensors": os.urandom(1000),
}
BIG = "diffusion_pytorch_model.safetensors"


class LoopbackHub(BaseHTTPRequestHandler):
    """The few hub endpoints a snapshot download uses; the first full GET of BIG is cut off half-way."""

    requests: ClassVar[list[tuple[str, str, str]]] = []
    cut = True

    def log_message(self, *_: object) -> None:
        pass

    def _file(self) -> str | None:
        prefix = f"/{REPO_ID}/resolve/"
        return self.path.split("?")[0][len(prefix) :].split("/", 1)[1] if self.path.startswith(prefix) else None

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        LoopbackHub.requests.append((self.command, self.path, self.headers.get("Range", "")))
        if self.path.startswith(f"/api/models/{REPO_ID}/tree/"):
            tree = [{"type": "file", "path": name, "size": len(data), "oid": "0" * 40} for name, data in FILES.items()]
            self._reply(200, json.dumps(tree).encode(), {"Content-Type": "application/json"}, head)
            return
        if self.path.startswith(f"/api/models/{REPO_ID}"):
            siblings = [{"rfilename": name, "size": len(data)} for name, data in FILES.items()]
            body = json.dumps({"id": REPO_ID, "modelId": REPO_ID, "sha": COMMIT, "siblings": siblings}).encode()
            self._reply(200, body, {"Content-Type": "application/json"}, head)
            return
        name = self._file()
        if name not in FILES:
            self._reply(404, b"{}", {"X-Error-Code": "EntryNotFound"}, head)
            return
        data, start = FILES[name], 0
        headers = {"ETag": f'"{hashlib.sha256(data).hexdigest()}"', "X-Repo-Commit": COMMIT, "Accept-Ranges": "bytes"}
        if self.headers.get("Range"):
            start = int(self.headers["Range"].removeprefix("bytes=").split("-")[0])
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        if not head and name == BIG and start == 0 and LoopbackHub.cut:
            LoopbackHub.cut = False
            self.send_response(200)
            for key, value in {**headers, "Content-Length": str(len(data))}.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self._reply(206 if start else 200, data[start:], headers, head)

    def _reply(self, status: int, body: bytes, headers: dict, head: bool) -> None:
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)


def pull(env: dict, *arguments: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "motionclone.cli", "models", "pull", *arguments]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def test_only_the_files_the_loader_reads_are_chosen() -> None:
    assert wanted_files(list(FILES)) == ["config.json", BIG]
    pipeline = [
        "model_index.json",
        "v1-5-pruned.ckpt",
        "v1-5-pruned.safetensors",
        "safety_checker/model.safetensors",
        "unet/config.json",
        "unet/diffusion_pytorch_model.bin",
        "unet/diffusion_pytorch_model.safetensors",
        "unet/diffusion_pytorch_model.fp16.safetensors",
        "tokenizer/vocab.json",
        "tokenizer/merges.txt",
        "text_encoder/model.safetensors",
        "text_encoder/config.json",
        "vae/diffusion_pytorch_model.bin",
        "vae/config.json",
        "scheduler/scheduler_config.json",
        "README.md",
    ]
    assert sorted(wanted_files(pipeline)) == sorted(
        [
            "model_index.json",
            "unet/config.json",
            "unet/diffusion_pytorch_model.safetensors",
            "vae/config.json",
            "vae/diffusion_pytorch_model.bin",
            "tokenizer/merges.txt",
            "tokenizer/vocab.json",
            "text_encoder/config.json",
            "text_encoder/model.safetensors",
            "scheduler/scheduler_config.json",
        ]
    )


def test_offline_pull_fails_within_seconds_and_says_what_to_do(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_ENDPOINT": "http://127.0.0.1:9"}
    started = time.monotonic()
    result = pull(env)
    assert time.monotonic() - started < 15
    assert result.returncode == 2
    assert "cannot reach the Hugging Face hub" in result.stderr and "copy its cache" in result.stderr
    assert "Traceback" not in result.stderr


def test_cut_off_download_resumes_with_a_range_request(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), LoopbackHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        **os.environ,
        "HF_HUB_CACHE": str(tmp_path / "hub"),
        "HF_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}",
        "HF_HUB_DISABLE_XET": "1",
    }
    try:
        result = pull(env, REPO_ID)
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    assert "2 files" in result.stdout
    folder = Path(result.stdout.strip().splitlines()[-1])
    assert sorted(path.name for path in folder.iterdir()) == ["config.json", BIG]
    assert (folder / BIG).read_bytes() == FILES[BIG]
    ranges = [header for command, path, header in LoopbackHub.requests if path.endswith(BIG) and header]
    assert ranges and int(ranges[0].removeprefix("bytes=").split("-")[0]) > 0, LoopbackHub.requests
    assert not [path for _, path, _ in LoopbackHub.requests if path.endswith((".bin", ".fp16.safetensors"))]
