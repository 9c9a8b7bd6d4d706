"""Run Superset (from .venv-superset) in the background on 127.0.0.1: up, down, status.

State lives under AKKO_HOME/superset: metadata DB, cache, secrets.json, superset.pid,
superset.log and a marker recording that `db upgrade` + `init` ran for this Superset version.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlparse

import requests

from akko_assets.settings import REPO_ROOT, ensure_home, load_settings

SUPERSET_VENV = Path(os.environ.get("AKKO_SUPERSET_VENV", "") or REPO_ROOT / ".venv-superset")
CONFIG_PATH = REPO_ROOT / "superset_assets" / "superset_config.py"
SECRETS_SCRIPT = REPO_ROOT / "superset_assets" / "make_secrets.py"
DEFAULT_URL = "http://127.0.0.1:8088"
SUPERSET_VERSION = "6.1.0"


class SupersetError(RuntimeError):
    """Superset could not be set up, started or reached; the message says what to do."""


@dataclass(frozen=True)
class SupersetStatus:
    url: str
    running: bool
    healthy: bool
    pid: int | None
    log: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def superset_url() -> str:
    return (os.environ.get("AKKO_SUPERSET_URL", "").strip() or DEFAULT_URL).rstrip("/")


def superset_home() -> Path:
    return ensure_home(load_settings()) / "superset"


def admin_credentials(home: Path | None = None) -> tuple[str, str]:
    path = (home or superset_home()) / "secrets.json"
    if not path.exists():
        raise SupersetError(f"{path} is missing: run `akko superset up` (it generates the admin password)")
    data = json.loads(path.read_text())
    return data.get("admin_user", "admin"), data["admin_password"]


def is_healthy(url: str | None = None, timeout: float = 2.0) -> bool:
    try:
        return requests.get(f"{url or superset_url()}/health", timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def superset_status() -> SupersetStatus:
    home = superset_home()
    pid = _live_pid(home)
    url = superset_url()
    return SupersetStatus(url=url, running=pid is not None, healthy=is_healthy(url), pid=pid, log=str(home / "superset.log"))


def superset_up(timeout: float = 120.0) -> SupersetStatus:
    """Prepare the metadata DB once, start gunicorn if not running, wait for /health."""
    url = superset_url()
    home = superset_home()
    if _live_pid(home) is not None and is_healthy(url):
        return superset_status()
    if is_healthy(url):
        raise SupersetError(f"something else already answers at {url}: stop it or set AKKO_SUPERSET_URL to a free port")
    bin_dir = _venv_bin()
    env = _env(home)
    _run([str(bin_dir / "python"), str(SECRETS_SCRIPT), str(home.parent)], env, home)

    marker = home / f".initialized-{SUPERSET_VERSION}"
    if not marker.exists():
        user, password = admin_credentials(home)
        _run([str(bin_dir / "superset"), "db", "upgrade"], env, home)
        _run(
            [str(bin_dir / "superset"), "fab", "create-admin", "--username", user, "--firstname", "AKKO",
             "--lastname", "Admin", "--email", f"{user}@akko.local", "--password", password],
            env, home,
        )
        _run([str(bin_dir / "superset"), "init"], env, home)
        marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    parsed = urlparse(url)
    bind = f"{parsed.hostname or '127.0.0.1'}:{parsed.port or 8088}"
    log = open(home / "superset.log", "ab")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen(
        [str(bin_dir / "gunicorn"), "-w", "1", "-k", "gthread", "--threads", "8", "--timeout", "120",
         "-b", bind, "--pid", str(home / "superset.pid"), "superset.app:create_app()"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=home,
        start_new_session=True,  # survives the CLI that started it; stopped by superset_down
    )
    log.close()
    (home / "superset.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SupersetError(f"Superset exited with code {proc.returncode} while starting:\n{_tail(home / 'superset.log')}")
        if is_healthy(url, timeout=1.0):
            return superset_status()
        time.sleep(0.25)
    superset_down()
    raise SupersetError(f"Superset did not answer {url}/health within {timeout:.0f} s:\n{_tail(home / 'superset.log')}")


def superset_down(timeout: float = 30.0) -> SupersetStatus:
    """Stop the gunicorn this module started (by its pid file); no-op when not running."""
    home = superset_home()
    pid = _live_pid(home)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)  # gunicorn's master stops its workers on TERM
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
        _reap(pid)
    (home / "superset.pid").unlink(missing_ok=True)
    return superset_status()


# -- helpers -------------------------------------------------------------------------------


def _venv_bin() -> Path:
    bin_dir = SUPERSET_VENV / "bin"
    if not (bin_dir / "superset").exists():
        raise SupersetError(f"Superset is not installed in {SUPERSET_VENV}: run scripts/setup_superset.sh")
    return bin_dir


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AKKO_HOME=str(home.parent),
        SUPERSET_CONFIG_PATH=str(CONFIG_PATH),
        SUPERSET_HOME=str(home),  # Superset's own DATA_DIR default is ~/.superset
        FLASK_APP="superset",
        PYTHONUNBUFFERED="1",
    )
    # The core venv's variables must not leak into Superset's interpreter.
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    return env


def _run(cmd: list[str], env: dict[str, str], home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(cmd, env=env, cwd=home, capture_output=True, text=True, check=False)
    with open(home / "setup.log", "a") as fh:
        fh.write(f"$ {' '.join(cmd[:3])}\n{result.stdout}{result.stderr}\n")
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-25:])
        raise SupersetError(f"`{' '.join(cmd[:3])}` failed with code {result.returncode}:\n{tail}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited child not yet reaped) counts as gone; /proc exists on Linux only.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _live_pid(home: Path) -> int | None:
    """The pid from superset.pid if it is still our gunicorn (not a recycled pid)."""
    try:
        pid = int((home / "superset.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    if not _alive(pid):
        return None
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists() and b"superset.app:create_app" not in cmdline.read_bytes():
        return None
    return pid


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


if __name__ == "__main__":  # python -m akko_assets.bi.server up|down|status
    action = sys.argv[1] if len(sys.argv) > 1 else "status"
    fn = {"up": superset_up, "down": superset_down, "status": superset_status}[action]
    print(json.dumps(fn().as_dict(), indent=2))
