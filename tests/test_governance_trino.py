"""The k8s profile's governed path: the executor runs on Trino as the caller.

No Trino server can run here, so the real `trino` client talks to tests/trino_standin.py, which
speaks Trino's client protocol and runs what it receives (transpiled back to DuckDB) over a real
DuckDB file. The tests check what reaches Trino (the caller's user or token, the trace context,
Trino-dialect SQL that is already masked) and that the adversarial corpus cannot leak on this path
either.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import sqlglot

pytest.importorskip("trino")

from akko_assets.governance import AccessDenied, GovernedExecutor, Identity, PolicyEngine, QueryError, identity_for_user
from akko_assets.governance.cli import EXIT_DENIED, EXIT_OK, run_sql_command
from akko_assets.governance.executor import DuckDBEngine, engine_for_profile
from akko_assets.governance.identity import issue_token, verify_token
from akko_assets.governance.sample import build_sample_curated
from akko_assets.governance.trino import TrinoEngine
from akko_assets.observability import tracing
from akko_assets.settings import MASK
from test_governance_executor import ALLOWED, MASKED, MASKED_ROLES, ORACLES, D, F, cells, ident, leaks
from trino_standin import TrinoStandIn


@pytest.fixture(scope="module")
def curated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trino") / "curated.duckdb"
    with duckdb.connect(str(path)) as con:
        build_sample_curated(con, rows=400, customers=60)
    return path


@pytest.fixture(scope="module")
def secrets(curated: Path) -> dict[str, set[str]]:
    with duckdb.connect(str(curated), read_only=True) as con:
        pans = {r[0] for r in con.execute("SELECT DISTINCT card_pan FROM marts.dim_customers").fetchall()}
        names = {r[0] for r in con.execute("SELECT DISTINCT customer_name FROM marts.dim_customers").fetchall()}
    return {"pans": pans, "names": names}


@pytest.fixture(scope="module")
def standin(curated: Path) -> Iterator[TrinoStandIn]:
    server = TrinoStandIn(lambda: duckdb.connect(str(curated), read_only=True))
    yield server
    server.close()


@pytest.fixture(scope="module")
def engine(standin: TrinoStandIn) -> TrinoEngine:
    return TrinoEngine(host="127.0.0.1", port=standin.port, catalog="iceberg", schema="marts")


@pytest.fixture(scope="module")
def executor(engine: TrinoEngine) -> GovernedExecutor:
    # ADEN and the dashboard write DuckDB SQL; the executor writes Trino SQL from it.
    return GovernedExecutor(engine, PolicyEngine())


@pytest.fixture(scope="module")
def local(curated: Path) -> GovernedExecutor:
    return GovernedExecutor(lambda: duckdb.connect(str(curated), read_only=True), PolicyEngine())


def test_query_runs_as_the_caller_with_masks_already_applied(executor, standin) -> None:
    before = len(standin.received)
    result = executor.execute(f"SELECT customer_id, card_pan, customer_name FROM {D} ORDER BY customer_id", ident("akko-analyst"))
    assert len(result.rows) == 60
    assert {row[1] for row in result.rows} == {MASK}
    assert all(row[2] != MASK for row in result.rows)
    sent = standin.received[before:]
    assert {r.user for r in sent} == {"user-akko-analyst"}  # never a shared service user
    assert {(r.catalog, r.schema, r.source) for r in sent} == {("iceberg", "marts", "akko-governed-executor")}
    query = sent[-1].sql
    # What Trino receives is Trino SQL, already masked: OPA masks it a second time there.
    sqlglot.parse_one(query, read="trino")
    assert f"'{MASK}' AS \"card_pan\"" in query and 'FROM "marts"."dim_customers"' in query
    assert all(r.authorization is None for r in sent)  # plain HTTP: the name, never a token in clear


def test_trino_matches_the_local_engine(executor, local) -> None:
    """Same question, same role: DuckDB locally and Trino (stand-in) answer the same rows."""
    sql = (f"SELECT region, count(*) AS n, count(DISTINCT card_pan) AS pans, round(sum(amount), 2) AS total "
           f"FROM {F} GROUP BY region ORDER BY region")
    for role in ("akko-admin", "akko-analyst", "akko-viewer"):
        trino_rows = [(r, n, p, float(t)) for r, n, p, t in executor.execute(sql, ident(role)).rows]
        duck_rows = [(r, n, p, float(t)) for r, n, p, t in local.execute(sql, ident(role)).rows]
        assert trino_rows == duck_rows and trino_rows, role
    viewer_regions = {r[0] for r in executor.execute(sql, ident("akko-viewer")).rows}
    assert viewer_regions <= {"EU", "APAC"}


def test_types_survive_the_protocol(executor) -> None:
    row = executor.execute(f"SELECT transaction_id, amount, ts, is_fraud FROM {F} ORDER BY transaction_id LIMIT 1",
                           ident("akko-admin")).rows[0]
    import datetime as dt
    import decimal

    assert isinstance(row[1], (decimal.Decimal, float)) and isinstance(row[2], dt.datetime) and isinstance(row[3], bool)


@pytest.mark.parametrize("sql", ALLOWED)
@pytest.mark.parametrize("role", MASKED_ROLES)
def test_adversarial_corpus_does_not_leak_through_trino(executor, secrets, role: str, sql: str) -> None:
    try:
        result = executor.execute(sql, ident(role))
    except (QueryError, AccessDenied) as exc:  # DuckDB-only syntax may not reach Trino; no leak in errors
        assert not leaks([str(exc)], secrets, MASKED[role]), str(exc)
        return
    found = leaks(cells(result.rows) + result.columns, secrets, MASKED[role])
    assert not found, f"{role} recovered {found[:3]} with {sql!r} through Trino"


def test_corpus_mostly_reaches_trino_and_admin_sees_clear_values(executor, secrets) -> None:
    """The no-leak test above is not vacuous: most of the corpus runs on this path, and as admin
    the same queries do return clear PANs and names."""
    ran = revealing = 0
    for sql in ALLOWED:
        try:
            result = executor.execute(sql, ident("akko-admin"))
        except (QueryError, AccessDenied):
            continue
        ran += 1
        revealing += bool(leaks(cells(result.rows), secrets, {"card_pan", "customer_name"}))
    assert ran >= 0.7 * len(ALLOWED), f"only {ran}/{len(ALLOWED)} corpus queries ran through Trino"
    assert revealing >= 40


@pytest.mark.parametrize(
    "role,sql,expected",
    [(role, sql, expected) for role in MASKED_ROLES for sql, expected, needs in ORACLES
     if needs <= MASKED[role] and expected is not None and "SIMILAR TO" not in sql],
)
def test_oracles_see_only_the_mask_through_trino(executor, role: str, sql: str, expected) -> None:
    assert executor.execute(sql, ident(role)).rows == expected


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM TABLE(postgresql.system.query(query => 'SELECT card_pan FROM akko.raw_transactions'))",
        "SELECT * FROM system.runtime.queries",
        "SELECT * FROM iceberg.marts.dim_customers",
        'SELECT * FROM marts."dim_customers$snapshots"',
        "SELECT * FROM marts.dim_customers FOR VERSION AS OF 1",
        "SELECT * FROM information_schema.columns",
        "SHOW TABLES",
        "EXECUTE stmt",
        "CREATE TABLE marts.copy AS SELECT * FROM marts.dim_customers",
        "SELECT 1; SELECT 2",
    ],
)
def test_trino_escape_hatches_are_denied_before_trino_is_called(engine, standin, sql: str) -> None:
    ex = GovernedExecutor(engine, PolicyEngine(), read_dialect="trino")
    before = len(standin.received)
    with pytest.raises(AccessDenied):
        ex.execute(sql, ident("akko-user"))
    assert len(standin.received) == before


def test_limit_stops_the_query_on_the_cluster(executor, standin) -> None:
    result = executor.execute(f"SELECT * FROM {F}", ident("akko-analyst"), limit=7)
    assert len(result.rows) == 7
    assert standin.cancelled, "the rest of the query was not cancelled"


def test_trace_context_reaches_trino(executor, standin, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AKKO_HOME", str(tmp_path))  # spans go to this test's own file
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    tracing.reset()
    try:
        with tracing.span("test.parent", tracing.SERVICE_ADEN) as parent:
            before = len(standin.received)
            executor.execute(f"SELECT count(*) FROM {D}", ident("akko-user"))
            trace_id = format(parent.get_span_context().trace_id, "032x")
    finally:
        tracing.reset()
    headers = [r.traceparent for r in standin.received[before:]]
    assert headers and all(h and h.split("-")[1] == trace_id for h in headers), headers


def test_trino_permission_denied_is_access_denied(engine, standin) -> None:
    standin.deny_users.add("user-akko-viewer")
    try:
        with pytest.raises(AccessDenied, match="Trino denied the query"):
            GovernedExecutor(engine, PolicyEngine()).execute(f"SELECT * FROM {D}", ident("akko-viewer"))
    finally:
        standin.deny_users.discard("user-akko-viewer")


def test_missing_table_and_bad_sql_are_query_errors(executor) -> None:
    with pytest.raises(QueryError, match="query failed"):
        executor.execute(f"SELECT no_such_column FROM {D}", ident("akko-analyst"))


def test_unreachable_trino_names_the_fix(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ex = GovernedExecutor(TrinoEngine(host="127.0.0.1", port=port, request_timeout=5), PolicyEngine())
    with pytest.raises(QueryError, match=r"cannot reach Trino at http://127.0.0.1:\d+.*TRINO_HOST"):
        ex.execute(f"SELECT * FROM {D}", ident("akko-analyst"))


def test_https_forwards_the_verified_token(akko_env) -> None:
    """Over HTTPS Trino authenticates the caller itself: the JWT is what goes on the wire."""
    token = issue_token("carol")
    identity = verify_token(token)
    assert identity.token == token and identity == identity_for_user("carol")  # token not part of equality
    session = TrinoEngine(host="trino.example", port=8443, http_scheme="https").open(identity)
    try:
        connection = session.connection
        assert connection.user == "carol"
        assert connection.auth is not None and connection.auth.token == token
    finally:
        session.close()
    plain = TrinoEngine(host="trino.example").open(identity)
    try:
        assert plain.connection.auth is None and plain.connection.user == "carol"
    finally:
        plain.close()


def test_settings_from_environment() -> None:
    engine = TrinoEngine.from_env({"TRINO_HOST": "trino", "TRINO_PORT": "8443", "TRINO_HTTP_SCHEME": "HTTPS",
                                   "TRINO_VERIFY": "/etc/ca.pem", "TRINO_CATALOG": "lake"})
    assert (engine.url, engine.catalog, engine.schema, engine.verify) == ("https://trino:8443", "lake", "marts", "/etc/ca.pem")
    for env, message in [({}, "set TRINO_HOST"), ({"TRINO_HOST": "t", "TRINO_PORT": "http"}, "not a port number"),
                         ({"TRINO_HOST": "t", "TRINO_HTTP_SCHEME": "ftp"}, "use http or https")]:
        with pytest.raises(QueryError, match=message):
            TrinoEngine.from_env(env)


def test_profile_picks_the_engine(monkeypatch) -> None:
    monkeypatch.setenv("TRINO_HOST", "trino")
    assert isinstance(engine_for_profile("k8s", lambda: None), TrinoEngine)
    assert isinstance(engine_for_profile("local", lambda: None), DuckDBEngine)


def test_cli_reads_trino_sql_on_the_k8s_profile(engine, standin, capsys) -> None:
    code = run_sql_command("SELECT card_pan FROM marts.dim_customers LIMIT 3", user="dave", as_json=True, connect=engine)
    assert code == EXIT_OK
    assert capsys.readouterr().out.count(MASK) == 3
    assert standin.received[-1].user == "dave"
    # Trino's own syntax is read as such (DuckDB would not parse this cast form).
    code = run_sql_command("SELECT CAST(amount AS DECIMAL(12,2)) FROM marts.fct_transactions LIMIT 1", user="dave",
                           connect=engine)
    assert code == EXIT_OK
    assert run_sql_command("SELECT * FROM system.runtime.nodes", user="dave", connect=engine) == EXIT_DENIED
    assert "denied:" in capsys.readouterr().err


def test_identity_without_role_never_reaches_trino(executor, standin) -> None:
    before = len(standin.received)
    with pytest.raises(AccessDenied, match="no akko role"):
        executor.execute(f"SELECT customer_id FROM {D}", Identity("mallory", ["offline_access"]))
    assert len(standin.received) == before


def test_k8s_profile_accepts_tokens_not_user_names(akko_env, engine, standin, monkeypatch, capsys) -> None:
    """On k8s `--user NAME` would let anyone act as anyone: identities come from tokens there."""
    token = issue_token("dave")  # signed before switching profile: the local key stands in for Keycloak's
    monkeypatch.setenv("AKKO_PROFILE", "k8s")
    before = len(standin.received)
    assert run_sql_command("SELECT 1 FROM marts.dim_customers LIMIT 1", user="alice", connect=engine) == EXIT_DENIED
    assert "--token" in capsys.readouterr().err and len(standin.received) == before
    monkeypatch.setenv("AKKO_PROFILE", "local")
    assert run_sql_command("SELECT count(*) FROM marts.dim_customers", token=token, connect=engine) == EXIT_OK
    assert standin.received[-1].user == "dave"
