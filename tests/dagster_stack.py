"""A real dagster-webserver + dagster-daemon over the project, for the end-to-end test modules.

`dagster_stack()` gives the servers a PostgreSQL database, an AKKO_HOME and a DAGSTER_HOME of
their own (environment set with a MonkeyPatch, undone afterwards), starts Superset in the
background when .venv-superset exists, and on exit stops every process it (or `spawn`) started
and drops the database. Waiting for the code location is left to the caller (`wait_for_location`),
so other slow work can start while it loads.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import psycopg
import pytest
import requests
from psycopg import sql

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SERVER_DSN = os.environ.get("AKKO_TEST_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
AS_OF = "2026-11-30"
# Settings that would point the stack at shared services instead of its own AKKO_HOME.
SHARED_SETTINGS = ("AKKO_ICEBERG_WAREHOUSE", "AKKO_ICEBERG_CATALOG_URI", "AKKO_S3_ENDPOINT", "AKKO_PROFILE")
LOCATIONS = ("{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus locationOrLoadError { __typename "
             "... on RepositoryLocation { repositories { name } } ... on PythonError { message } } } } } }")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    """Stop a process a test started, with the children it spawned (its own process group)."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def gql(url: str, query: str, variables: Optional[dict] = None) -> dict[str, Any]:
    """POST one GraphQL operation (as the Dagster UI sends it) and return its data."""
    response = requests.post(url, json={"query": query, "variables": variables or {}}, timeout=60)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def start_superset(timeout: float) -> Optional[str]:
    """Superset for the dashboard asset, in the current AKKO_HOME on AKKO_SUPERSET_URL; None when not installed."""
    from akko_assets.bi import server

    if not (server.SUPERSET_VENV / "bin" / "superset").exists():
        return None
    server.superset_up(timeout=timeout)
    return server.superset_url()


def _recreate_database(name: str, create: bool = True) -> None:
    with psycopg.connect(f"{SERVER_DSN}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if create:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


@dataclass
class DagsterServers:
    tmp: Path
    logs: Path
    port: int
    dagster_home: Path
    akko_home: Path
    dsn: str
    superset: Future  # start_superset's result: the URL, or None without .venv-superset
    started: float  # time.monotonic() just before anything was started
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def graphql(self) -> str:
        return f"{self.base_url}/graphql"

    def log_tail(self, name: str, chars: int = 4000) -> str:
        return (self.logs / f"{name}.log").read_text()[-chars:]

    def spawn(self, name: str, cmd: list[str], *, cwd: Path = REPO, env: Optional[dict[str, str]] = None) -> subprocess.Popen:
        """Start a process in its own group, output to logs/<name>.log; stopped when the stack stops."""
        proc = subprocess.Popen(cmd, cwd=cwd, env=dict(os.environ) if env is None else env, start_new_session=True,
                                stdout=(self.logs / f"{name}.log").open("w"), stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def wait_for_location(self, timeout: float) -> tuple[str, str]:
        """(code location, repository) names once the webserver has loaded the workspace."""
        webserver = self.procs[0]
        deadline = time.monotonic() + timeout
        while True:
            assert webserver.poll() is None, self.log_tail("webserver")
            try:
                entries = gql(self.graphql, LOCATIONS)["workspaceOrError"]["locationEntries"]
            except requests.ConnectionError:
                entries = []
            for entry in entries:
                loaded = entry["locationOrLoadError"] or {}
                assert loaded.get("__typename") != "PythonError", loaded.get("message")
            if entries and all(e["loadStatus"] == "LOADED" and (e["locationOrLoadError"] or {}).get("__typename")
                               == "RepositoryLocation" for e in entries):
                loaded = entries[0]["locationOrLoadError"]
                return entries[0]["name"], loaded["repositories"][0]["name"]
            assert time.monotonic() < deadline, (f"the code location did not load within {timeout:.0f} s:\n"
                                                 + self.log_tail("webserver"))
            time.sleep(0.5)

    def with_bi(self, timeout: float = 300) -> bool:
        """Whether a Superset of the stack's own answers (waits for its start)."""
        return self.superset.result(timeout=timeout) is not None


@contextmanager
def dagster_stack(tmp: Path, db_prefix: str, *, rows: int, superset_timeout: float,
                  workspace: Union[Path, Callable[[Path], Path]] = REPO / "workspace.yaml",
                  unset: Iterable[str] = ()) -> Iterator[DagsterServers]:
    """Webserver and daemon started (not yet loaded: see `wait_for_location`), Superset starting.

    `workspace` is a workspace.yaml, or a function of `tmp` returning one (called once the
    environment is set). `unset` names further environment variables to clear.
    """
    from akko_assets.orchestration import prepare_dagster_home
    from akko_assets.settings import load_settings

    dbname = f"{db_prefix}_{os.getpid()}"
    _recreate_database(dbname)
    mp = pytest.MonkeyPatch()
    pool = ThreadPoolExecutor(max_workers=1)
    superset: Optional[Future] = None
    servers: Optional[DagsterServers] = None
    try:
        env = {
            "AKKO_HOME": str(tmp / "akko_home"),
            "AKKO_PG_DSN": f"{SERVER_DSN}/{dbname}",
            "AKKO_ROWS": str(rows),
            "AKKO_AS_OF": AS_OF,
            "AKKO_SEED": "42",
            "AKKO_SUPERSET_URL": f"http://127.0.0.1:{free_port()}",
        }
        for key, value in env.items():
            mp.setenv(key, value)
        for key in (*SHARED_SETTINGS, *unset):
            mp.delenv(key, raising=False)
        dagster_home = prepare_dagster_home(load_settings())
        mp.setenv("DAGSTER_HOME", str(dagster_home))
        logs = tmp / "logs"
        logs.mkdir()
        started = time.monotonic()
        superset = pool.submit(start_superset, superset_timeout)  # starts while the code location loads
        servers = DagsterServers(tmp, logs, free_port(), dagster_home, Path(env["AKKO_HOME"]), env["AKKO_PG_DSN"],
                                 superset, started)
        ws = str(workspace(tmp) if callable(workspace) else workspace)
        servers.spawn("webserver", [str(BIN / "dagster-webserver"), "-w", ws, "-h", "127.0.0.1", "-p", str(servers.port)])
        servers.spawn("daemon", [str(BIN / "dagster-daemon"), "run", "-w", ws])
        yield servers
    finally:
        for proc in servers.procs if servers else ():
            stop(proc)
        if superset is not None:
            from akko_assets.bi.server import superset_down

            try:
                superset.result(timeout=300)  # a Superset still starting must not outlive the stack
            except Exception:  # noqa: BLE001 - teardown: stop whatever did start
                pass
            superset_down()  # the one started here (pid file in this AKKO_HOME); no-op if none
        pool.shutdown()
        mp.undo()
        _recreate_database(dbname, create=False)
