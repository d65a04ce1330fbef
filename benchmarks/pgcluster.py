"""A private PostgreSQL cluster for the scale benchmarks, and the CPU its server processes spend.

The scale-out and retention benchmarks load a database far beyond what the
shared development server should carry, and the scale-out benchmark needs one
bound to an address its network namespaces reach. :class:`PrivateCluster` makes
one in a temporary directory (``initdb``), starts it on the given address and
port, and removes it on :meth:`PrivateCluster.destroy`. ``initdb`` refuses to
run as root, so as root the cluster belongs to the ``postgres`` user and every
``pg_ctl`` runs through ``runuser``.

:meth:`PrivateCluster.server_cpu_seconds` is the CPU time of the whole server
(the postmaster, its live children and the children it has reaped), so
backends that came and went during a run (the writer closes an idle
connection) are counted too.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any


def pg_bin() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl`` (``AGENTOPS_PG_BIN``, else the newest installed)."""
    given = os.environ.get("AGENTOPS_PG_BIN")
    if given:
        return Path(given)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[-3]))
    return Path(candidates[-1]).parent if candidates else None


def _ticks(pid: int | str, children: bool = False) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime, stime (fields 14, 15) and, with ``children``, cutime, cstime of reaped children.
    used = int(fields[11]) + int(fields[12])
    return used + int(fields[13]) + int(fields[14]) if children else used


class PrivateCluster:
    """A throw-away PostgreSQL cluster listening on ``host:port``.

    Args:
        host: ``listen_addresses`` (one address, or several separated by commas).
        port: The TCP port.
        settings: Extra server settings (``name=value``).
        trust: A network (``10.231.0.0/24``) whose clients may connect without
            a password, besides loopback (``initdb -A trust`` admits only that).
    """

    def __init__(self, host: str, port: int, settings: dict[str, str] | None = None, trust: str | None = None) -> None:
        binaries = pg_bin()
        if binaries is None:
            raise RuntimeError("PostgreSQL's initdb was not found (set AGENTOPS_PG_BIN to its directory)")
        self.bin = binaries
        self.host = host.split(",")[0]
        self.listen = host
        self.port = port
        self.settings = {
            # A benchmark cluster: durability off, so figures measure work, not this machine's disk.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "300",
            "shared_buffers": "256MB",
            "max_wal_size": "4GB",
            **(settings or {}),
        }
        self.root = Path(tempfile.mkdtemp(prefix="agentops-scale-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run([str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8"])
        if trust:
            with open(self.data / "pg_hba.conf", "a") as hba:
                hba.write(f"host all all {trust} trust\n")

    def _run(self, argv: list[str], timeout: float = 120.0) -> None:
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{argv[-1]} of the private PostgreSQL failed: {result.stdout}\n{result.stderr}")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses={self.listen} -c unix_socket_directories={self.root}"
        options += "".join(f" -c {name}={value}" for name, value in self.settings.items())
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start"])

    def destroy(self) -> None:
        """Stop the server (immediate shutdown: it is thrown away) and delete its files."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.host} port={self.port} user=postgres dbname={dbname}"

    def connect(self, dbname: str = "postgres", autocommit: bool = True) -> Any:
        import psycopg

        return psycopg.connect(self.dsn(dbname), autocommit=autocommit)

    def create_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def server_cpu_seconds(self) -> float:
        """CPU seconds spent so far by the server: the postmaster, its children, and those it reaped."""
        postmaster = self.postmaster_pid()
        total = _ticks(postmaster, children=True)
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == postmaster:
                    total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def wait_quiet(self, dbname: str, seconds: float = 30.0) -> None:
        """Wait until no other session of ``dbname`` runs a statement (the writers have flushed)."""
        deadline = time.monotonic() + seconds
        with self.connect(dbname) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND state = 'active'"
                ).fetchone()
                if row is not None and row[0] == 0:
                    return
                time.sleep(0.2)
