"""A PostgreSQL primary with a synchronous streaming standby, made for a test with
PostgreSQL's own tools (initdb, pg_basebackup -R, pg_ctl) in a folder of its own, on free
ports of 127.0.0.1 (the machine's own PostgreSQL on 5432 is never touched).

The settings are the ones docs/operations.md ("A district") gives: the primary waits
for the standby to have written every commit (``synchronous_commit = on`` with the
standby named in ``synchronous_standby_names``) before the commit returns, so a batch
the server acknowledges is on both machines.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

BIN = Path(os.environ.get("BOOKCORNER_PG_BIN", "/usr/lib/postgresql/15/bin"))
TOOLS = ("initdb", "pg_basebackup", "pg_ctl", "postgres")
#: initdb refuses to run as root: a test run as root runs the clusters as this user
CLUSTER_USER = "postgres"
DATABASE = "bookcorner"

PRIMARY_CONF = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = ''
wal_level = replica
max_wal_senders = 4
hot_standby = on
synchronous_commit = on
synchronous_standby_names = 'standby'
"""
STANDBY_CONF = """
port = {port}
# promoted, it runs alone until a new standby is made (docs/operations.md)
synchronous_standby_names = ''
"""
REPLICATION_HBA = "host replication postgres 127.0.0.1/32 trust\n"


def standby_problem() -> str | None:
    """Why a primary and standby cannot be made here, or None when they can."""
    missing = [tool for tool in TOOLS if not (BIN / tool).exists()]
    if missing:
        return f"PostgreSQL's binaries are absent ({', '.join(missing)} not in {BIN}; set BOOKCORNER_PG_BIN)"
    if importlib.util.find_spec("psycopg") is None:
        return "psycopg is not installed (pip install --no-deps -r deploy/requirements-central.txt)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(CLUSTER_USER)
        except KeyError:
            return f"run as root and there is no {CLUSTER_USER!r} user to run PostgreSQL as (initdb refuses root)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    def __init__(self, folder: Path, name: str, port: int, user: str | None) -> None:
        self.data, self.log, self.port, self.user = folder / name, folder / f"{name}.log", port, user

    def run(self, tool: str, *args: str, timeout: float = 60) -> None:
        """A tool's output goes to a file, not a pipe: the postgres that ``pg_ctl start`` leaves
        running would hold a pipe open, and reading it would never end."""
        said = self.data.parent / f"{self.data.name}-tools.log"
        with open(said, "ab") as output:
            start = output.tell()
            done = subprocess.run([str(BIN / tool), *args], check=False, stdin=subprocess.DEVNULL, stdout=output,
                                  stderr=output, timeout=timeout, user=self.user, cwd=self.data.parent)
        if done.returncode != 0:
            text = said.read_bytes()[start:].decode(errors="replace").strip()
            raise RuntimeError(f"{tool} {' '.join(args)} failed: {text[-1500:]}")

    def pg_ctl(self, *args: str) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30", *args)

    def start(self) -> None:
        self.pg_ctl("start")

    def promote(self) -> None:
        self.pg_ctl("promote")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self.pg_ctl("stop", "-m", "immediate")
            except RuntimeError:
                pass

    def postmaster(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def kill(self) -> None:
        """The machine dies: SIGKILL to the postmaster and every process of the cluster at once
        (no shutdown checkpoint, no goodbye to the connections)."""
        pid = self.postmaster()
        children = [int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == pid]
        for victim in (pid, *children):
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in (pid, *children)) and time.monotonic() < deadline:
            time.sleep(0.02)

    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def execute(self, sql: str, database: str = DATABASE) -> list[tuple]:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname={database}",
                             autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(sql)
            return cursor.fetchall() if cursor.description else []


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class Pair:
    """A primary and its synchronous standby; ``url``: the libpq multi-host URL the servers use
    (whichever of the two takes writes)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="bc-standby-"))
        self.user = CLUSTER_USER if os.geteuid() == 0 else None
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self.primary = Cluster(self.folder, "primary", free_port(), self.user)
        self.standby = Cluster(self.folder, "standby", free_port(), self.user)

    @property
    def url(self) -> str:
        hosts = "&".join(f"host=127.0.0.1:{c.port}" for c in (self.primary, self.standby))
        return f"postgresql://postgres@/{DATABASE}?{hosts}&target_session_attrs=read-write&connect_timeout=3"

    def make(self) -> Pair:
        primary, standby = self.primary, self.standby
        primary.run("initdb", "-D", str(primary.data), "-U", "postgres", "--auth=trust", "-N")
        with open(primary.data / "postgresql.conf", "a") as conf:
            conf.write(PRIMARY_CONF.format(port=primary.port))
        with open(primary.data / "pg_hba.conf", "a") as hba:
            hba.write(REPLICATION_HBA)
        primary.start()
        primary.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                    "-D", str(standby.data), "-R", "-X", "stream", "--checkpoint=fast",
                    "-d", "application_name=standby")
        with open(standby.data / "postgresql.conf", "a") as conf:
            conf.write(STANDBY_CONF.format(port=standby.port))
        standby.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if primary.execute("SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby'",
                               "postgres") == [("sync",)]:
                # (a commit on the primary waits for the standby: nothing is written before it is there)
                primary.execute(f'CREATE DATABASE "{DATABASE}"', database="postgres")
                return self
            time.sleep(0.1)
        raise RuntimeError("the standby did not become synchronous within 20 s")

    def remove(self) -> None:
        for cluster in (self.standby, self.primary):
            cluster.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
