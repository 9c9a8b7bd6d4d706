"""The data contract from DESIGN.md as code: column names and types are fixed here once."""

from __future__ import annotations

import pyarrow as pa

# akko.raw_transactions and banking.transactions
TRANSACTION_SCHEMA = pa.schema(
    [
        pa.field("transaction_id", pa.string(), nullable=False),
        pa.field("customer_id", pa.string()),
        pa.field("customer_name", pa.string()),
        pa.field("card_pan", pa.string()),
        pa.field("amount", pa.decimal128(12, 2)),
        pa.field("currency", pa.string()),
        pa.field("merchant", pa.string()),
        pa.field("merchant_category", pa.string()),
        pa.field("channel", pa.string()),
        pa.field("region", pa.string()),
        pa.field("country", pa.string()),
        pa.field("status", pa.string()),
        pa.field("memo", pa.string()),
        pa.field("ts", pa.timestamp("us", tz="UTC")),
        pa.field("is_fraud", pa.bool_()),
        pa.field("updated_at", pa.timestamp("us", tz="UTC")),
    ]
)
TRANSACTION_COLUMNS = tuple(TRANSACTION_SCHEMA.names)

CHANNELS = ("online", "pos", "atm")
STATUSES = ("active", "suspended", "closed")

# PII columns and the kind of value they hold; the dbt YAML tags them with meta.pii and the
# policies are generated from those tags (see governance/).
PII_COLUMNS = {"customer_name": "name", "card_pan": "pan"}

# Feature columns computed in dbt (marts.fct_transactions) and fed, in this order, to the
# Isolation Forest and to akko_ai_anomaly(amount, ...). Changing the order is a model-breaking
# change: the exported model data records it and the UDF checks it.
MODEL_FEATURES = (
    "amount",
    "hour_of_day",
    "is_night",
    "amount_zscore",
    "txn_count_1h",
    "txn_count_24h",
    "is_new_merchant",
    "country_changed",
)
