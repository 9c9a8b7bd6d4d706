"""The generator and the COPY loader, against real PostgreSQL."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow.compute as pc
import pytest

from akko_assets.contract import TRANSACTION_SCHEMA
from akko_assets.ingest.generator import generate_transactions, luhn_valid
from akko_assets.ingest.load import replace_transactions, source_state
from akko_assets.ingest.seed import seed_transactions
from akko_assets.lakehouse.replicate import read_source
from akko_assets.resources.postgres import SourceUnavailable, connect
from akko_assets.settings import REGIONS

AS_OF = dt.date(2026, 11, 30)
LOADED = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def sample():
    return generate_transactions(20_000, 11, AS_OF, loaded_at=LOADED)


def test_same_seed_same_rows_other_seed_other_rows(sample):
    again = generate_transactions(20_000, 11, AS_OF, loaded_at=LOADED)
    other = generate_transactions(20_000, 12, AS_OF, loaded_at=LOADED)
    assert sample.equals(again)
    assert not sample.column("card_pan").equals(other.column("card_pan"))


def test_schema_and_ids(sample):
    assert sample.schema == TRANSACTION_SCHEMA
    ids = sample.column("transaction_id").to_pylist()
    assert len(set(ids)) == len(ids) and ids[0] == "T0000000000"


def test_distribution_is_realistic(sample):
    fraud_share = pc.mean(sample.column("is_fraud").cast("int8")).as_py()
    assert 0.02 <= fraud_share <= 0.03
    assert set(sample.column("region").to_pylist()) == set(REGIONS)
    assert set(sample.column("channel").to_pylist()) == {"online", "pos", "atm"}
    status = pc.value_counts(sample.column("status")).to_pylist()
    active = next(s["counts"] for s in status if s["values"] == "active")
    assert active / sample.num_rows > 0.85
    assert all(luhn_valid(p) for p in set(sample.column("card_pan").to_pylist()))
    amounts = sample.column("amount").cast("float64").to_numpy()
    assert amounts.min() > 0 and 20 < np.median(amounts) < 200
    ts = sample.column("ts")
    assert pc.min(ts).as_py() >= dt.datetime(2026, 9, 2, tzinfo=dt.timezone.utc)
    assert pc.max(ts).as_py() < dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
    tones = set(sample.column("memo").to_pylist())
    assert {"Charged twice, very annoyed", "Groceries for the week", "Excellent service, thank you"} <= tones


def test_fraud_patterns_are_visible(sample):
    df = sample.to_pandas()
    fraud, normal = df[df.is_fraud], df[~df.is_fraud]
    assert fraud.amount.astype(float).median() != normal.amount.astype(float).median()
    night = lambda d: (d.ts.dt.hour < 6).mean()  # noqa: E731
    assert night(fraud) > 3 * night(normal)
    small = lambda d: (d.amount.astype(float) < 5).mean()  # noqa: E731
    assert small(fraud) > 5 * small(normal)  # card-testing bursts


def test_luhn():
    assert luhn_valid("4539578763621486")
    assert not luhn_valid("4539578763621487")
    assert not luhn_valid("453957876362148")


def test_copy_round_trip(sample, fresh_db, tmp_path):
    with connect(fresh_db) as conn:
        replace_transactions(conn, sample)
        state = source_state(conn)
        assert state.rows == sample.num_rows
        with conn.transaction():
            back = read_source(conn, None, tmp_path)
    assert back.sort_by("transaction_id").equals(sample.sort_by("transaction_id"))


def test_append_continues_after_latest(akko_env):
    import os

    dsn = os.environ["AKKO_PG_DSN"]
    first = seed_transactions(dsn, 2000, 3, AS_OF)
    second = seed_transactions(dsn, 500, 4, AS_OF, mode="append")
    assert (first.rows_total, second.rows_total) == (2000, 2500)
    with connect(dsn) as conn:
        ids_ok, min_new_ts, max_old_ts = conn.execute(
            "SELECT count(DISTINCT transaction_id) = 2500,"
            " min(ts) FILTER (WHERE substr(transaction_id, 2)::int >= 2000),"
            " max(ts) FILTER (WHERE substr(transaction_id, 2)::int < 2000) FROM akko.raw_transactions"
        ).fetchone()
    assert ids_ok and min_new_ts > max_old_ts


def test_replace_is_idempotent(akko_env):
    import os

    dsn = os.environ["AKKO_PG_DSN"]
    seed_transactions(dsn, 1000, 3, AS_OF)
    result = seed_transactions(dsn, 1000, 3, AS_OF)
    assert result.rows_total == 1000


def test_unreachable_postgres_names_dsn_and_fix():
    with pytest.raises(SourceUnavailable) as info:
        with connect("postgresql://postgres@127.0.0.1:1/akko", connect_timeout=2):
            pass
    message = str(info.value)
    assert "127.0.0.1" in message and "port=1" in message
    assert "akko services up" in message and "AKKO_PG_DSN" in message
