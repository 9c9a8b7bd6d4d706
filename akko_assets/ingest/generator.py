"""Deterministic synthetic card transactions.

Faker is used once, to build small pools (customer names, merchants); every row is then drawn
with vectorised NumPy from those pools, so 100 000 rows take well under a second and the same
seed always gives the same rows. Fraud is injected as the patterns a fraud team looks for:
card-testing bursts, large night-time amounts, country jumps and new-merchant spikes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from faker import Faker

from akko_assets.contract import CHANNELS, STATUSES, TRANSACTION_SCHEMA
from akko_assets.settings import REGIONS

REGION_WEIGHTS = np.array([0.34, 0.28, 0.22, 0.10, 0.06])
COUNTRIES = {
    "EU": ("DE", "FR", "ES", "IT", "NL", "PL", "SE", "IE"),
    "NA": ("US", "CA", "MX"),
    "APAC": ("JP", "SG", "AU", "IN", "KR"),
    "LATAM": ("BR", "AR", "CL", "CO", "PE"),
    "MEA": ("AE", "ZA", "SA", "EG", "NG"),
}
NAME_LOCALES = {
    "EU": ["de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL"],
    "NA": ["en_US", "en_CA"],
    "APAC": ["en_AU", "en_IN"],
    "LATAM": ["es_MX", "pt_BR"],
    "MEA": ["en_US", "ar_AA"],
}
CURRENCY = {"EU": "EUR", "NA": "USD", "APAC": "USD", "LATAM": "USD", "MEA": "USD"}
# category -> (median amount, log-normal sigma, channel weights online/pos/atm)
CATEGORIES = {
    "grocery": (42.0, 0.55, (0.15, 0.85, 0.0)),
    "restaurant": (38.0, 0.6, (0.10, 0.90, 0.0)),
    "fuel": (55.0, 0.35, (0.0, 1.0, 0.0)),
    "electronics": (240.0, 0.9, (0.65, 0.35, 0.0)),
    "travel": (420.0, 0.8, (0.85, 0.15, 0.0)),
    "fashion": (85.0, 0.7, (0.55, 0.45, 0.0)),
    "pharmacy": (25.0, 0.5, (0.2, 0.8, 0.0)),
    "cash_withdrawal": (150.0, 0.6, (0.0, 0.0, 1.0)),
    "digital_services": (14.0, 0.6, (1.0, 0.0, 0.0)),
    "home_improvement": (120.0, 0.8, (0.3, 0.7, 0.0)),
}
CATEGORY_NAMES = tuple(CATEGORIES)
CATEGORY_WEIGHTS = np.array([0.2, 0.16, 0.1, 0.05, 0.04, 0.1, 0.08, 0.07, 0.12, 0.08])
# Busy daytime, quiet nights; index = hour of day.
HOUR_WEIGHTS = np.array(
    [0.6, 0.35, 0.25, 0.2, 0.25, 0.5, 1.2, 2.4, 3.6, 4.4, 4.8, 5.4,
     6.2, 5.8, 5.2, 5.0, 5.4, 6.0, 6.6, 6.2, 5.0, 3.6, 2.2, 1.2]
)
WEEKDAY_WEIGHTS = np.array([0.92, 0.95, 0.97, 1.0, 1.12, 1.25, 0.88])  # Monday..Sunday

POSITIVE_MEMOS = (
    "Great dinner with friends, lovely evening", "Birthday gift for my sister, she loved it",
    "Excellent service, thank you", "Happy with the new headphones", "Wonderful weekend trip",
    "Best coffee in town", "Nice surprise discount at checkout", "Fantastic concert tickets",
)
NEUTRAL_MEMOS = (
    "Groceries for the week", "Monthly subscription", "Fuel", "Lunch", "Pharmacy order",
    "Train ticket", "Cash for the market", "Household supplies", "Phone bill", "Office supplies",
    "", "Taxi to the airport", "Hardware store",
)
NEGATIVE_MEMOS = (
    "Charged twice, very annoyed", "Terrible service, still waiting for a refund",
    "Item arrived broken, awful", "Overpriced and disappointing", "Late delivery again, frustrating",
)
FRAUD_MEMOS = (
    "I did not make this purchase", "Unknown charge, looks like fraud",
    "Card was stolen, not me", "", "Online order", "Verification",
)


@dataclass(frozen=True)
class Pools:
    """Everything drawn with Faker, built once per (seed, customer count)."""

    customer_names: np.ndarray
    customer_region: np.ndarray  # index into REGIONS
    customer_country: np.ndarray
    customer_status: np.ndarray
    customer_pan: np.ndarray
    customer_weight: np.ndarray
    merchant_names: np.ndarray
    merchant_category: np.ndarray  # index into CATEGORY_NAMES


def luhn_check_digits(body: np.ndarray) -> np.ndarray:
    """Check digits for rows of 15 digits (ints 0-9), vectorised Luhn."""
    digits = body[:, ::-1].copy()
    doubled = digits[:, 0::2] * 2
    digits[:, 0::2] = np.where(doubled > 9, doubled - 9, doubled)
    return (10 - digits.sum(axis=1) % 10) % 10


def luhn_valid(pan: str) -> bool:
    if len(pan) != 16 or not pan.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(pan)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return total % 10 == 0


def make_pans(rng: np.random.Generator, n: int) -> np.ndarray:
    body = rng.integers(0, 10, size=(n, 15))
    body[:, 0] = rng.choice([4, 5], size=n)  # Visa / Mastercard-looking
    digits = np.concatenate([body, luhn_check_digits(body)[:, None]], axis=1)
    as_chars = (digits + ord("0")).astype(np.uint8)
    return np.array([row.tobytes().decode() for row in as_chars], dtype=object)


def build_pools(seed: int, n_customers: int, n_merchants: int = 400) -> Pools:
    rng = np.random.default_rng(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    region = rng.choice(len(REGIONS), size=n_customers, p=REGION_WEIGHTS)
    # Combine first and last names from small per-region pools: realistic names at any scale
    # without calling Faker once per customer.
    names = np.empty(n_customers, dtype=object)
    for r, code in enumerate(REGIONS):
        local = Faker(NAME_LOCALES[code])
        local.seed_instance(seed + r)
        firsts = np.array(sorted({local.first_name() for _ in range(300)}), dtype=object)
        lasts = np.array(sorted({local.last_name() for _ in range(400)}), dtype=object)
        mask = region == r
        k = int(mask.sum())
        names[mask] = firsts[rng.integers(0, len(firsts), k)] + " " + lasts[rng.integers(0, len(lasts), k)]
    country = np.empty(n_customers, dtype=object)
    for r, code in enumerate(REGIONS):
        mask = region == r
        country[mask] = rng.choice(COUNTRIES[code], size=int(mask.sum()))
    status = rng.choice(np.array(STATUSES, dtype=object), size=n_customers, p=[0.92, 0.05, 0.03])
    weight = rng.pareto(2.5, n_customers) + 0.2  # a few very active customers, many occasional ones
    merchants = np.array(sorted({fake.company() for _ in range(n_merchants * 2)})[:n_merchants], dtype=object)
    merchant_category = rng.choice(len(CATEGORY_NAMES), size=len(merchants), p=CATEGORY_WEIGHTS)
    return Pools(
        customer_names=names,
        customer_region=region,
        customer_country=country,
        customer_status=status,
        customer_pan=make_pans(rng, n_customers),
        customer_weight=weight / weight.sum(),
        merchant_names=merchants,
        merchant_category=merchant_category,
    )


def customer_count(n_rows: int) -> int:
    return max(50, n_rows // 40)


def _timestamps(rng: np.random.Generator, n: int, start: dt.datetime, end: dt.datetime) -> np.ndarray:
    """Microsecond epoch timestamps in [start, end) with weekly and daily seasonality."""
    start_us = int(start.timestamp() * 1_000_000)
    end_us = int(end.timestamp() * 1_000_000)
    day_us = 86_400_000_000
    days = max(1, (end_us - start_us) // day_us)
    day_start = start_us + np.arange(days, dtype=np.int64) * day_us
    weekday = ((day_start // day_us) + 3) % 7  # 1970-01-01 was a Thursday
    day_p = WEEKDAY_WEIGHTS[weekday]
    day_idx = rng.choice(days, size=n, p=day_p / day_p.sum())
    hour = rng.choice(24, size=n, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    within = rng.integers(0, 3_600_000_000, size=n)
    ts = day_start[day_idx] + hour.astype(np.int64) * 3_600_000_000 + within
    return np.minimum(ts, end_us - 1)


# Fraud is not uniform: some regions are hit harder, and a campaign runs in the last two weeks
# of the window (so "last week" questions have a real answer in the demo).
REGION_FRAUD_WEIGHT = np.array([0.8, 0.9, 1.0, 1.5, 1.7])  # EU, NA, APAC, LATAM, MEA
CAMPAIGN_REGIONS = (3, 4)  # LATAM, MEA
CAMPAIGN_DAYS = 14
CAMPAIGN_BOOST = 4.0


def _fraud_weights(region: np.ndarray, ts: np.ndarray, end: dt.datetime) -> np.ndarray:
    weight = REGION_FRAUD_WEIGHT[region].copy()
    campaign_start = int((end - dt.timedelta(days=CAMPAIGN_DAYS)).timestamp() * 1_000_000)
    weight[(ts >= campaign_start) & np.isin(region, CAMPAIGN_REGIONS)] *= CAMPAIGN_BOOST
    return weight / weight.sum()


# Rows are drawn as small integer codes (indices into the pools below) and become strings only in
# Arrow, batch by batch: 1M rows cost ~80 MB of NumPy instead of ~1 GB of Python string objects.
MEMOS = POSITIVE_MEMOS + NEUTRAL_MEMOS + NEGATIVE_MEMOS + FRAUD_MEMOS
_NEUTRAL_AT = len(POSITIVE_MEMOS)
_NEGATIVE_AT = _NEUTRAL_AT + len(NEUTRAL_MEMOS)
_FRAUD_AT = _NEGATIVE_AT + len(NEGATIVE_MEMOS)
ALL_COUNTRIES = tuple(c for code in REGIONS for c in COUNTRIES[code])
_COUNTRY_AT = np.cumsum([0] + [len(COUNTRIES[code]) for code in REGIONS])[:-1]  # first index per region
_COUNTRY_LEN = np.array([len(COUNTRIES[code]) for code in REGIONS])
GENERATE_BATCH_ROWS = 250_000


def _draw(n_rows: int, seed: int, start: dt.datetime, end: dt.datetime, first_index: int,
          fraud_share: float) -> tuple[Pools, dict[str, np.ndarray]]:
    """Every row as integer codes and numbers, already in time order (the order ids follow)."""
    pools = build_pools(seed, customer_count(max(n_rows, first_index + n_rows)))
    # Each batch gets its own stream so appends differ from the first load but stay deterministic.
    rng = np.random.default_rng([seed, first_index])

    cust = rng.choice(len(pools.customer_names), size=n_rows, p=pools.customer_weight)
    cat = rng.choice(len(CATEGORY_NAMES), size=n_rows, p=CATEGORY_WEIGHTS)
    # Merchants of the chosen category, so merchant and category agree.
    merchant = np.empty(n_rows, dtype=np.int64)
    for c in range(len(CATEGORY_NAMES)):
        rows = np.flatnonzero(cat == c)
        candidates = np.flatnonzero(pools.merchant_category == c)
        # Customers keep to a few merchants per category: pick by (customer, small offset).
        offset = rng.integers(0, 3, size=len(rows))
        merchant[rows] = candidates[(cust[rows] * 7 + offset) % len(candidates)]
    median = np.array([CATEGORIES[n][0] for n in CATEGORY_NAMES])[cat]
    sigma = np.array([CATEGORIES[n][1] for n in CATEGORY_NAMES])[cat]
    amount = np.exp(np.log(median) + sigma * rng.standard_normal(n_rows))
    channel_p = np.array([CATEGORIES[n][2] for n in CATEGORY_NAMES])[cat]
    channel = (rng.random(n_rows)[:, None] > np.cumsum(channel_p, axis=1)).sum(axis=1)
    channel = np.minimum(channel, 2)
    ts = _timestamps(rng, n_rows, start, end)
    region = pools.customer_region[cust].copy()
    customer_country = np.array([ALL_COUNTRIES.index(c) for c in pools.customer_country], dtype=np.int64)
    country = customer_country[cust]

    tone = rng.random(n_rows)
    positive = rng.choice(len(POSITIVE_MEMOS), n_rows)
    neutral = _NEUTRAL_AT + rng.choice(len(NEUTRAL_MEMOS), n_rows)
    negative = _NEGATIVE_AT + rng.choice(len(NEGATIVE_MEMOS), n_rows)
    memo = np.where(tone < 0.12, positive, np.where(tone < 0.92, neutral, negative))
    del positive, neutral, negative

    is_fraud = np.zeros(n_rows, dtype=bool)
    n_fraud = int(round(n_rows * fraud_share))
    if n_fraud:
        fraud_rows = rng.choice(n_rows, size=n_fraud, replace=False, p=_fraud_weights(region, ts, end))
        pattern = rng.integers(0, 4, size=n_fraud)
        is_fraud[fraud_rows] = True
        memo[fraud_rows] = _FRAUD_AT + rng.choice(len(FRAUD_MEMOS), n_fraud)

        # 0: card-testing burst: small online amounts at one merchant within minutes of an anchor.
        burst = fraud_rows[pattern == 0]
        if len(burst):
            anchors = burst[:: 6]
            anchor_of = anchors[np.minimum(np.arange(len(burst)) // 6, len(anchors) - 1)]
            cust[burst] = cust[anchor_of]
            ts[burst] = ts[anchor_of] + rng.integers(0, 20 * 60_000_000, size=len(burst))
            amount[burst] = rng.uniform(0.5, 4.99, size=len(burst))
            channel[burst] = 0
            merchant[burst] = merchant[anchor_of]
            region[burst] = pools.customer_region[cust[burst]]
            country[burst] = customer_country[cust[burst]]
        # 1: large night-time amount.
        night = fraud_rows[pattern == 1]
        ts[night] = ts[night] - (ts[night] % 86_400_000_000) + rng.integers(1, 5, len(night)) * 3_600_000_000
        amount[night] = amount[night] * rng.uniform(8, 25, len(night)) + 500
        # 2: geo jump: the card is used in another region's country.
        jump = fraud_rows[pattern == 2]
        new_region = (region[jump] + rng.integers(1, len(REGIONS), len(jump))) % len(REGIONS)
        region[jump] = new_region
        country[jump] = _COUNTRY_AT[new_region] + np.arange(len(jump)) % _COUNTRY_LEN[new_region]
        amount[jump] = amount[jump] * rng.uniform(2, 6, len(jump))
        channel[jump] = rng.choice([1, 2], len(jump))
        # 3: spike at a merchant the customer never uses (any category, high amount).
        spike = fraud_rows[pattern == 3]
        merchant[spike] = rng.integers(0, len(pools.merchant_names), len(spike))
        amount[spike] = amount[spike] * rng.uniform(4, 12, len(spike)) + 200
        channel[spike] = 0
        cat[spike] = pools.merchant_category[merchant[spike]]

    end_us = int(end.timestamp() * 1_000_000)
    start_us = int(start.timestamp() * 1_000_000)
    ts = np.clip(ts, start_us, end_us - 1)
    amount = np.round(np.clip(amount, 0.5, 999_999.0), 2)
    order = np.argsort(ts, kind="stable")  # ids follow time order, as a real system would assign them
    columns = {"cust": cust, "cat": cat, "merchant": merchant, "channel": channel, "region": region,
               "country": country, "memo": memo, "amount": amount, "ts": ts, "is_fraud": is_fraud}
    return pools, {name: values[order] for name, values in columns.items()}


def _prefixed(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """'T0000000042' from 42, in Arrow's C kernels."""
    padded = pc.utf8_lpad(pa.array(numbers).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, padded, "")


def iter_transaction_batches(
    n_rows: int,
    seed: int,
    as_of: dt.date,
    *,
    first_index: int = 0,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    loaded_at: dt.datetime | None = None,
    fraud_share: float = 0.025,
    batch_rows: int = GENERATE_BATCH_ROWS,
) -> Iterator[pa.Table]:
    """The rows of `generate_transactions` as consecutive Arrow tables of at most `batch_rows` rows.

    The whole draw happens first (fraud patterns span the window), so the rows do not depend on
    `batch_rows`; only the strings are built per batch, which is what keeps memory bounded.
    """
    if n_rows <= 0:
        return
    end = end or dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.timezone.utc)
    start = start or end - dt.timedelta(days=90)
    if start >= end:
        raise ValueError(f"empty time window: start {start} is not before end {end}")
    pools, rows = _draw(n_rows, seed, start, end, first_index, fraud_share)
    loaded_us = int((loaded_at or dt.datetime.now(dt.timezone.utc)).timestamp() * 1_000_000)
    names = pa.array(pools.customer_names, pa.string())
    pans = pa.array(pools.customer_pan, pa.string())
    statuses = pa.array(pools.customer_status, pa.string())
    merchants = pa.array(pools.merchant_names, pa.string())
    lookups = {
        "currency": pa.array([CURRENCY[r] for r in REGIONS]), "merchant_category": pa.array(CATEGORY_NAMES),
        "channel": pa.array(CHANNELS), "region": pa.array(REGIONS), "country": pa.array(ALL_COUNTRIES),
        "memo": pa.array(MEMOS),
    }
    for lo in range(0, n_rows, batch_rows):
        hi = min(lo + batch_rows, n_rows)
        cust, region = rows["cust"][lo:hi], rows["region"][lo:hi]
        columns = {
            "transaction_id": _prefixed("T", np.arange(first_index + lo, first_index + hi), 10),
            "customer_id": _prefixed("C", cust, 7),
            "customer_name": names.take(cust),
            "card_pan": pans.take(cust),
            "amount": pa.array(rows["amount"][lo:hi], pa.float64()).cast(pa.decimal128(12, 2)),
            "currency": lookups["currency"].take(region),
            "merchant": merchants.take(rows["merchant"][lo:hi]),
            "merchant_category": lookups["merchant_category"].take(rows["cat"][lo:hi]),
            "channel": lookups["channel"].take(rows["channel"][lo:hi]),
            "region": lookups["region"].take(region),
            "country": lookups["country"].take(rows["country"][lo:hi]),
            "status": statuses.take(cust),
            "memo": lookups["memo"].take(rows["memo"][lo:hi]),
            "ts": pa.array(rows["ts"][lo:hi], pa.timestamp("us", tz="UTC")),
            "is_fraud": pa.array(rows["is_fraud"][lo:hi]),
            "updated_at": pa.array(np.full(hi - lo, loaded_us), pa.timestamp("us", tz="UTC")),
        }
        yield pa.table({name: columns[name] for name in TRANSACTION_SCHEMA.names}).cast(TRANSACTION_SCHEMA)


def generate_transactions(
    n_rows: int,
    seed: int,
    as_of: dt.date,
    *,
    first_index: int = 0,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    loaded_at: dt.datetime | None = None,
    fraud_share: float = 0.025,
) -> pa.Table:
    """Generate `n_rows` transactions as an Arrow table in the data-contract schema.

    By default rows span the 90 days ending at the end of `as_of` (UTC). `first_index` numbers the
    transaction ids, so an append continues after existing rows; `start`/`end` narrow the window.
    For large sizes use `iter_transaction_batches` (same rows, bounded memory).
    """
    batches = list(iter_transaction_batches(n_rows, seed, as_of, first_index=first_index, start=start, end=end,
                                            loaded_at=loaded_at, fraud_share=fraud_share))
    return pa.concat_tables(batches) if batches else TRANSACTION_SCHEMA.empty_table()
