"""`transformers serve` on a prepared model folder: one OpenAI-compatible model server for several app processes.

The server is pinned to the folder (it preloads it and refuses any other model name), so clients name the model by
the folder's path: `LOUPE_GENERATOR_KIND=openai LOUPE_GENERATOR_BASE_URL=http://HOST:PORT/v1
LOUPE_GENERATOR_MODEL=<folder>`. It runs offline: no hub look-ups, no update check.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def serve_command(folder: Path | str, host: str = "127.0.0.1", port: int = 8000) -> list[str]:
    """The command line that serves `folder` (transformers' own CLI, run by this Python)."""
    return [sys.executable, "-m", "transformers.cli.transformers", "serve", str(folder), "--host", host,
            "--port", str(port), "--device", "cpu", "--log-level", "warning"]


def serve_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for the server: offline, no update check against the package index, no progress bars."""
    env = dict(os.environ if base is None else base)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HUB_DISABLE_UPDATE_CHECK="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", TOKENIZERS_PARALLELISM="false")
    return env


def client_settings(folder: Path | str, host: str, port: int) -> dict[str, str]:
    """The environment variables that point Loupe at a server of `serve_command(folder, host, port)`."""
    return {"LOUPE_GENERATOR_KIND": "openai", "LOUPE_GENERATOR_BASE_URL": f"http://{host}:{port}/v1",
            "LOUPE_GENERATOR_MODEL": str(folder)}


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class ModelServer:
    """`transformers serve FOLDER` as a child process, for tests and benchmarks: `start()` waits for `/health`."""

    def __init__(self, folder: Path | str, host: str = "127.0.0.1", port: int | None = None,
                 log: Path | None = None, threads: int | None = None) -> None:
        self.folder, self.host, self.port = str(folder), host, port or free_port(host)
        self.log, self.threads = log, threads
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self, timeout: float = 180) -> ModelServer:
        env = serve_environment()
        if self.threads:
            env["OMP_NUM_THREADS"] = str(self.threads)
        output = open(self.log, "wb") if self.log else subprocess.DEVNULL  # noqa: SIM115 (kept open while it runs)
        self.process = subprocess.Popen(serve_command(self.folder, self.host, self.port), env=env, stdout=output,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"transformers serve exited with code {self.process.returncode}"
                                   + (f"; see {self.log}" if self.log else ""))
            try:
                with urllib.request.urlopen(f"http://{self.host}:{self.port}/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"transformers serve did not answer on port {self.port} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.process = None

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
