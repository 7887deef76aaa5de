"""A throwaway PostgreSQL cluster that a test may stop and start (the logic of
scripts/_services.sh start_postgres, in a directory and on a port of its own).

fsync is off, as in scripts/test: a commit still reaches the kernel before PostgreSQL answers,
so it survives the server process stopping (what the tests do); only a machine crash would
need the fsync.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.servers import free_port


def pg_bin() -> Path:
    found = os.environ.get("HARBOUR_TEST_PG_BIN") or next(
        (d for d in sorted(glob.glob("/usr/lib/postgresql/*/bin")) if os.access(f"{d}/pg_ctl", os.X_OK)), None
    )
    if not found:
        raise RuntimeError("PostgreSQL's binaries are missing (scripts/test installs Debian's postgresql)")
    return Path(found)


class Cluster:
    def __init__(self):
        self.bin = pg_bin()
        self.port = free_port()  # shared with the servers': never a port one of them was given
        # Not under pytest's tmp_path: PostgreSQL runs as the postgres user when we are root,
        # and pytest's directories are private to root.
        self.dir = Path(tempfile.mkdtemp(prefix="harbour-fault-pg-"))
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.dir / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.start()
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE harbour")

    def url(self, database: str = "harbour") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_user, str(self.bin / tool), *args], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=off",
                  "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.dir, ignore_errors=True)
