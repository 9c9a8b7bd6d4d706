"""The governed executor against a real DuckDB file: the RBAC matrix, the viewer row filter and an
adversarial corpus that tries to recover card numbers and customer names."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from akko_assets.governance import AccessDenied, GovernedExecutor, Identity, PolicyEngine, QueryError
from akko_assets.governance.sample import build_sample_curated, luhn_valid
from akko_assets.settings import MASK

TABLES = ("banking.transactions", "marts.fct_transactions", "marts.enriched_transactions", "marts.dim_customers")
ROLES = ("akko-admin", "akko-engineer", "akko-analyst", "akko-user", "akko-viewer")
# DESIGN.md "Governance", written out independently of the policy data.
MASKED = {
    "akko-admin": set(),
    "akko-engineer": set(),
    "akko-analyst": {"card_pan"},
    "akko-user": {"card_pan", "customer_name"},
    "akko-viewer": {"card_pan", "customer_name"},
}
ORDER_KEY = {t: "transaction_id" for t in TABLES} | {"marts.dim_customers": "customer_id"}


@pytest.fixture(scope="module")
def curated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("governance") / "curated.duckdb"
    con = duckdb.connect(str(path))
    build_sample_curated(con, rows=400, customers=60)
    con.execute("CREATE SCHEMA staging")
    con.execute("CREATE TABLE staging.stg_secrets AS SELECT customer_name, card_pan FROM marts.dim_customers")
    con.execute("CREATE TABLE main.dim_customers AS SELECT * FROM marts.dim_customers")
    con.close()
    return path


@pytest.fixture(scope="module")
def raw(curated: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(curated), read_only=True)
    yield con
    con.close()


@pytest.fixture(scope="module")
def secrets(raw: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    pans = {r[0] for r in raw.execute("SELECT DISTINCT card_pan FROM marts.dim_customers").fetchall()}
    names = {r[0] for r in raw.execute("SELECT DISTINCT customer_name FROM marts.dim_customers").fetchall()}
    assert len(pans) == 60 and all(luhn_valid(p) and len(p) == 16 for p in pans)
    return {"pans": pans, "names": names}


@pytest.fixture(scope="module")
def executor(curated: Path) -> GovernedExecutor:
    return GovernedExecutor(lambda: duckdb.connect(str(curated), read_only=True), PolicyEngine())


def ident(role: str) -> Identity:
    return Identity(f"user-{role}", [role])


# --- leak detection -----------------------------------------------------------------------------

_DIGITS16 = re.compile(r"(?<!\d)\d{16}(?!\d)")


def leaks(texts: list[str], secrets: dict[str, set[str]], masked: set[str]) -> list[str]:
    """Every clear PAN / name fragment found in `texts` (cells or error messages)."""
    found = []
    pan_fragments = {p[i : i + 8] for p in secrets["pans"] for i in range(9)}
    pan_fragments |= {f[::-1] for f in pan_fragments}
    name_tokens = {t.lower() for n in secrets["names"] for t in n.split()}
    name_tokens |= {t[::-1] for t in name_tokens}
    for text in texts:
        if "card_pan" in masked:
            found += [m for m in _DIGITS16.findall(text) if luhn_valid(m)]
            digits = re.sub(r"\D", "", text)
            found += [f for f in pan_fragments if f in digits and len(digits) <= 40]
        if "customer_name" in masked:
            lowered = text.lower()
            found += [t for t in name_tokens if t in lowered]
    return found


def cells(rows: list[tuple]) -> list[str]:
    out = []
    for row in rows:
        for value in row:
            out.append(repr(value))
    return out


# --- the matrix ---------------------------------------------------------------------------------


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("role", ROLES)
def test_matrix_every_column(executor: GovernedExecutor, raw: duckdb.DuckDBPyConnection, role: str, table: str) -> None:
    key = ORDER_KEY[table]
    got = executor.execute(f"SELECT * FROM {table} ORDER BY {key}", ident(role))
    columns = [r[0] for r in raw.execute(f"DESCRIBE {table}").fetchall()]
    assert got.columns == columns
    where = "WHERE region IN ('EU','APAC') AND status = 'active'" if role == "akko-viewer" else ""
    expected = raw.execute(f"SELECT * FROM {table} {where} ORDER BY {key}").fetchall()
    assert len(got.rows) == len(expected) > 0
    for i, column in enumerate(columns):
        values = [row[i] for row in got.rows]
        if column in MASKED[role]:
            assert set(values) == {MASK}, f"{role} sees {table}.{column} in clear"
        else:
            assert values == [row[i] for row in expected], f"{role} gets wrong values for {table}.{column}"


@pytest.mark.parametrize("table", TABLES)
def test_viewer_row_filter(executor: GovernedExecutor, raw: duckdb.DuckDBPyConnection, table: str) -> None:
    got = executor.execute(f"SELECT region, status FROM {table}", ident("akko-viewer"))
    assert got.rows and {r[0] for r in got.rows} <= {"EU", "APAC"} and {r[1] for r in got.rows} == {"active"}
    total = raw.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    visible = raw.execute(f"SELECT count(*) FROM {table} WHERE region IN ('EU','APAC') AND status = 'active'").fetchone()[0]
    assert len(got.rows) == visible < total
    # The data really holds rows the viewer must not see.
    assert raw.execute(f"SELECT count(DISTINCT region), count(DISTINCT status) FROM {table}").fetchone() == (5, 3)


def test_viewer_cannot_escape_row_filter(executor: GovernedExecutor) -> None:
    viewer = ident("akko-viewer")
    for sql in [
        "SELECT count(*) FROM marts.fct_transactions WHERE region = 'NA' OR true",
        "SELECT count(*) FROM marts.fct_transactions f WHERE f.status <> 'active'",
        "SELECT count(*) FROM (SELECT * FROM banking.transactions UNION ALL SELECT * FROM banking.transactions) WHERE region = 'LATAM'",
        "WITH all_rows AS (SELECT * FROM transactions) SELECT count(*) FROM all_rows WHERE status = 'closed'",
    ]:
        rows = executor.execute(sql, viewer).rows
        if "OR true" in sql:
            assert rows[0][0] == executor.execute("SELECT count(*) FROM marts.fct_transactions", viewer).rows[0][0]
        else:
            assert rows == [(0,)], sql


# --- adversarial corpus -------------------------------------------------------------------------

D, F, E, B = "marts.dim_customers", "marts.fct_transactions", "marts.enriched_transactions", "banking.transactions"

ALLOWED = [
    f"SELECT card_pan, customer_name FROM {F}",
    f"SELECT * FROM {F}",
    "SELECT * FROM fct_transactions",
    "SELECT * FROM transactions",
    f"SELECT * FROM {B}",
    f"SELECT * FROM {D}",
    f"SELECT * FROM {E}",
    f"SELECT card_pan AS x, customer_name AS y FROM {D}",
    f"SELECT t.card_pan, t.customer_name FROM {F} t",
    f"SELECT t.* FROM {F} AS t",
    f"SELECT * EXCLUDE (amount) FROM {F}",
    f"SELECT * REPLACE (upper(customer_name) AS customer_name) FROM {D}",
    f"SELECT COLUMNS('card.*|customer_n.*') FROM {F}",
    f"WITH fct_transactions AS (SELECT * FROM {F}) SELECT * FROM fct_transactions",
    "WITH fct_transactions AS (SELECT * FROM fct_transactions) SELECT card_pan, customer_name FROM fct_transactions",
    "WITH dim_customers AS (SELECT card_pan, customer_name FROM marts.dim_customers) SELECT * FROM dim_customers",
    f"WITH x AS (SELECT card_pan p, customer_name n FROM {F}) SELECT p, n FROM x",
    f"WITH a AS (SELECT * FROM {B}), b AS (SELECT * FROM a) SELECT card_pan, customer_name FROM b",
    f"SELECT * FROM (WITH dim_customers AS (SELECT * FROM {D}) SELECT card_pan, customer_name FROM dim_customers) s",
    f"WITH RECURSIVE r AS (SELECT card_pan FROM {D} UNION SELECT card_pan FROM r) SELECT * FROM r",
    f"SELECT (SELECT card_pan FROM {D} LIMIT 1), (SELECT customer_name FROM {D} LIMIT 1)",
    f"SELECT * FROM (SELECT * FROM (SELECT card_pan, customer_name FROM {F}))",
    f"SELECT c.card_pan, f.customer_name FROM {D} c JOIN {F} f USING (customer_id)",
    f"SELECT * FROM {D} NATURAL JOIN {F}",
    f"SELECT x.pan, x.nm FROM {D} d, LATERAL (SELECT d.card_pan AS pan, d.customer_name AS nm) x",
    f"SELECT substr(card_pan, 1, 8), substr(card_pan, 9, 8), substr(customer_name, 1, 5) FROM {D}",
    f"SELECT concat(card_pan, ''), customer_name || '' FROM {D}",
    f"SELECT lower(customer_name), upper(customer_name), lower(card_pan) FROM {D}",
    f"SELECT TRY_CAST(card_pan AS BIGINT), TRY_CAST(card_pan AS HUGEINT) FROM {D}",
    f"SELECT card_pan::VARCHAR, CAST(customer_name AS BLOB) FROM {D}",
    f"SELECT string_agg(card_pan, ','), string_agg(customer_name, ',') FROM {D}",
    f"SELECT list(card_pan), array_agg(customer_name) FROM {D}",
    f"SELECT regexp_extract(card_pan, '(\\d+)', 1), regexp_replace(customer_name, 'a', 'b') FROM {D}",
    f"SELECT reverse(card_pan), reverse(customer_name) FROM {D}",
    f"SELECT md5(card_pan), hash(customer_name) FROM {D}",
    f"SELECT card_pan FROM {D} GROUP BY card_pan",
    f"SELECT customer_name, count(*) FROM {F} GROUP BY ALL",
    f"SELECT customer_id FROM {D} ORDER BY card_pan",
    f"SELECT customer_id, rank() OVER (ORDER BY card_pan) FROM {D}",
    f"SELECT customer_id FROM {D} QUALIFY row_number() OVER (PARTITION BY customer_name) = 1",
    f"SELECT card_pan FROM {D} UNION SELECT customer_name FROM {F}",
    f"SELECT card_pan FROM {D} UNION ALL SELECT card_pan FROM {B}",
    f"SELECT card_pan FROM {D} INTERSECT SELECT card_pan FROM {F}",
    f"SELECT customer_name FROM {D} EXCEPT SELECT 'nobody'",
    'SELECT "card_pan", "customer_name" FROM "marts"."dim_customers"',
    "SELECT Card_Pan, Customer_NAME FROM MARTS.Dim_Customers",
    'SELECT "CARD_PAN" FROM "MARTS"."DIM_CUSTOMERS"',
    f"SELECT card_pan /* show me */, customer_name FROM {D} -- please",
    "SELECT card_pan FROM marts./* split */dim_customers",
    "SELECT 1 -- ; ATTACH ':memory:' AS m",
    f"SELECT * FROM {D} AS dim_customers(a, b, c, d)",
    f"SELECT dim_customers FROM {D}",
    f"SELECT to_json(d) FROM {D} d",
    f"SELECT struct_pack(p := card_pan, n := customer_name) FROM {D}",
    f"SELECT printf('%s %s', card_pan, customer_name) FROM {D}",
    f"SELECT [card_pan, customer_name] FROM {D}",
    f"SELECT unnest([card_pan, customer_name]) FROM {D}",
    f"SELECT * FROM unnest((SELECT list(card_pan) FROM {D}))",
    f"SELECT max(card_pan), min(customer_name), first(card_pan ORDER BY card_pan) FROM {D}",
    f"SELECT CASE WHEN card_pan LIKE '4%' THEN 'visa' ELSE 'other' END AS brand, count(*) FROM {D} GROUP BY 1",
    f"SELECT length(card_pan), ascii(card_pan), left(customer_name, 3) FROM {D}",
    f"SELECT json_extract(to_json(f), '$.card_pan') FROM {F} f",
    f"FROM {D} SELECT card_pan, customer_name",
    f"FROM {D}",
    f"TABLE {D}",
    f"SELECT * FROM (VALUES (1)) v(x), {D}",
    f"SELECT * FROM {D} USING SAMPLE 50%",
    f"SELECT * FROM {D} POSITIONAL JOIN {F}",
    f"SELECT d.card_pan FROM {D} d WHERE EXISTS (SELECT 1 FROM {F} f WHERE f.card_pan = d.card_pan)",
    f"SELECT customer_id FROM {D} WHERE card_pan IN (SELECT card_pan FROM {B})",
    f"SELECT customer_id FROM {D} WHERE card_pan LIKE '4%' OR card_pan LIKE '5%'",
    f"SELECT customer_id FROM {D} WHERE customer_name LIKE 'I%'",
    f"SELECT customer_id, card_pan > '5' FROM {D}",
    f"SELECT * FROM {E} WHERE memo_sentiment < 0 ORDER BY card_pan DESC",
    f"SELECT array_to_string(list(customer_name ORDER BY customer_name), '|') FROM {F}",
    f"SELECT split_part(customer_name, ' ', 2), string_split(card_pan, '') FROM {D}",
    f"SELECT translate(card_pan, '0123456789', 'abcdefghij') FROM {D}",
    f"SELECT fct_transactions.card_pan FROM {F}",
    f"SELECT * FROM {D} PIVOT (count(*) FOR region IN ('EU', 'NA'))",
]

DENIED = [
    "SELECT * FROM read_csv('{csv}')",
    "SELECT * FROM read_csv_auto('{csv}')",
    "SELECT * FROM '{csv}'",
    "SELECT * FROM \"{csv}\"",
    "SELECT * FROM read_parquet('{csv}')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_blob('{csv}')",
    "SELECT * FROM glob('*')",
    "SELECT * FROM query('SELECT card_pan FROM marts.dim_customers')",
    "SELECT * FROM query_table('marts.dim_customers')",
    "SELECT * FROM iceberg_scan('/tmp/x/metadata.json')",
    "SELECT * FROM postgres_scan('host=127.0.0.1', 'public', 't')",
    "SELECT * FROM sqlite_scan('x.db', 't')",
    "SELECT * FROM duckdb_tables()",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM duckdb_secrets()",
    "SELECT current_setting('threads')",
    "SELECT getenv('HOME')",
    "SELECT getvariable('x')",
    "SELECT * FROM information_schema.columns",
    "SELECT * FROM pg_catalog.pg_tables",
    "SELECT * FROM duckdb_columns",
    "SELECT * FROM sqlite_master",
    "SELECT * FROM pragma_table_info('marts.dim_customers')",
    "PRAGMA table_info('marts.dim_customers')",
    "ATTACH ':memory:' AS m",
    "COPY marts.dim_customers TO '{out}'",
    "COPY (SELECT * FROM marts.dim_customers) TO '{out}'",
    "EXPORT DATABASE '{out}'",
    "SET threads = 1",
    "RESET threads",
    "INSTALL httpfs",
    "LOAD httpfs",
    "CALL pragma_version()",
    "SELECT 1; SELECT card_pan FROM marts.dim_customers",
    "SELECT card_pan FROM marts.dim_customers; DROP TABLE marts.dim_customers",
    "DESCRIBE marts.dim_customers",
    "SUMMARIZE marts.dim_customers",
    "SHOW TABLES",
    "CREATE TABLE x AS SELECT * FROM marts.dim_customers",
    "CREATE VIEW v AS SELECT * FROM marts.dim_customers",
    "CREATE MACRO m() AS TABLE SELECT * FROM marts.dim_customers",
    "INSERT INTO marts.dim_customers SELECT * FROM marts.dim_customers",
    "UPDATE marts.dim_customers SET card_pan = 'x'",
    "DELETE FROM marts.dim_customers",
    "DROP TABLE marts.dim_customers",
    "SELECT * FROM memory.marts.dim_customers",
    "SELECT * FROM curated.marts.dim_customers",
    "SELECT * FROM staging.stg_secrets",
    "SELECT * FROM stg_secrets",
    'SELECT * FROM "marts.dim_customers"',
    "SELECT * FROM main.dim_customers",
    "WITH dim_customers AS (SELECT 1) SELECT * FROM main.dim_customers",
    "SELECT ?",
    "PIVOT marts.dim_customers ON region",
    "SELECT * FROM marts.dim_customers AT (VERSION => 1)",
    "SELECT * FROM sniff_csv('{csv}')",
    "SELECT * FROM parquet_metadata('{csv}')",
    "SELECT * FROM (SELECT 1) t, read_csv('{csv}')",
    "SELECT (SELECT count(*) FROM read_csv('{csv}'))",
    "CHECKPOINT",
    "USE marts",
    "BEGIN TRANSACTION",
    "VACUUM",
    "SELECT * FROM pans_df",
    "",
    "SELECT FROM WHERE",
    "WITH x AS (SELECT 1), x AS (SELECT 2) SELECT * FROM x",
]


@pytest.fixture(scope="module")
def leaked_csv(tmp_path_factory: pytest.TempPathFactory, raw: duckdb.DuckDBPyConnection) -> Path:
    """A file full of clear PII that file readers would expose."""
    path = tmp_path_factory.mktemp("files") / "pans.csv"
    raw.execute(f"COPY (SELECT customer_name, card_pan FROM marts.dim_customers) TO '{path}' (HEADER)")
    return path


MASKED_ROLES = ("akko-analyst", "akko-user", "akko-viewer")


def test_corpus_is_big_enough() -> None:
    # Each masked role runs every query of both lists (plus the oracles below).
    assert len(ALLOWED) >= 60 and len(DENIED) >= 60


@pytest.mark.parametrize("sql", ALLOWED)
@pytest.mark.parametrize("role", MASKED_ROLES)
def test_adversarial_allowed_queries_do_not_leak(executor, secrets, role: str, sql: str) -> None:
    try:
        result = executor.execute(sql, ident(role))
    except QueryError as exc:  # the engine may reject what the rewrite produced; it must not leak either
        assert not leaks([str(exc)], secrets, MASKED[role]), str(exc)
        return
    found = leaks(cells(result.rows) + result.columns, secrets, MASKED[role])
    assert not found, f"{role} recovered {found[:3]} with {sql!r}"


@pytest.mark.parametrize("sql", DENIED)
@pytest.mark.parametrize("role", MASKED_ROLES + ("akko-admin",))
def test_adversarial_escapes_are_denied(executor, leaked_csv: Path, tmp_path: Path, role: str, sql: str) -> None:
    sql = sql.format(csv=leaked_csv, out=tmp_path / "out.csv")
    with pytest.raises(AccessDenied) as denied:
        executor.execute(sql, ident(role))
    assert "\n" not in str(denied.value) and str(denied.value)
    assert not (tmp_path / "out.csv").exists()


def test_detector_sees_clear_values_for_admin(executor, secrets) -> None:
    """The leak detector is not blind: the same corpus run as admin recovers PANs and names."""
    hits = 0
    for sql in ALLOWED:
        try:
            result = executor.execute(sql, ident("akko-admin"))
        except QueryError:
            continue
        if leaks(cells(result.rows), secrets, {"card_pan", "customer_name"}):
            hits += 1
    assert hits >= 50


# Oracles: answers that would differ if the masked value could be observed in any way.
ORACLES = [
    (f"SELECT count(DISTINCT card_pan) FROM {D}", [(1,)], {"card_pan"}),
    (f"SELECT count(DISTINCT customer_name) FROM {F}", [(1,)], {"customer_name"}),
    (f"SELECT count(*) FROM {D} WHERE card_pan LIKE '4%'", [(0,)], {"card_pan"}),
    (f"SELECT count(*) FROM {D} WHERE card_pan SIMILAR TO '[0-9]{{16}}'", [(0,)], {"card_pan"}),
    (f"SELECT count(*) FROM {D} WHERE customer_name LIKE '%a%'", [(0,)], {"customer_name"}),
    (f"SELECT count(DISTINCT md5(card_pan)) FROM {D}", [(1,)], {"card_pan"}),
    (f"SELECT count(DISTINCT r) FROM (SELECT rank() OVER (ORDER BY card_pan) AS r FROM {D})", [(1,)], {"card_pan"}),
    (f"SELECT DISTINCT length(card_pan) FROM {D}", [(len(MASK),)], {"card_pan"}),
    (f"SELECT count(*) FROM {D} a JOIN {F} b ON a.card_pan = b.card_pan AND a.customer_id <> b.customer_id",
     None, {"card_pan"}),
]


@pytest.mark.parametrize(
    "role,sql,expected",
    [(role, sql, expected) for role in MASKED_ROLES for sql, expected, needs in ORACLES if needs <= MASKED[role]],
)
def test_oracles_see_only_the_mask(executor, role: str, sql: str, expected) -> None:
    rows = executor.execute(sql, ident(role)).rows
    if expected is None:  # every row joins every other: the join key is the constant mask
        n_d = executor.execute(f"SELECT count(*) FROM {D}", ident(role)).rows[0][0]
        n_f = executor.execute(f"SELECT count(*) FROM {F}", ident(role)).rows[0][0]
        per_customer = executor.execute(f"SELECT count(*) FROM {D} a JOIN {F} b USING (customer_id)", ident(role)).rows[0][0]
        assert rows == [(n_d * n_f - per_customer,)]
    else:
        assert rows == expected
    # ...and the same question as admin gets a different, revealing answer.
    assert executor.execute(sql, ident("akko-admin")).rows != rows


def test_order_by_masked_column_reveals_nothing(executor) -> None:
    role = ident("akko-user")
    by_pan = executor.execute(f"SELECT customer_id FROM {D} ORDER BY card_pan, customer_id", role).rows
    by_id = executor.execute(f"SELECT customer_id FROM {D} ORDER BY customer_id", role).rows
    assert by_pan == by_id
    admin = ident("akko-admin")
    assert executor.execute(f"SELECT customer_id FROM {D} ORDER BY card_pan, customer_id", admin).rows != by_id


# --- rewrite details ----------------------------------------------------------------------------


def test_rewrite_replaces_every_base_table(executor) -> None:
    sql = executor.rewrite(
        f"WITH c AS (SELECT * FROM {D}) SELECT * FROM c JOIN {F} f USING (customer_id) "
        f"WHERE f.amount > (SELECT avg(amount) FROM transactions)",
        ident("akko-user"),
    )
    assert sql.count("'***MASKED***' AS \"card_pan\"") == 3
    assert sql.count('FROM "marts"."dim_customers"') == 1
    assert sql.count('FROM "marts"."fct_transactions"') == 1
    assert sql.count('FROM "banking"."transactions"') == 1
    assert "WITH _akko_cte_0 AS" in sql and "_akko_cte_0 AS c" in sql  # the CTE got a private name


def test_row_filter_cannot_bind_to_outer_columns(executor) -> None:
    """staging.stg_secrets has no region/status: the viewer's filter must fail, not bind outside."""
    ex = GovernedExecutor(executor.engine, PolicyEngine(), extra_tables=["staging.stg_secrets"])
    sql = f"SELECT region, status, (SELECT count(*) FROM staging.stg_secrets) FROM {F}"
    assert "_akko_base.region" in ex.rewrite(sql, ident("akko-viewer")).replace('"', "")
    with pytest.raises(QueryError):
        ex.execute(sql, ident("akko-viewer"))


def test_admin_rewrite_has_no_masks_or_filters(executor) -> None:
    sql = executor.rewrite(f"SELECT * FROM {D}", ident("akko-admin"))
    assert "MASKED" not in sql and "WHERE" not in sql


def test_search_path_resolution(executor) -> None:
    assert 'FROM "banking"."transactions"' in executor.rewrite("SELECT 1 FROM transactions", ident("akko-user"))
    assert 'FROM "marts"."dim_customers"' in executor.rewrite("SELECT 1 FROM dim_customers", ident("akko-user"))


def test_limit(executor) -> None:
    assert len(executor.execute(f"SELECT * FROM {F}", ident("akko-analyst"), limit=7).rows) == 7


def test_engine_error_is_query_error(executor) -> None:
    with pytest.raises(QueryError, match="query failed"):
        executor.execute(f"SELECT no_such_column FROM {D}", ident("akko-analyst"))


def test_identity_without_role_is_denied(executor) -> None:
    with pytest.raises(AccessDenied, match="no akko role"):
        executor.execute(f"SELECT customer_id FROM {D}", Identity("mallory", ["offline_access"]))


def test_extra_tables_are_policy_governed(curated: Path) -> None:
    ex = GovernedExecutor(
        lambda: duckdb.connect(str(curated), read_only=True), PolicyEngine(), extra_tables=["staging.stg_secrets"]
    )
    # Known to the executor now; masked by the name-based PII defaults below engineer.
    rows = ex.execute("SELECT card_pan, customer_name FROM staging.stg_secrets", ident("akko-engineer")).rows
    assert rows and all(luhn_valid(r[0]) for r in rows)
    rows = ex.execute("SELECT card_pan, customer_name FROM staging.stg_secrets", ident("akko-user")).rows
    assert rows and set(rows) == {(MASK, MASK)}
    # The viewer's row filter needs region/status, which this table lacks: it fails, closed.
    with pytest.raises(QueryError):
        ex.execute("SELECT * FROM staging.stg_secrets", ident("akko-viewer"))


def test_governed_table_missing_in_engine(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    ex = GovernedExecutor(lambda: duckdb.connect(str(path), read_only=True), PolicyEngine())
    with pytest.raises(QueryError, match="materialize it first"):
        ex.execute(f"SELECT * FROM {D}", ident("akko-admin"))
