"""The local Dagster instance: DAGSTER_HOME = $AKKO_HOME/dagster with the project's dagster.yaml."""

from __future__ import annotations

from pathlib import Path

from akko_assets.settings import Settings, SettingsError, ensure_home

TEMPLATE = Path(__file__).with_name("dagster.yaml")


def dagster_home(settings: Settings) -> Path:
    return settings.home / "dagster"


def prepare_dagster_home(settings: Settings) -> Path:
    """Write dagster.yaml into $AKKO_HOME/dagster (idempotent) and return that folder for DAGSTER_HOME.

    The file is rewritten only when its content differs, so an instance that is running keeps
    its config file untouched; run history (SQLite under the same folder) is never removed.
    """
    ensure_home(settings)
    home = dagster_home(settings)
    target = home / "dagster.yaml"
    wanted = TEMPLATE.read_text()
    try:
        home.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_text() != wanted:
            tmp = target.with_suffix(".yaml.tmp")
            tmp.write_text(wanted)
            tmp.replace(target)  # atomic: a starting webserver never reads half a file
    except OSError as exc:
        raise SettingsError(f"cannot write {target} ({exc.strerror}): point AKKO_HOME at a writable folder") from None
    _create_storage(home)
    return home


def _create_storage(home: Path) -> None:
    """Create the SQLite storage now, in one process.

    The webserver, the daemon and their code servers all open the instance when they start; on a
    fresh folder each would create and alembic-stamp the same SQLite files at once, which can leave
    two heads in `alembic_version` ("has more than one head present") and a broken instance.
    """
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs(limit=1)
        instance.all_instigator_state()
        instance.get_latest_materialization_event(dg.AssetKey("akko_probe"))

