"""`transformers serve` on a prepared model folder: one OpenAI-compatible model server for several app processes.

The server is pinned to the folder (it preloads it and refuses any other model name), so clients name the model by
the folder's path: `LOUPE_GENERATOR_KIND=openai LOUPE_GENERATOR_BASE_URL=http://HOST:PORT/v1
LOUPE_GENERATOR_MODEL=<folder>`. It runs offline: no hub look-ups, no update check.

`transformers serve` also answers admin routes (`POST /load_model` loads any path it is given, `POST /reset`) and
allows every origin (CORS `*`). So it listens on a private loopback port, and what clients reach is `ModelProxy`:
it passes POST /v1/chat/completions (JSON bodies only, which a cross-site form cannot send), answers GET /v1/models
itself with the one model served (transformers serve would list the hub cache instead), and 404 to anything else; serving a host that is not loopback needs `allow_remote`, and on loopback a request
whose Host header names another machine (a DNS-rebinding page) is refused.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from configuration.network import is_loopback

# The only routes clients reach: what Loupe's openai generator (and any OpenAI client) needs.
ROUTES = frozenset({("GET", "/v1/models"), ("POST", "/v1/chat/completions")})
MAX_REQUEST_BYTES = 4 * 1024 * 1024  # a chat request: the prompt with its passages, with room to spare
BACKEND_TIMEOUT_S = 600  # per read from transformers serve: the longest a local model may think before a token
logger = logging.getLogger(__name__)


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
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def exposure_warning(host: str, allow_remote: bool) -> str | None:
    """What to warn about when serving `host`, or None for a loopback address.

    :raises ValueError: a host other machines can reach, without `allow_remote`."""
    if is_loopback(host):
        return None
    where = f"the address {host}" if host.strip() else "every network interface"
    if not allow_remote:
        raise ValueError(f"serve-model refuses to serve {where}: every machine that reaches it could use the model. "
                         "Serve this machine only (--host 127.0.0.1, the default), or add --allow-remote.")
    return (f"serving the model on {where}: every machine that reaches it can ask it for chat completions "
            "(the admin routes of transformers serve stay closed); keep it behind a firewall")


def _host_name(header: str | None) -> str:
    """The host of a Host header, without its port ("[::1]:8000" -> "[::1]")."""
    name = (header or "").strip()
    head, _, port = name.rpartition(":")
    return head if port.isdigit() and head and (head.endswith("]") or ":" not in head) else name


class _ProxyHandler(BaseHTTPRequestHandler):
    """One request to the proxy: passed to transformers serve if it is one of `ROUTES`, else refused."""

    server: ModelProxy

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._forward("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._forward("POST")

    def _forward(self, method: str) -> None:
        route = urlsplit(self.path).path
        if (method, route) not in ROUTES:
            return self._refuse(404, f"{method} {route} is not served here (only GET /v1/models and "
                                     "POST /v1/chat/completions)")
        if not self.server.remote and not is_loopback(_host_name(self.headers.get("Host"))):
            return self._refuse(403, "this server serves this machine only, and the request names another host")
        if method == "GET":
            return self._answer(200, {"object": "list", "data": [
                {"id": self.server.model, "object": "model", "created": 0, "owned_by": "loupe"}]})
        body = self._json_body()
        if body is None:
            return None
        connection = http.client.HTTPConnection(*self.server.backend, timeout=BACKEND_TIMEOUT_S)
        try:
            connection.request(method, route, body=body, headers={
                "Content-Type": "application/json", "Accept": self.headers.get("Accept", "*/*")})
            self._relay(connection.getresponse())
        except OSError as error:
            self._refuse(502, f"transformers serve did not answer: {error}")
        finally:
            connection.close()
        return None

    def _json_body(self) -> bytes | None:
        """The request's JSON body; None when it was refused (not JSON, no length, too long)."""
        if self.headers.get_content_type() != "application/json":
            self._refuse(415, "a JSON body (Content-Type: application/json) is required")
            return None
        length = self.headers.get("Content-Length", "")
        if not length.isdigit() or int(length) > MAX_REQUEST_BYTES:
            self._refuse(413, f"a request body needs a Content-Length of at most {MAX_REQUEST_BYTES} bytes")
            return None
        return self.rfile.read(int(length))

    def _relay(self, response: http.client.HTTPResponse) -> None:
        """The backend's answer as it comes (a streamed completion chunk by chunk), ended by closing the
        connection."""
        self.send_response(response.status)
        for name in ("Content-Type", "Content-Length", "Cache-Control"):
            if response.getheader(name):
                self.send_header(name, response.getheader(name))
        self.end_headers()
        while chunk := response.read1(65536):
            self.wfile.write(chunk)
            self.wfile.flush()

    def _refuse(self, status: int, message: str) -> None:
        self._answer(status, {"error": {"message": message, "type": "loupe_model_proxy"}})

    def _answer(self, status: int, content: dict) -> None:
        body = json.dumps(content).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's signature)
        logger.info("%s %s", self.address_string(), format % args)


class ModelProxy(ThreadingHTTPServer):
    """The public face of `transformers serve` pinned to `model`: listens on `address` and serves `ROUTES` from
    `backend` (host, port on loopback). `remote`: whether other machines may connect (Host headers are then not
    checked)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], backend: tuple[str, int], model: str, remote: bool) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.backend, self.model, self.remote = backend, model, remote
        super().__init__(address, _ProxyHandler)


class ModelServer:
    """`transformers serve FOLDER` as a child process on a private loopback port, behind `ModelProxy` on `host`:
    `port` (a thread of this process): `start()` waits for the backend's `/health`, `wait()` until it exits. Its
    output goes to `log`, or without one to this process's own.

    :param allow_remote: serve a `host` other machines can reach (see `exposure_warning`)."""

    def __init__(self, folder: Path | str, host: str = "127.0.0.1", port: int | None = None,
                 log: Path | None = None, threads: int | None = None, allow_remote: bool = False) -> None:
        exposure_warning(host, allow_remote)
        self.folder, self.host, self.port = str(folder), host, port or free_port(host)
        self.log, self.threads, self.remote = log, threads, not is_loopback(host)
        self.backend_port = free_port()
        self.process: subprocess.Popen | None = None
        self.proxy: ModelProxy | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def backend_url(self) -> str:
        """transformers serve itself, with every route it has: for this process only."""
        return f"http://127.0.0.1:{self.backend_port}"

    def start(self, timeout: float = 180) -> ModelServer:
        env = serve_environment()
        if self.threads:
            env["OMP_NUM_THREADS"] = str(self.threads)
        output = open(self.log, "wb") if self.log else None  # noqa: SIM115 (kept open while it runs); None: ours
        self.process = subprocess.Popen(serve_command(self.folder, "127.0.0.1", self.backend_port), env=env,
                                        stdout=output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"transformers serve exited with code {self.process.returncode}"
                                   + (f"; see {self.log}" if self.log else ""))
            try:
                with urllib.request.urlopen(f"{self.backend_url}/health", timeout=2) as response:
                    if response.status == 200:
                        return self._open_proxy()
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"transformers serve did not answer on port {self.backend_port} within {timeout:.0f} s")

    def _open_proxy(self) -> ModelServer:
        self.proxy = ModelProxy((self.host, self.port), ("127.0.0.1", self.backend_port), self.folder,
                                remote=self.remote)
        threading.Thread(target=self.proxy.serve_forever, name="model-proxy", daemon=True).start()
        return self

    def wait(self) -> int:
        """Until transformers serve exits (Ctrl-C: KeyboardInterrupt); its exit code."""
        return self.process.wait() if self.process is not None else 0

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.shutdown()
            self.proxy.server_close()
            self.proxy = None
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
