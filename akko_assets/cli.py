"""`akko`: the command line of the platform. Commands import their stage lazily, so `akko --help`
stays fast and a broken optional stage never breaks the others."""

from __future__ import annotations

import sys
from typing import Optional

import typer

app = typer.Typer(help="AKKO Banking Fraud: an offline-first fraud-analytics lakehouse.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
services_app = typer.Typer(help="The local PostgreSQL the platform reads and writes.", no_args_is_help=True)
superset_app = typer.Typer(help="The local Superset server (own virtualenv).", no_args_is_help=True)
app.add_typer(services_app, name="services")
app.add_typer(superset_app, name="superset")


TRACEPARENT_HELP = "W3C traceparent joining this call to a caller's trace (e.g. a Dagster run's `traceparent` tag)."


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _traceparent(value: Optional[str]) -> Optional[str]:
    from akko_assets.observability.tracing import check_traceparent

    try:
        return check_traceparent(value)
    except ValueError as exc:
        _fail(str(exc), code=2)


def _settings():
    from akko_assets.settings import SettingsError, ensure_home, load_settings

    try:
        settings = load_settings()
        ensure_home(settings)
        return settings
    except SettingsError as exc:
        _fail(str(exc))


@services_app.command("up")
def services_up() -> None:
    """Make sure PostgreSQL answers at AKKO_PG_DSN (starts a private cluster under AKKO_HOME/pg if not)."""
    from akko_assets.services import ServiceError, up

    try:
        typer.echo(up(_settings()))
    except ServiceError as exc:
        _fail(str(exc))


@services_app.command("down")
def services_down() -> None:
    """Stop the private PostgreSQL cluster (an external server is left alone)."""
    from akko_assets.services import down

    typer.echo(down(_settings()))


@services_app.command("status")
def services_status() -> None:
    from akko_assets.services import status

    typer.echo(status(_settings()))


@app.command()
def demo(
    rows: Optional[int] = typer.Option(None, help="Rows to generate (default AKKO_ROWS=100000)."),
) -> None:
    """Materialize every asset once, in process, on the embedded profile, and print a summary."""
    from akko_assets.demo import run_demo

    settings = _settings()
    code = run_demo(settings, rows=rows)
    raise typer.Exit(code)


@app.command()
def simulate(rows: int = typer.Option(1000, help="How many new transactions to append.")) -> None:
    """Append live-looking transactions to akko.raw_transactions (the refresh sensor picks them up)."""
    from akko_assets.ingest.seed import seed_transactions
    from akko_assets.resources.postgres import SourceUnavailable

    settings = _settings()
    try:
        result = seed_transactions(settings.pg_dsn, rows, settings.seed + 1, settings.as_of, mode="append")
    except SourceUnavailable as exc:
        _fail(str(exc))
    typer.echo(f"appended {result.rows_written} transactions ({result.fraud_rows} fraudulent); "
               f"akko.raw_transactions now has {result.rows_total} rows")


@app.command()
def sql(
    query: str = typer.Argument(..., help="One SELECT over the curated tables."),
    user: Optional[str] = typer.Option(None, help="Realm user to run as (e.g. carol)."),
    token: Optional[str] = typer.Option(None, help="A JWT instead of --user."),
    as_json: bool = typer.Option(False, "--json", help="Print {columns, rows} as JSON."),
    traceparent: Optional[str] = typer.Option(None, envvar="TRACEPARENT", help=TRACEPARENT_HELP),
) -> None:
    """Run a governed query: masks and row filters of the user's role apply."""
    from akko_assets.governance.cli import run_sql_command
    from akko_assets.observability.tracing import attached

    with attached(_traceparent(traceparent)):
        code = run_sql_command(query, user=user, token=token, as_json=as_json)
    raise typer.Exit(code)


@app.command()
def ask(
    question: str = typer.Argument(..., help='A question, e.g. "Which regions saw a fraud rate above 5 % last week?"'),
    user: Optional[str] = typer.Option(None, help="Realm user to ask as (e.g. carol)."),
    token: Optional[str] = typer.Option(None, help="A JWT instead of --user."),
    as_json: bool = typer.Option(False, "--json", help="Print {answer, sql, columns, rows} as JSON."),
    traceparent: Optional[str] = typer.Option(None, envvar="TRACEPARENT", help=TRACEPARENT_HELP),
) -> None:
    """Ask ADEN a question over the curated layer; answered as the asking user (governed)."""
    from akko_assets.aden import ask_command

    raise typer.Exit(ask_command(question, user=user, token=token, as_json=as_json, traceparent=_traceparent(traceparent)))


@app.command("trace")
def trace_cmd(run: str = typer.Argument("last", help="A Dagster run id (or prefix), or `last`.")) -> None:
    """Print a run's span tree (Airflow, Dagster run and steps, engine queries, ADEN) with durations."""
    from akko_assets.observability.tree import TraceNotFound, trace_command

    _settings()  # AKKO_HOME checked like every command
    try:
        typer.echo(trace_command(run))
    except TraceNotFound as exc:
        _fail(str(exc))


@app.command("token")
def token_cmd(user: str = typer.Option(..., help="Realm user, e.g. carol.")) -> None:
    """Print a locally signed JWT (Keycloak's shape) for a realm user."""
    from akko_assets.governance.cli import token_command
    from akko_assets.governance.errors import AccessDenied

    try:
        typer.echo(token_command(user))
    except AccessDenied as exc:
        _fail(str(exc), code=2)


@superset_app.command("up")
def superset_up() -> None:
    """Start Superset on 127.0.0.1:8088 in the background and wait until it is healthy."""
    from akko_assets.bi.server import SupersetError
    from akko_assets.bi.server import superset_up as up

    try:
        typer.echo(up().as_dict())
    except SupersetError as exc:
        _fail(str(exc))


@superset_app.command("down")
def superset_down() -> None:
    from akko_assets.bi.server import superset_down as down

    typer.echo(down().as_dict())


@superset_app.command("status")
def superset_status() -> None:
    from akko_assets.bi.server import superset_status as status

    typer.echo(status().as_dict())


@app.command("superset-bundle")
def superset_bundle(
    out: str = typer.Option(..., help="File for the dashboard import zip."),
    profile: str = typer.Option("local", help="local: the serving DuckDB file; k8s: Trino as svc-superset (TRINO_HOST/PORT/CATALOG)."),
) -> None:
    """Write the "AKKO Banking Fraud" Superset import bundle built from superset_assets/."""
    from pathlib import Path

    from akko_assets.bi.bundle import build_bundle, trino_source_uri
    from akko_assets.bi.serving import serving_db_path

    if profile not in ("local", "k8s"):
        _fail(f"--profile {profile!r} is unknown: use local or k8s")
    from akko_assets.governance import QueryError

    try:
        source = trino_source_uri() if profile == "k8s" else serving_db_path(_settings())
    except QueryError as exc:  # a TRINO_* setting the executor could not use either
        _fail(str(exc))
    info = build_bundle(Path(out), source)
    typer.echo(f"wrote {info.path} ({len(info.chart_uuids)} charts) reading {source}")


@app.command("trino-udfs")
def trino_udfs(
    out: str = typer.Option("-", help="File for the CREATE FUNCTION statements ('-' = stdout)."),
    catalog: str = typer.Option("udf", help="Trino catalog that stores functions (memory or hive connector)."),
    schema: str = typer.Option("akko", help="Schema inside that catalog."),
) -> None:
    """Write Trino CREATE FUNCTION statements for akko_ai_anomaly / akko_ai_sentiment (production model embedded)."""
    from akko_assets.enrich.udfs import production_model_data
    from trino_udfs.trino_sql import trino_create_function_statements

    statements = trino_create_function_statements(production_model_data(_settings()), catalog=catalog, schema=schema)
    text = ";\n\n".join(statements) + ";\n"
    if out == "-":
        sys.stdout.write(text)
    else:
        with open(out, "w") as fh:
            fh.write(text)
        typer.echo(f"wrote {len(statements)} statements to {out}")


if __name__ == "__main__":
    app()
