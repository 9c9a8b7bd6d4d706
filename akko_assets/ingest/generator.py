"""Deterministic synthetic card transactions.

Faker is used once, to build small pools (customer names, merchants); every row is then drawn
with vectorised NumPy from those pools, so 100 000 rows take well under a second and the same
seed always gives the same rows. Fraud is injected as the patterns a fraud team looks for:
card-testing bursts, large night-time amounts, country jumps and new-merchant spikes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
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
    """
    if n_rows <= 0:
        return TRANSACTION_SCHEMA.empty_table()
    end = end or dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.timezone.utc)
    start = start or end - dt.timedelta(days=90)
    if start >= end:
        raise ValueError(f"empty time window: start {start} is not before end {end}")
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
    country = pools.customer_country[cust].copy()

    tone = rng.random(n_rows)
    memo = np.where(
        tone < 0.12,
        rng.choice(np.array(POSITIVE_MEMOS, dtype=object), n_rows),
        np.where(
            tone < 0.92,
            rng.choice(np.array(NEUTRAL_MEMOS, dtype=object), n_rows),
            rng.choice(np.array(NEGATIVE_MEMOS, dtype=object), n_rows),
        ),
    )

    is_fraud = np.zeros(n_rows, dtype=bool)
    n_fraud = int(round(n_rows * fraud_share))
    if n_fraud:
        fraud_rows = rng.choice(n_rows, size=n_fraud, replace=False, p=_fraud_weights(region, ts, end))
        pattern = rng.integers(0, 4, size=n_fraud)
        is_fraud[fraud_rows] = True
        memo[fraud_rows] = rng.choice(np.array(FRAUD_MEMOS, dtype=object), n_fraud)

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
            country[burst] = pools.customer_country[cust[burst]]
        # 1: large night-time amount.
        night = fraud_rows[pattern == 1]
        ts[night] = ts[night] - (ts[night] % 86_400_000_000) + rng.integers(1, 5, len(night)) * 3_600_000_000
        amount[night] = amount[night] * rng.uniform(8, 25, len(night)) + 500
        # 2: geo jump: the card is used in another region's country.
        jump = fraud_rows[pattern == 2]
        new_region = (region[jump] + rng.integers(1, len(REGIONS), len(jump))) % len(REGIONS)
        region[jump] = new_region
        country[jump] = [COUNTRIES[REGIONS[r]][i % len(COUNTRIES[REGIONS[r]])] for i, r in enumerate(new_region)]
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
    region_codes = np.array(REGIONS, dtype=object)[region]
    ids = np.char.add("T", np.char.zfill(np.arange(first_index, first_index + n_rows).astype(str), 10))
    loaded = loaded_at or dt.datetime.now(dt.timezone.utc)
    columns = {
        "transaction_id": ids.astype(object),
        "customer_id": np.char.add("C", np.char.zfill(cust.astype(str), 7)).astype(object),
        "customer_name": pools.customer_names[cust],
        "card_pan": pools.customer_pan[cust],
        "amount": pa.array(amount, pa.float64()).cast(pa.decimal128(12, 2)),
        "currency": np.array([CURRENCY[r] for r in REGIONS], dtype=object)[region],
        "merchant": pools.merchant_names[merchant],
        "merchant_category": np.array(CATEGORY_NAMES, dtype=object)[cat],
        "channel": np.array(CHANNELS, dtype=object)[channel],
        "region": region_codes,
        "country": country,
        "status": pools.customer_status[cust],
        "memo": memo,
        "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "is_fraud": is_fraud,
        "updated_at": pa.array(np.full(n_rows, int(loaded.timestamp() * 1_000_000)), pa.timestamp("us", tz="UTC")),
    }
    table = pa.table({name: columns[name] for name in TRANSACTION_SCHEMA.names})
    order = np.argsort(ts, kind="stable")
    # Ids follow time order, as a real system would assign them.
    table = table.take(pa.array(order)).set_column(0, "transaction_id", pa.array(ids.astype(object)))
    return table.cast(TRANSACTION_SCHEMA)
