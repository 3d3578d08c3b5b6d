"""A throwaway PostgreSQL server for tests: ``initdb`` in a temporary folder, started on a free loopback port.

Uses the server programs of the machine's PostgreSQL (Debian's ``postgresql`` package); skips the test, saying
why, where there is none. As root, the server runs as the ``postgres`` user, since PostgreSQL refuses root.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from glob import glob
from pathlib import Path

import pytest


def _bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: on the PATH, or Debian's ``/usr/lib/postgresql/<v>/bin``."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    installed = sorted(glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(installed[-1]).parent if installed else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server, yield its SQLAlchemy URL (user ``postgres``, no password), stop it and delete its files."""
    pytest.importorskip("psycopg", reason="the PostgreSQL driver: pip install -e '.[postgres]'")
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server programs (initdb, pg_ctl): apt-get install postgresql")
    user = None
    folder = Path(tempfile.mkdtemp(prefix="recipe-postgres-"))
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root, and no postgres user to run the server as")
        user = "postgres"
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    port, data = _free_port(), folder / "data"
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"

    def pg(*args: str) -> None:
        subprocess.run(args, check=True, user=user, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    try:
        pg(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--locale=C", "-E", "UTF8")
        pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-o", options, "-w", "start")
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)
