"""Settings read from environment variables, with defaults that work on a laptop.

Every stage reads its configuration from here, so the local and k8s profiles differ only in
environment, never in asset code.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt"
REGIONS = ("EU", "NA", "APAC", "LATAM", "MEA")
MASK = "***MASKED***"


class SettingsError(ValueError):
    """A setting has a value the platform cannot use; the message says which and how to fix it."""


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _int_env(name: str, default: int, minimum: int = 0) -> int:
    raw = _env(name, str(default))
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number: set it to e.g. {default}") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} must be at least {minimum}")
    return value


def _date_env(name: str) -> dt.date:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return dt.datetime.now(dt.timezone.utc).date()
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a date: use YYYY-MM-DD, e.g. 2026-11-30") from None


@dataclass(frozen=True)
class Settings:
    profile: str
    home: Path
    pg_dsn: str
    rows: int
    seed: int
    as_of: dt.date
    iceberg_warehouse: str
    iceberg_catalog_uri: str
    replicator: str

    @property
    def pg_admin_dsn(self) -> str:
        """The same server, database `postgres`: used to create the project database."""
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict(self.pg_dsn)
        params["dbname"] = "postgres"
        return make_conninfo(**params)

    @property
    def serving_dir(self) -> Path:
        return self.home / "serving"


def load_settings() -> Settings:
    profile = _env("AKKO_PROFILE", "local")
    if profile not in ("local", "k8s"):
        raise SettingsError(f"AKKO_PROFILE={profile!r} is unknown: use 'local' (default) or 'k8s'")
    home = Path(_env("AKKO_HOME", str(REPO_ROOT / ".akko"))).expanduser().resolve()
    pg_dsn = _env("AKKO_PG_DSN", "postgresql://postgres@127.0.0.1:5432/akko")
    replicator = _env("AKKO_REPLICATOR", "spark" if profile == "k8s" else "pyiceberg")
    if replicator not in ("pyiceberg", "spark"):
        raise SettingsError(f"AKKO_REPLICATOR={replicator!r} is unknown: use 'pyiceberg' or 'spark'")
    return Settings(
        profile=profile,
        home=home,
        pg_dsn=pg_dsn,
        rows=_int_env("AKKO_ROWS", 100_000, minimum=1),
        seed=_int_env("AKKO_SEED", 42),
        as_of=_date_env("AKKO_AS_OF"),
        # The Iceberg catalog tables live in the source PostgreSQL by default, so Spark's
        # JdbcCatalog and pyiceberg's SqlCatalog see one table.
        iceberg_catalog_uri=_env("AKKO_ICEBERG_CATALOG_URI", pg_dsn.replace("postgresql://", "postgresql+psycopg://", 1)),
        iceberg_warehouse=_env("AKKO_ICEBERG_WAREHOUSE", (home / "warehouse").as_uri()),
        replicator=replicator,
    )


def ensure_home(settings: Settings) -> Path:
    """Create AKKO_HOME if needed, failing with a clear message when it cannot be written."""
    try:
        settings.home.mkdir(parents=True, exist_ok=True)
        probe = settings.home / ".write-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise SettingsError(
            f"AKKO_HOME={settings.home} is not writable ({exc.strerror}): "
            "point AKKO_HOME at a writable folder"
        ) from None
    return settings.home
