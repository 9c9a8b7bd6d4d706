"""Serving DuckDB file for Superset: governed rows only, atomic swap, readable while replaced."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from akko_assets.bi.serving import ServingLeakError, publish_serving_db
from akko_assets.contract import CHANNELS, STATUSES, TRANSACTION_SCHEMA
from akko_assets.settings import MASK, REGIONS

CATEGORIES = ("grocery", "electronics", "travel", "fuel", "restaurants", "gambling", "fashion")
MERCHANTS = ("Aldo Market", "Voltix", "SkyJet", "PetroMax", "Trattoria Roma", "LuckyBet", "Modena", "Bookly")
NAMES = ("Ada Moreau", "Bilal Khan", "Chen Wei", "Dora Silva", "Emeka Obi", "Freya Lund", "Gita Rao", "Hugo Brandt")


def luhn_pan(rng: np.random.Generator) -> str:
    """A 16-digit card number with a valid Luhn check digit (what a real PAN looks like)."""
    digits = [4] + list(rng.integers(0, 10, 14))
    total = 0
    for i, d in enumerate(reversed(digits)):
        d = int(d)
        if i % 2 == 0:  # positions doubled once the check digit is appended
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return "".join(map(str, digits)) + str((10 - total % 10) % 10)


def enriched_rows(n: int, seed: int = 7, start: dt.datetime | None = None, id_offset: int = 0) -> pa.Table:
    """Transactions shaped like marts.enriched_transactions (contract columns + features + scores)."""
    rng = np.random.default_rng(seed)
    start = start or dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    n_customers = max(8, n // 25)
    customers = [f"C{i:05d}" for i in range(n_customers)]
    pans = {c: luhn_pan(rng) for c in customers}
    cust = rng.choice(customers, n)
    region_of = {c: REGIONS[i % len(REGIONS)] for i, c in enumerate(customers)}
    region = np.array([region_of[c] for c in cust])
    # Fraud is likelier in some regions/channels, so the charts have something to show.
    base = {"EU": 0.02, "NA": 0.03, "APAC": 0.05, "LATAM": 0.07, "MEA": 0.04}
    channel = rng.choice(CHANNELS, n, p=[0.5, 0.4, 0.1])
    p_flag = np.array([base[r] for r in region]) * np.where(channel == "online", 1.8, 1.0)
    is_flagged = rng.random(n) < p_flag
    score = np.where(is_flagged, rng.uniform(0.62, 0.95, n), rng.uniform(0.2, 0.6, n))
    ts = [start + dt.timedelta(seconds=int(s)) for s in np.sort(rng.integers(0, 30 * 86400, n))]
    amount = np.round(rng.lognormal(3.6, 0.9, n) * np.where(is_flagged, 3, 1), 2)
    data = {
        "transaction_id": [f"T{id_offset + i:08d}" for i in range(n)],
        "customer_id": cust.tolist(),
        "customer_name": [NAMES[int(c[1:]) % len(NAMES)] for c in cust],
        "card_pan": [pans[c] for c in cust],
        "amount": pa.array([f"{a:.2f}" for a in amount]).cast(pa.decimal128(12, 2)),
        "currency": rng.choice(["EUR", "USD", "GBP"], n).tolist(),
        "merchant": rng.choice(MERCHANTS, n).tolist(),
        "merchant_category": rng.choice(CATEGORIES, n).tolist(),
        "channel": channel.tolist(),
        "region": region.tolist(),
        "country": rng.choice(["FR", "DE", "US", "SG", "BR", "AE"], n).tolist(),
        "status": rng.choice(STATUSES, n, p=[0.9, 0.07, 0.03]).tolist(),
        "memo": rng.choice(["thanks, great service", "refund please", "monthly groceries", "urgent transfer!!"], n).tolist(),
        "ts": ts,
        "is_fraud": (is_flagged & (rng.random(n) < 0.8)).tolist(),
        "updated_at": ts,
    }
    table = pa.table({f.name: pa.array(data[f.name], f.type) if not isinstance(data[f.name], pa.Array) else data[f.name] for f in TRANSACTION_SCHEMA})
    hours = np.array([t.hour for t in ts])
    extras = {
        "txn_date": pa.array([t.date() for t in ts], pa.date32()),
        "hour_of_day": pa.array(hours, pa.int32()),
        "is_night": pa.array((hours < 6) | (hours >= 22)),
        "amount_zscore": pa.array((amount - amount.mean()) / amount.std()),
        "txn_count_1h": pa.array(rng.integers(1, 4, n), pa.int64()),
        "txn_count_24h": pa.array(rng.integers(1, 12, n), pa.int64()),
        "is_new_merchant": pa.array(rng.random(n) < 0.2),
        "country_changed": pa.array(rng.random(n) < 0.1),
        "fraud_score": pa.array(score),
        "is_flagged": pa.array(is_flagged),
        "memo_sentiment": pa.array(np.round(rng.uniform(-0.9, 0.9, n) - 0.2 * is_flagged, 3)),
    }
    for name, col in extras.items():
        table = table.append_column(name, col)
    return table


def make_source(path: Path, n: int, seed: int = 7, id_offset: int = 0) -> duckdb.DuckDBPyConnection:
    """A curated-layer stand-in: marts.enriched_transactions + marts.dim_customers derived from it."""
    con = duckdb.connect(str(path))
    rows = enriched_rows(n, seed=seed, id_offset=id_offset)
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    con.register("_rows", rows)
    con.execute("CREATE OR REPLACE TABLE marts.enriched_transactions AS SELECT * FROM _rows")
    con.unregister("_rows")
    refresh_dim_customers(con)
    return con


def append_rows(con: duckdb.DuckDBPyConnection, n: int, seed: int, id_offset: int) -> None:
    rows = enriched_rows(n, seed=seed, id_offset=id_offset)
    con.register("_rows", rows)
    con.execute("INSERT INTO marts.enriched_transactions SELECT * FROM _rows")
    con.unregister("_rows")
    refresh_dim_customers(con)


def refresh_dim_customers(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE OR REPLACE TABLE marts.dim_customers AS
        SELECT customer_id, any_value(customer_name) AS customer_name, any_value(card_pan) AS card_pan,
               any_value(region) AS region, any_value(status) AS status, min(ts) AS first_seen,
               max(ts) AS last_seen, count(*) AS txn_count, sum(amount) AS total_amount
        FROM marts.enriched_transactions GROUP BY customer_id
        """
    )


def mask_card_pan(sql: str) -> str:
    """Stand-in for GovernedExecutor.rewrite bound to svc-superset (analyst: card_pan masked)."""
    return sql.replace("SELECT *", f"SELECT * REPLACE ('{MASK}' AS card_pan)", 1)


def test_publish_writes_only_governed_rows(tmp_path: Path) -> None:
    source = make_source(tmp_path / "curated.duckdb", 500)
    out = tmp_path / "serving" / "superset.duckdb"
    counts = publish_serving_db(source, out, mask_card_pan)
    assert counts == {"marts.enriched_transactions": 500, "marts.dim_customers": source.sql("SELECT count(*) FROM marts.dim_customers").fetchone()[0]}
    with duckdb.connect(str(out), read_only=True) as served:
        pans = served.sql("SELECT DISTINCT card_pan FROM marts.enriched_transactions").fetchall()
        assert pans == [(MASK,)]
        assert served.sql("SELECT DISTINCT card_pan FROM marts.dim_customers").fetchall() == [(MASK,)]
        # Names stay clear for the analyst role.
        assert served.sql("SELECT count(DISTINCT customer_name) FROM marts.dim_customers").fetchone()[0] > 1
        cols = [r[0] for r in served.sql("DESCRIBE marts.enriched_transactions").fetchall()]
        assert cols[: len(TRANSACTION_SCHEMA)] == TRANSACTION_SCHEMA.names
        assert {"txn_date", "fraud_score", "is_flagged", "memo_sentiment"} <= set(cols)
    # Only the final file is left in the folder: no temp file, no WAL.
    assert sorted(p.name for p in out.parent.iterdir()) == ["superset.duckdb"]


def test_publish_refuses_clear_card_numbers(tmp_path: Path) -> None:
    source = make_source(tmp_path / "curated.duckdb", 50)
    out = tmp_path / "serving" / "superset.duckdb"
    publish_serving_db(source, out, mask_card_pan)
    before = out.stat().st_ino
    with pytest.raises(ServingLeakError, match="card_pan: 50 rows are not masked for svc-superset"):
        publish_serving_db(source, out, lambda sql: sql)
    # The previous serving file is untouched and nothing half-written is left behind.
    assert out.stat().st_ino == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["superset.duckdb"]


def test_readers_see_old_or_new_file_while_publishing(tmp_path: Path) -> None:
    source = make_source(tmp_path / "curated.duckdb", 2000)
    out = tmp_path / "superset.duckdb"
    publish_serving_db(source, out, mask_card_pan)
    seen: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def read_loop() -> None:
        while not stop.is_set():
            try:
                with duckdb.connect(str(out), read_only=True) as con:
                    seen.append(con.sql("SELECT count(*) FROM marts.enriched_transactions").fetchone()[0])
            except BaseException as exc:  # noqa: BLE001 - any failure is the finding
                errors.append(exc)

    reader = threading.Thread(target=read_loop)
    reader.start()
    try:
        for i in range(3):
            append_rows(source, 1000, seed=100 + i, id_offset=10_000 * (i + 1))
            publish_serving_db(source, out, mask_card_pan)
    finally:
        stop.set()
        reader.join()
    assert not errors
    # Every read saw a complete publication: 2000, 3000, 4000 or 5000 rows, never anything else.
    assert set(seen) <= {2000, 3000, 4000, 5000} and seen


def test_luhn_helper_makes_valid_numbers() -> None:
    rng = np.random.default_rng(1)
    pan = luhn_pan(rng)
    digits = [int(c) for c in pan]
    checksum = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(reversed(digits)))
    assert len(pan) == 16 and checksum % 10 == 0


def test_publish_through_the_governed_executor(tmp_path: Path) -> None:
    """The real svc-superset rewrite (governance stage) produces the same masked serving file."""
    executor_mod = pytest.importorskip("akko_assets.governance.executor")
    from akko_assets.governance.identity import identity_for_user
    from akko_assets.governance.policy import PolicyEngine

    make_source(tmp_path / "curated.duckdb", 300).close()
    executor = executor_mod.GovernedExecutor(
        lambda: duckdb.connect(str(tmp_path / "curated.duckdb"), read_only=True), PolicyEngine()
    )
    identity = identity_for_user("svc-superset")
    out = tmp_path / "superset.duckdb"
    with duckdb.connect(str(tmp_path / "curated.duckdb"), read_only=True) as source:
        counts = publish_serving_db(source, out, lambda sql: executor.rewrite(sql, identity))
    assert counts["marts.enriched_transactions"] == 300
    with duckdb.connect(str(out), read_only=True) as served:
        assert served.sql("SELECT DISTINCT card_pan FROM marts.dim_customers").fetchall() == [(MASK,)]
        assert served.sql("SELECT count(*) FROM marts.enriched_transactions WHERE customer_name IS NULL").fetchone()[0] == 0
