"""A small curated layer with the contract's tables, for governance tests, benchmarks and demos.

Builds banking.transactions, marts.fct_transactions, marts.enriched_transactions and
marts.dim_customers in a DuckDB connection, with realistic values: Luhn-valid 16-digit PANs,
full customer names, every region and account status. Deterministic for a given seed.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import duckdb
import pyarrow as pa

from akko_assets.contract import CHANNELS, STATUSES, TRANSACTION_SCHEMA
from akko_assets.settings import REGIONS

FIRST_NAMES = (
    "Ingrid", "Mateo", "Aiko", "Oluwaseun", "Priya", "Dmitri", "Camille", "Thandiwe", "Henrik", "Lucia",
    "Kwame", "Yasmin", "Bartholomew", "Siobhan", "Rafael", "Mei", "Anneliese", "Tomasz", "Farida", "Gustavo",
)
LAST_NAMES = (
    "Okonkwo", "Lindqvist", "Tanaka", "Castellanos", "Raghunathan", "Volkova", "Fitzgerald", "Nakamura",
    "Abernathy", "Kowalczyk", "Delacroix", "Mbeki", "Haverford", "Quintero", "Zielinski", "Ashworth",
)
COUNTRIES = {"EU": ("DE", "FR", "NL"), "NA": ("US", "CA"), "APAC": ("JP", "SG", "AU"), "LATAM": ("BR", "MX"), "MEA": ("AE", "ZA")}
CURRENCIES = {"EU": "EUR", "NA": "USD", "APAC": "JPY", "LATAM": "BRL", "MEA": "AED"}
MERCHANTS = (
    ("Corner Grocer", "grocery"), ("Fuel Stop 24", "fuel"), ("Skyway Airlines", "travel"),
    ("Pixel Electronics", "electronics"), ("Cafe Lumen", "restaurants"), ("QuickCash ATM", "cash"),
    ("Streamflix", "digital"), ("Harbor Hotel", "travel"), ("Gadget Outlet", "electronics"),
)
MEMOS = (
    "weekly groceries", "fuel top up", "flight booking", "new laptop, great price",
    "coffee with team", "cash withdrawal", "subscription renewal", "refund requested, terrible service",
    "hotel stay", "late night purchase",
)
BINS = ("4", "51", "37", "6011")


def luhn_check_digit(partial: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:  # these positions are doubled once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) > 1 and luhn_check_digit(number[:-1]) == number[-1]


def make_pan(rng: random.Random) -> str:
    prefix = rng.choice(BINS)
    body = prefix + "".join(rng.choice("0123456789") for _ in range(15 - len(prefix)))
    return body + luhn_check_digit(body)


def build_sample_curated(con: duckdb.DuckDBPyConnection, rows: int = 400, customers: int = 60, seed: int = 7) -> None:
    """Create (or replace) the four governed tables in `con`."""
    rng = random.Random(seed)
    people = []
    for i in range(customers):
        region = REGIONS[i % len(REGIONS)]
        status = STATUSES[(i // len(REGIONS)) % len(STATUSES)]  # every region x status pair occurs
        name = f"{FIRST_NAMES[i % len(FIRST_NAMES)]} {LAST_NAMES[(i * 7) % len(LAST_NAMES)]}"
        people.append((f"C{i:05d}", name, make_pan(rng), region, status))
    start = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    columns: dict[str, list] = {name: [] for name in TRANSACTION_SCHEMA.names}
    for n in range(rows):
        customer_id, name, pan, region, status = people[n % customers]
        merchant, category = MERCHANTS[rng.randrange(len(MERCHANTS))]
        ts = start + dt.timedelta(minutes=rng.randrange(60 * 24 * 60))
        values = {
            "transaction_id": f"T{n:07d}",
            "customer_id": customer_id,
            "customer_name": name,
            "card_pan": pan,
            "amount": Decimal(rng.randrange(100, 500_000)) / 100,
            "currency": CURRENCIES[region],
            "merchant": merchant,
            "merchant_category": category,
            "channel": CHANNELS[rng.randrange(len(CHANNELS))],
            "region": region,
            "country": rng.choice(COUNTRIES[region]),
            "status": status,
            "memo": rng.choice(MEMOS),
            "ts": ts,
            "is_fraud": rng.random() < 0.05,
            "updated_at": ts + dt.timedelta(seconds=5),
        }
        for key, value in values.items():
            columns[key].append(value)
    arrow = pa.table(columns, schema=TRANSACTION_SCHEMA)
    con.register("_akko_sample_rows", arrow)
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS banking")
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        con.execute("CREATE OR REPLACE TABLE banking.transactions AS SELECT * FROM _akko_sample_rows")
    finally:
        con.unregister("_akko_sample_rows")
    con.execute(
        "CREATE OR REPLACE TABLE marts.fct_transactions AS "
        "SELECT *, CAST(ts AS DATE) AS txn_date FROM banking.transactions"
    )
    # Deterministic pseudo-scores: the real ones come from the enrichment stage.
    con.execute(
        """
        CREATE OR REPLACE TABLE marts.enriched_transactions AS
        SELECT *,
               round((hash(transaction_id) % 1000) / 1000.0, 3) AS fraud_score,
               (hash(transaction_id) % 1000) >= 900 AS is_flagged,
               CASE WHEN memo LIKE '%terrible%' THEN -0.6 WHEN memo LIKE '%great%' THEN 0.7 ELSE 0.0 END
                   AS memo_sentiment
        FROM marts.fct_transactions
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE marts.dim_customers AS
        SELECT customer_id, any_value(customer_name) AS customer_name, any_value(card_pan) AS card_pan,
               any_value(region) AS region, any_value(status) AS status,
               min(ts) AS first_seen, max(ts) AS last_seen, count(*) AS txn_count,
               sum(amount) AS total_amount
        FROM marts.fct_transactions
        GROUP BY customer_id
        """
    )
