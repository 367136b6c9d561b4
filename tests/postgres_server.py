"""A throwaway PostgreSQL server for the test session, from Debian's binaries (package `postgresql`).

Not pytest-postgresql: its executor runs `initdb`/`pg_ctl` as the current user, and PostgreSQL refuses to run as
root, which is who CI and these build machines run as. Here the server runs as the `postgres` user when we are
root, on a free loopback port, in a fresh folder with fsync off, and is stopped and removed at the end.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

HOW_TO_GET_IT = "install Debian's PostgreSQL (apt-get install postgresql) or set LOUPE_TEST_POSTGRES_URL"


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda path: int(Path(path).parts[4]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server() -> tuple[str, Callable[[], None]]:
    """Start a server; returns its SQLAlchemy URL and a function that stops it and deletes its files.

    :raises RuntimeError: no PostgreSQL binaries, or the server did not start (with its log)."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise RuntimeError(f"no PostgreSQL binaries under /usr/lib/postgresql: {HOW_TO_GET_IT}")
    folder = Path(tempfile.mkdtemp(prefix="loupe-test-postgres-"))
    data, port = folder / "data", _free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]

    def pg(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, text=True, timeout=120)

    try:
        pg(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start")
    except subprocess.CalledProcessError as error:
        log = (folder / "log").read_text(errors="replace") if (folder / "log").exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {error.stderr.strip()} {log[-2000:]}") from None

    def stop() -> None:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)

    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", stop
