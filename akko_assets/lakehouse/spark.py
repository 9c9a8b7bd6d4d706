"""The Spark replicator (AKKO_REPLICATOR=spark): JDBC read of `akko.raw_transactions` and
`MERGE INTO <catalog>.banking.transactions`, with the same contract as the pyiceberg path
(akko_assets.lakehouse.replicate): high-water mark and source generation in the table's properties,
full mirror when the source was re-seeded, malformed rows quarantined with the same rules.

Locally it runs classic Spark 3.5 (local[2]) with the Iceberg `JdbcCatalog` on the very catalog
tables pyiceberg's `SqlCatalog` keeps in PostgreSQL, so Spark, pyiceberg and DuckDB see ONE table.
With SPARK_REMOTE=sc://... (k8s profile) the same code talks to a Spark Connect server whose
Iceberg catalog (Polaris REST) is configured on the server side.

Setup (jars, pyspark): `bash scripts/setup_spark.sh`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import shutil
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import pyarrow as pa
from psycopg.conninfo import conninfo_to_dict

from akko_assets.contract import TRANSACTION_SCHEMA
from akko_assets.ingest.load import RAW_TABLE, ensure_schema
from akko_assets.lakehouse.catalog import (
    CATALOG_NAME,
    TRANSACTIONS,
    ensure_transactions_table,
    open_catalog,
)
from akko_assets.lakehouse.replicate import (
    ReplicationResult,
    plan_source_read,
    quarantine,
    write_horizon,
    result_after_commit,
)
from akko_assets.resources.postgres import connect
from akko_assets.settings import REGIONS, REPO_ROOT, Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

SETUP_COMMAND = "bash scripts/setup_spark.sh"
RUNTIME_JAR = "iceberg-spark-runtime-3.5_2.12-1.10.2.jar"
SHADED_JACKSON_JAR = "iceberg-shaded-jackson-2.15.2.jar"
DEFAULT_JDBC_JAR = "/usr/share/java/postgresql.jar"
COLUMNS = TRANSACTION_SCHEMA.names
log = logging.getLogger(__name__)
REJECTED = "_akko_rejected"
REASON = "_akko_reason"


class SparkSetupError(RuntimeError):
    """Spark cannot run here; the message names the missing piece and the command that installs it."""


# ---------------------------------------------------------------------------------------------
# Setup checks and session


def jars_dir() -> Path:
    return Path(os.environ.get("AKKO_SPARK_JARS", str(REPO_ROOT / ".spark-jars")))


def jdbc_jar() -> Path:
    return Path(os.environ.get("AKKO_SPARK_JDBC_JAR", DEFAULT_JDBC_JAR))


def required_jars() -> list[Path]:
    """The jars a local session needs, checked before the JVM starts (Spark only warns about a
    missing jar and fails much later with a ClassNotFoundException)."""
    jdbc = jdbc_jar()
    if not jdbc.is_file():
        raise SparkSetupError(
            f"PostgreSQL JDBC driver {jdbc} is missing (Debian libpostgresql-jdbc-java): run `{SETUP_COMMAND}`"
        )
    jars = [jdbc]
    for name, what in ((RUNTIME_JAR, "Iceberg Spark runtime"), (SHADED_JACKSON_JAR, "Iceberg's relocated Jackson")):
        path = jars_dir() / name
        if not path.is_file():
            raise SparkSetupError(f"{what} jar {path} is missing: run `{SETUP_COMMAND}`")
        jars.append(path)
    return jars


def java_executable() -> str:
    java_home = os.environ.get("JAVA_HOME", "").strip()
    if java_home:
        java = Path(java_home) / "bin" / "java"
        if not os.access(java, os.X_OK):
            raise SparkSetupError(f"JAVA_HOME={java_home} has no bin/java: point JAVA_HOME at a Java 17 runtime or unset it")
        return str(java)
    found = shutil.which("java")
    if not found:
        raise SparkSetupError("Java not found: Spark needs a Java 17 runtime (`apt-get install -y openjdk-17-jre-headless`)")
    return found


def _import_pyspark():
    try:
        import pyspark
    except ImportError:
        raise SparkSetupError(f"pyspark is not installed: run `{SETUP_COMMAND}`") from None
    if not pyspark.__version__.startswith("3.5."):
        raise SparkSetupError(
            f"pyspark {pyspark.__version__} is installed but the Iceberg runtime here is for Spark 3.5: run `{SETUP_COMMAND}`"
        )
    return pyspark


def jdbc_connection(dsn: str) -> tuple[str, dict[str, str]]:
    """A libpq DSN/URI as a JDBC URL plus user/password (kept out of the URL so it is never logged)."""
    params = conninfo_to_dict(dsn)
    host = params.get("host") or "127.0.0.1"
    if host.startswith("/"):
        raise SparkSetupError(f"AKKO_PG_DSN uses a Unix socket ({host}); JDBC needs TCP: use host=127.0.0.1")
    url = f"jdbc:postgresql://{host}:{params.get('port') or 5432}/{params.get('dbname') or 'postgres'}"
    if params.get("sslmode"):
        url += f"?sslmode={params['sslmode']}"
    props = {"user": params.get("user") or os.environ.get("PGUSER") or "postgres"}
    password = params.get("password") or os.environ.get("PGPASSWORD")
    if password:
        props["password"] = password
    return url, props


def catalog_name() -> str:
    """`akko` locally (the name pyiceberg's SqlCatalog writes into the shared catalog tables);
    `iceberg` on the Spark Connect server of the k8s manifests."""
    return os.environ.get("AKKO_SPARK_CATALOG") or ("iceberg" if os.environ.get("SPARK_REMOTE") else CATALOG_NAME)


def catalog_conf(settings: Settings) -> dict[str, str]:
    """Spark catalog options that make Spark open the same Iceberg catalog as open_catalog(settings)."""
    prefix = f"spark.sql.catalog.{catalog_name()}"
    conf = {prefix: "org.apache.iceberg.spark.SparkCatalog", f"{prefix}.warehouse": settings.iceberg_warehouse,
            # Spark caches loaded tables (~30 s) and would miss pyiceberg's commits in between.
            f"{prefix}.cache-enabled": "false"}
    uri = settings.iceberg_catalog_uri
    if uri.startswith(("http://", "https://")):
        conf.update({f"{prefix}.type": "rest", f"{prefix}.uri": uri})
        if os.environ.get("AKKO_ICEBERG_CREDENTIAL"):
            conf[f"{prefix}.credential"] = os.environ["AKKO_ICEBERG_CREDENTIAL"]
    else:
        # pyiceberg's SQLAlchemy URI (postgresql+psycopg://...) -> JDBC. Both catalogs use the tables
        # iceberg_tables / iceberg_namespace_properties; JdbcCatalog detects their (V0) layout.
        url, props = jdbc_connection(uri.replace("postgresql+psycopg://", "postgresql://", 1))
        conf.update({f"{prefix}.catalog-impl": "org.apache.iceberg.jdbc.JdbcCatalog", f"{prefix}.uri": url})
        conf.update({f"{prefix}.jdbc.{k}": v for k, v in props.items()})
    if os.environ.get("AKKO_S3_ENDPOINT"):
        conf.update({f"{prefix}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
                     f"{prefix}.s3.endpoint": os.environ["AKKO_S3_ENDPOINT"],
                     f"{prefix}.s3.path-style-access": os.environ.get("AKKO_S3_PATH_STYLE", "true")})
    return conf


def spark_conf(settings: Settings) -> dict[str, str]:
    """The whole configuration of a local session (also usable as dagster-pyspark's `spark_config`)."""
    conf = {
        "spark.master": os.environ.get("AKKO_SPARK_MASTER", "local[2]"),
        "spark.app.name": "akko-replicate",
        "spark.jars": ",".join(str(p) for p in required_jars()),
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        "spark.sql.session.timeZone": "UTC",
        # A few thousand to a few hundred thousand rows: 200 shuffle partitions would be pure overhead.
        "spark.sql.shuffle.partitions": "4",
        # Deny by default: the driver's ports listen on loopback only, and there is no web UI.
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": os.environ.get("AKKO_SPARK_DRIVER_MEMORY", "1g"),
        # C1-only JIT: these are short jobs, where the JVM warms up faster than C2 pays off.
        "spark.driver.extraJavaOptions": os.environ.get("AKKO_SPARK_JAVA_OPTIONS", "-XX:TieredStopAtLevel=1"),
    }
    conf.update(catalog_conf(settings))
    return conf


_sessions: dict[tuple[tuple[str, str], ...], SparkSession] = {}


def spark_session(settings: Settings) -> SparkSession:
    """A Spark session whose Iceberg catalog is the one `settings` point at.

    One JVM per process: a second set of settings (another catalog database) gets a `newSession()`
    sharing the SparkContext, with its own catalog configuration.
    """
    _import_pyspark()
    from pyspark.sql import SparkSession

    remote = os.environ.get("SPARK_REMOTE", "").strip()
    if remote:
        # Spark Connect: jars, SQL extensions and the catalog are configured on the server.
        check_remote(remote)
        session = SparkSession.builder.remote(remote).getOrCreate()
        session.conf.set("spark.sql.session.timeZone", "UTC")
        return session
    java_executable()
    conf = spark_conf(settings)
    key = tuple(sorted(catalog_conf(settings).items()))
    if key in _sessions:
        return _sessions[key]
    if _sessions:
        base = next(iter(_sessions.values()))
        session = base.newSession()
        for name, value in catalog_conf(settings).items():
            session.conf.set(name, value)
    else:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # read by the JVM launcher; silences its hostname probe
        builder = SparkSession.builder
        for name, value in conf.items():
            builder = builder.config(name, value)
        try:
            session = builder.getOrCreate()
        except Exception as exc:  # pyspark raises PySparkRuntimeError(JAVA_GATEWAY_EXITED) and others
            raise SparkSetupError(f"Spark did not start ({_first_line(exc)}): check Java 17 and run `{SETUP_COMMAND}`") from exc
        session.sparkContext.setLogLevel("ERROR")
    _sessions[key] = session
    return session


def check_setup() -> None:
    """Everything a run needs that can be checked without starting a JVM; raises SparkSetupError."""
    _import_pyspark()
    remote = os.environ.get("SPARK_REMOTE", "").strip()
    if remote:
        check_remote(remote)
    else:
        java_executable()
        required_jars()


def check_remote(url: str, timeout: float = 5.0) -> None:
    """Fail fast on an unreachable Spark Connect server: the 3.5 client retries for minutes."""
    parsed = urlparse(url.split(";", 1)[0])
    if parsed.scheme != "sc" or not parsed.hostname:
        raise SparkSetupError(f"SPARK_REMOTE={url!r} is not a Spark Connect URL: use sc://host:15002")
    try:
        import grpc_status  # noqa: F401 - the Connect client's one dependency the core stack lacks
    except ImportError:
        raise SparkSetupError("the Spark Connect client needs grpcio-status: `pip install grpcio-status`") from None
    try:
        socket.create_connection((parsed.hostname, parsed.port or 15002), timeout=timeout).close()
    except OSError as exc:
        raise SparkSetupError(
            f"Spark Connect server {url} is not reachable ({exc.strerror or exc}): deploy k8s/base/spark-connect "
            "or unset SPARK_REMOTE to run Spark locally"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def explain_spark_error(exc: BaseException) -> SparkSetupError | None:
    """Turn the JVM's class-loading failures into one line that names the jar and the fix."""
    text = str(exc)
    if "org.postgresql.Driver" in text or "No suitable driver" in text:
        return SparkSetupError(f"PostgreSQL JDBC driver not loaded by Spark ({jdbc_jar()}): run `{SETUP_COMMAND}`")
    class_missing = ("NoClassDefFoundError", "ClassNotFoundException", "Cannot find catalog plugin class")
    if any(marker in text for marker in class_missing) and "iceberg" in text.lower():
        found = re.search(r"org[./]apache[./]iceberg[\w./$]*", text)
        return SparkSetupError(
            f"Iceberg Spark runtime incomplete (NoClassDefFoundError {found.group(0) if found else 'iceberg'}): "
            f"{jars_dir() / RUNTIME_JAR} and {jars_dir() / SHADED_JACKSON_JAR} are needed: run `{SETUP_COMMAND}`"
        )
    return None


# ---------------------------------------------------------------------------------------------
# Validation rules in Spark SQL (the same rules, order and reasons as replicate.validate)


def _luhn_sql(col: str) -> str:
    # Unrolled over the 16 digits (right to left, every second one doubled, minus 9 above 9): plain
    # arithmetic that Spark compiles, where aggregate(sequence(...), lambda) would be interpreted per row.
    terms = []
    for i in range(16):  # i = 0 is the check digit
        d = f"(ascii(substring({col}, {16 - i}, 1)) - 48)"
        terms.append(f"(2 * {d} - IF({d} > 4, 9, 0))" if i % 2 else d)
    return f"(({' + '.join(terms)}) % 10 = 0)"


def reason_sql(now: dt.datetime) -> str:
    """A CASE expression naming the first rule a row breaks (NULL for a valid row)."""
    limit = now + dt.timedelta(days=1)
    limit_us = int(limit.timestamp()) * 1_000_000 + limit.microsecond
    regions = ", ".join(f"'{r}'" for r in REGIONS)
    return (
        "CASE"
        " WHEN transaction_id IS NULL THEN 'null transaction_id'"
        f" WHEN region IS NULL OR region NOT IN ({regions}) THEN 'unknown region'"
        " WHEN amount IS NULL THEN 'null amount'"
        " WHEN amount < 0 THEN 'negative amount'"
        f" WHEN card_pan IS NULL OR NOT (card_pan RLIKE '^[0-9]{{16}}$') OR NOT {_luhn_sql('card_pan')}"
        " THEN 'invalid card_pan'"
        f" WHEN ts IS NULL OR ts > timestamp_micros({limit_us}) THEN 'future or missing ts'"
        " END"
    )


def _rejected_as_arrow(rejected: DataFrame) -> pa.Table:
    """Rejected rows (few) in the contract schema + `reason`, as replicate.validate returns them, so
    replicate.quarantine writes byte-identical rows (its unique key de-duplicates across engines)."""
    from pyspark.sql import functions as F

    iso = "yyyy-MM-dd HH:mm:ss.SSSSSSXXX"  # session time zone is UTC
    cols = [F.date_format(c, iso).alias(c) if c in ("ts", "updated_at") else
            F.col(c).cast("string").alias(c) if c == "amount" else F.col(c) for c in COLUMNS]
    rows = rejected.select(*cols, F.col(REASON).alias("reason")).collect()
    data = {name: [r[name] for r in rows] for name in [*COLUMNS, "reason"]}
    arrays = [pa.array(data[f.name], pa.string()).cast(f.type) if f.name in ("amount", "ts", "updated_at")
              else pa.array(data[f.name], f.type) for f in TRANSACTION_SCHEMA]
    fields = [f.with_nullable(True) for f in TRANSACTION_SCHEMA]
    return pa.Table.from_arrays([*arrays, pa.array(data["reason"], pa.string())],
                                schema=pa.schema([*fields, pa.field("reason", pa.string())]))


# ---------------------------------------------------------------------------------------------
# Replication


def _changed_sql() -> str:
    # A matched row counts as changed when any column differs (null-safe), as in pyiceberg's upsert.
    return " OR ".join(f"NOT (t.{c} <=> s.{c})" for c in COLUMNS if c != "transaction_id")


def _merge_sql(target: str, source: str, *, mirror: bool) -> str:
    keys = [c for c in COLUMNS if c != "transaction_id"]
    # Update only rows that differ, so a rerun or a redone run rewrites nothing.
    changed = _changed_sql()
    updates = ", ".join(f"t.{c} = s.{c}" for c in keys)
    names = ", ".join(COLUMNS)
    values = ", ".join(f"s.{c}" for c in COLUMNS)
    # Explicit column lists instead of SET * / INSERT *: the source also carries the reject flag.
    sql = (
        f"MERGE INTO {target} t USING {source} s ON t.transaction_id = s.transaction_id"
        f" WHEN MATCHED AND s.{REJECTED} THEN DELETE"
        f" WHEN MATCHED AND ({changed}) THEN UPDATE SET {updates}"
        f" WHEN NOT MATCHED AND NOT s.{REJECTED} THEN INSERT ({names}) VALUES ({values})"
    )
    if mirror:  # full mirror after a re-seed: rows gone from PostgreSQL leave Iceberg in the same commit
        sql += " WHEN NOT MATCHED BY SOURCE THEN DELETE"
    return sql


def _read_source(spark: SparkSession, settings: Settings, since: dt.datetime | None, upto: dt.datetime) -> DataFrame:
    url, props = jdbc_connection(settings.pg_dsn)
    # Bounded above by the mark taken in the same snapshot as the generation, so the stored mark
    # is exactly what this run read; rows committed meanwhile come with the next run.
    where = f"updated_at <= '{upto.isoformat()}'::timestamptz"
    if since is not None:
        where = f"updated_at > '{since.isoformat()}'::timestamptz AND {where}"
    query = f"SELECT {', '.join(COLUMNS)} FROM {RAW_TABLE} WHERE {where}"
    reader = (spark.read.format("jdbc").option("url", url).option("driver", "org.postgresql.Driver")
              .option("query", query).option("fetchsize", "10000"))
    for name, value in props.items():
        reader = reader.option(name, value)
    return reader.load()


def replicate_with_spark(settings: Settings, *, full: bool = False, now: dt.datetime | None = None,
                         spark: SparkSession | None = None) -> ReplicationResult:
    """Bring `banking.transactions` up to date with PostgreSQL through Spark (same result as
    replicate.replicate).

    Commits: the MERGE (rows) first, then ALTER TABLE SET TBLPROPERTIES (mark + generation). They
    are two Iceberg commits, not one: if a run dies between them the table holds the new rows with
    the old mark, and the next run merges the same rows again, which changes nothing (the MERGE
    only touches rows that differ). So a crash costs repeated work, never lost or doubled rows.
    Spark's MERGE cannot carry table-property updates in its own commit, so a second commit is needed
    whichever engine writes the properties; Spark writes them so one engine (and, on k8s, one
    Spark Connect server) does all writes of a run.
    """
    started = time.perf_counter()
    now = now or dt.datetime.now(dt.UTC)
    if spark is None:
        check_setup()  # fail on a missing jar/Java before touching PostgreSQL or the catalog
    catalog = open_catalog(settings)
    # pyiceberg owns the table definition (identifier field, partition spec), so both paths share it.
    table = ensure_transactions_table(catalog)
    props = table.properties
    with connect(settings.pg_dsn) as conn:
        ensure_schema(conn)
        conn.commit()
        horizon = write_horizon(conn)
        with conn.transaction():
            plan = plan_source_read(conn, props, full, horizon)
    new_hwm, incremental, since = plan.new_hwm, plan.incremental, plan.since

    spark = spark or spark_session(settings)
    target = f"{catalog_name()}.{TRANSACTIONS}"
    view = f"akko_updates_{os.getpid()}_{int(time.time() * 1000)}"
    checked = None
    phases: dict[str, float] = {}
    mark = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal mark
        phases[name] = round(time.perf_counter() - mark, 3)
        mark = time.perf_counter()

    try:
        checked = _read_source(spark, settings, since, new_hwm).selectExpr(
            "*", f"{reason_sql(now)} AS {REASON}").selectExpr("*", f"{REASON} IS NOT NULL AS {REJECTED}")
        checked = checked.cache()  # read PostgreSQL once for the counts, the quarantine and the MERGE
        read = checked.count()
        phase("jdbc_read")
        rejected = _rejected_as_arrow(checked.where(REJECTED))
        reject_counts: dict[str, int] = {}
        for why in rejected.column("reason").to_pylist():
            reject_counts[why] = reject_counts.get(why, 0) + 1
        with connect(settings.pg_dsn) as conn, conn.transaction():
            quarantine(conn, rejected)
        phase("quarantine")

        inserted = updated = deleted = 0
        if read or not incremental:
            checked.createOrReplaceTempView(view)
            # Spark 3.5's MERGE returns no row counts: count inserts/updates/deletes against the same
            # source first; with nothing to change the MERGE (and its file rewrites) is skipped.
            if table.current_snapshot() is None:  # first load: every valid row is an insert, no join needed
                counts = {"inserted": read - rejected.num_rows, "updated": 0, "deleted": 0}
            else:
                join = "LEFT JOIN" if incremental else "FULL OUTER JOIN"
                counts = spark.sql(
                    f"SELECT count_if(t.transaction_id IS NULL AND NOT s.{REJECTED}) AS inserted,"
                    f" count_if(t.transaction_id IS NOT NULL AND NOT s.{REJECTED} AND ({_changed_sql()})) AS updated,"
                    f" count_if(t.transaction_id IS NOT NULL AND (s.transaction_id IS NULL OR s.{REJECTED}))"
                    f" AS deleted FROM {view} s {join} {target} t ON t.transaction_id = s.transaction_id"
                ).first()
            inserted, updated, deleted = int(counts["inserted"]), int(counts["updated"]), int(counts["deleted"])
            phase("count_changes")
            if inserted or updated or deleted:
                spark.sql(_merge_sql(target, view, mirror=not incremental))
                phase("merge")
        properties = plan.properties
        if any(props.get(k) != v for k, v in properties.items()):
            assignments = ", ".join(f"'{k}' = '{v}'" for k, v in properties.items())
            spark.sql(f"ALTER TABLE {target} SET TBLPROPERTIES ({assignments})")
            phase("set_properties")
    except SparkSetupError:
        raise
    except Exception as exc:
        explained = explain_spark_error(exc)
        if explained is not None:
            raise explained from exc
        raise
    finally:
        if checked is not None:
            checked.unpersist()
        spark.catalog.dropTempView(view)
    log.info("spark replication: %d read, %d inserted, %d updated, %d deleted; phases (s): %s",
             read, inserted, updated, deleted, phases)

    result = result_after_commit(catalog.load_table(TRANSACTIONS), incremental=incremental, read=read,
                                 inserted=inserted, updated=updated, rejected=reject_counts)
    result.seconds = round(time.perf_counter() - started, 3)
    return result
