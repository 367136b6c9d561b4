"""A real `streamlit run app.py` on a free loopback port, and Chromium's flags for this machine: shared by the
browser tests (tests/browser) and the browser benchmark (bench/review_loop.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# Without the background-networking flags Chromium keeps trying the closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
# The record the Queue shows, read from its caption "run … · document … · Qn · record <id> · <status>". textContent,
# not innerText: polled at every animation frame, it must not force the page's layout itself.
SHOWN_JS = """() => {
  for (const node of document.querySelectorAll('[data-testid=stCaptionContainer]')) {
    const match = /(?:^|·\\s)record (\\S+)/.exec(node.textContent);
    if (match) return match[1];
  }
  return null;
}"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_app(repo: Path, env: dict[str, str], wait_s: float = 120, capture: bool = True) -> tuple[subprocess.Popen, str]:
    """Start the app with this environment; returns the process and its URL once it answers its health check.

    :param capture: keep what the app prints, for the error (short runs); a long run discards it, since an unread
        pipe would fill and stall the app.
    :raises RuntimeError: it did not answer within `wait_s` seconds (with what it printed, when captured)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=repo, env=env, stdout=subprocess.PIPE if capture else subprocess.DEVNULL, stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"streamlit did not start: {process.stdout.read() if process.stdout else ''}")
