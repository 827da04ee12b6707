"""A throwaway PostgreSQL server on the loopback interface, for tests of the Postgres instance.

The distribution's ``postgresql`` package, no system service: ``initdb`` into a fresh temp dir,
``pg_ctl start`` on a free 127.0.0.1 port with the unix socket inside that dir, ``pg_ctl stop``
at the end. initdb and postgres refuse to run as root, so as root both run as ``nobody`` (via
``runuser``) in a temp dir that user owns. Any step that fails raises `PostgresUnavailable` with
the command's output, and the caller fails the test with it: a missing or broken server is a
failure in CI, never a silent skip.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

UNPRIVILEGED_USER = "nobody"
USER, PASSWORD, DB = "plusultra", "plusultra", "dagster"


class PostgresUnavailable(RuntimeError):
    """The server could not be found, initialised or started; the message says which and why."""


@dataclass
class PostgresServer:
    root: Path
    bin_dir: Path
    port: int
    host: str = "127.0.0.1"

    @property
    def env(self) -> dict[str, str]:
        """The DAGSTER_PG_* variables deploy/dagster.yaml reads, pointed at this server."""
        return {"DAGSTER_PG_HOST": self.host, "DAGSTER_PG_PORT": str(self.port), "DAGSTER_PG_USER": USER,
                "DAGSTER_PG_PASSWORD": PASSWORD, "DAGSTER_PG_DB": DB}

    def connect(self, dbname: str = DB):
        import psycopg2

        return psycopg2.connect(host=self.host, port=self.port, user=USER, password=PASSWORD, dbname=dbname)


def find_bin_dir() -> Path:
    """The directory holding ``initdb``: on PATH, else the newest /usr/lib/postgresql/*/bin."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(os.path.realpath(on_path)).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise PostgresUnavailable("initdb not found on PATH nor under /usr/lib/postgresql/*/bin: "
                                  "install the distribution's postgresql package (.ci/run does)")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str], as_user: str | None, what: str, timeout: float = 120) -> None:
    full = ["runuser", "-u", as_user, "--", *cmd] if as_user else cmd
    try:
        out = subprocess.run(full, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PostgresUnavailable(f"{what} failed: {exc}") from exc
    if out.returncode != 0:
        raise PostgresUnavailable(f"{what} failed (exit {out.returncode}): {(out.stdout + out.stderr).strip()[-2000:]}")


def start() -> PostgresServer:
    """initdb + start; the caller must `stop` the returned server."""
    bin_dir = find_bin_dir()
    as_user = UNPRIVILEGED_USER if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="plusultra-pg-"))  # directly under /tmp: reachable by nobody
    if as_user:
        entry = pwd.getpwnam(as_user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    pwfile = root / "pwfile"
    pwfile.write_text(PASSWORD + "\n")
    if as_user:
        os.chown(pwfile, entry.pw_uid, entry.pw_gid)
    server = PostgresServer(root=root, bin_dir=bin_dir, port=_free_port())
    try:
        # password auth even on loopback: the instance connects the way a deployment does
        _run([str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", USER, f"--pwfile={pwfile}",
              "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"], as_user, "initdb")
        options = f"-c listen_addresses={server.host} -p {server.port} -k {root} -c fsync=off"
        _run([str(bin_dir / "pg_ctl"), "-D", str(root / "data"), "-l", str(root / "server.log"), "-o", options,
              "-w", "-t", "60", "start"], as_user, "pg_ctl start")
    except PostgresUnavailable as exc:
        log = root / "server.log"
        tail = log.read_text()[-1500:] if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise PostgresUnavailable(f"{exc}{' | server log: ' + tail if tail else ''}") from None
    try:
        conn = server.connect("postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {DB}")
        conn.close()
    except Exception as exc:
        stop(server)
        raise PostgresUnavailable(f"server started but CREATE DATABASE {DB} failed: {exc}") from exc
    return server


def stop(server: PostgresServer) -> None:
    """Stop the server (fast shutdown) and delete its directory."""
    as_user = UNPRIVILEGED_USER if os.geteuid() == 0 else None
    try:
        _run([str(server.bin_dir / "pg_ctl"), "-D", str(server.root / "data"), "-m", "fast", "-w", "stop"],
             as_user, "pg_ctl stop")
    finally:
        shutil.rmtree(server.root, ignore_errors=True)
