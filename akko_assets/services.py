"""`akko services up|down|status`: a private PostgreSQL cluster for machines without one.

PostgreSQL refuses to run as root, so the cluster is owned by and run as the `postgres` OS user,
from the server binaries already on the machine (Debian's postgresql package).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from akko_assets.resources.postgres import answers, ensure_database, redact
from akko_assets.settings import Settings


class ServiceError(RuntimeError):
    pass


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise ServiceError(f"{name} not found: install PostgreSQL server binaries (apt-get install postgresql)")
    return found


def _as_postgres(args: list[str]) -> subprocess.CompletedProcess:
    cmd = args if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(cmd, capture_output=True, text=True)


def data_dir(settings: Settings) -> Path:
    return settings.home / "pg"


def status(settings: Settings) -> str:
    where = redact(settings.pg_dsn)
    if answers(settings.pg_dsn):
        private = (data_dir(settings) / "postmaster.pid").exists()
        return f"PostgreSQL answers at {where} ({'private cluster in ' + str(data_dir(settings)) if private else 'external server'})"
    return f"PostgreSQL does not answer at {where}: run `akko services up`"


def up(settings: Settings) -> str:
    """Make sure PostgreSQL answers at AKKO_PG_DSN, starting a private cluster if none does."""
    if answers(settings.pg_dsn):
        ensure_database(settings.pg_dsn)
        return status(settings)
    params = conninfo_to_dict(settings.pg_dsn)
    host, port = params.get("host", "127.0.0.1"), params.get("port", "5432")
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ServiceError(f"PostgreSQL at {redact(settings.pg_dsn)} does not answer and is not local: start that server")
    pgdata = data_dir(settings)
    settings.home.mkdir(parents=True, exist_ok=True)
    if not (pgdata / "PG_VERSION").exists():
        pgdata.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(pgdata, "postgres", "postgres")
        result = _as_postgres([_pg_bin("initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale"])
        if result.returncode:
            raise ServiceError(f"initdb failed: {result.stderr.strip().splitlines()[-1] if result.stderr else result.returncode}")
    result = _as_postgres([_pg_bin("pg_ctl"), "-D", str(pgdata), "-l", str(pgdata / "server.log"), "-w",
                           "-o", f"-p {port} -h 127.0.0.1 -k {pgdata}", "start"])
    if result.returncode:
        raise ServiceError(f"pg_ctl start failed (see {pgdata / 'server.log'}): {result.stderr.strip() or result.stdout.strip()}")
    ensure_database(settings.pg_dsn)
    return status(settings)


def down(settings: Settings) -> str:
    pgdata = data_dir(settings)
    if not (pgdata / "postmaster.pid").exists():
        return f"no private cluster is running in {pgdata}"
    result = _as_postgres([_pg_bin("pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"])
    if result.returncode:
        raise ServiceError(f"pg_ctl stop failed: {result.stderr.strip()}")
    return f"stopped the private cluster in {pgdata}"
