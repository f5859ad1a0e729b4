"""A `depth-anything-ros serve` subprocess on a free loopback port, for the server's tests and benchmarks/serve.py."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
INPUT_SIZE = 70
MODEL = ["--encoder", "vits", "--model-max-depth", "20", "--input-size", str(INPUT_SIZE), "--device", "cpu"]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scene_png(width: int = 64, height: int = 48, seed: int = 7) -> bytes:
    """Return a PNG of a gradient with deterministic noise (the test frame)."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:height, 0:width]
    base = np.stack([u * 255 / (width - 1), v * 255 / (height - 1), (u + v) * 127 / (height + width)], -1)
    pixels = np.clip(base + rng.normal(0, 30, (height, width, 3)), 0, 255).astype(np.uint8)
    return cv2.imencode(".png", pixels)[1].tobytes()


class Server:
    """`depth-anything-ros serve CHECKPOINT ...` in its own process; `url` once GET /v1/health answers."""

    def __init__(self, checkpoint: Path, *extra: str, host: str = "127.0.0.1", auth: tuple[str, str] | None = None,
                 model: list[str] = MODEL, env: dict[str, str] | None = None):
        self.port = free_port()
        self.auth = auth
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"serve-{self.port}.log"
        argv = [sys.executable, "-m", "depth_anything_ros.cli", "serve", "--checkpoint", str(checkpoint), *model,
                "--host", host, "--port", str(self.port), *extra]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
        with self.log.open("w") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
        self.url = f"http://127.0.0.1:{self.port}/"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"serve exited {self.process.returncode}:\n{self.output()}"
            try:
                if requests.get(self.url + "v1/health", auth=auth, timeout=5).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        self.stop()
        raise AssertionError(f"serve did not answer within 300 s:\n{self.output()}")

    def output(self) -> str:
        """Return what the server printed so far."""
        return self.log.read_text()

    def folder(self) -> Path:
        """Return the server's temporary folder of uploads and outputs, as it announced it."""
        return Path(re.search(r"uploads and outputs in (\S+), removed at exit", self.output()).group(1))

    def rss_kib(self) -> int:
        """Return the server's resident memory in KiB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"^VmRSS:\s+(\d+) kB", status, flags=re.MULTILINE).group(1))

    def depth(self, data: bytes, name: str = "frame.png", **params) -> requests.Response:
        """POST an upload to /v1/depth with query parameters."""
        return requests.post(self.url + "v1/depth", params=params, files={"image": (name, data)}, auth=self.auth,
                             timeout=120)

    def stop(self) -> int:
        """Interrupt the server as Ctrl-C does and return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode
