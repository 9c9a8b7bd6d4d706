"""The semantic catalog ADEN reads: tables, columns (type, description, PII tag) and a semantic
model (metrics, dimensions, synonyms, known values).

Built from two sources so neither can drift silently: the dbt manifest says what each column
means and which are PII; the curated engine says which tables and columns really exist (and their
types), and which dimension values occur. Tables the manifest does not know (the enrichment
output) get descriptions from ENRICHMENT_COLUMNS below.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb

from akko_assets.settings import DBT_PROJECT_DIR, Settings

CATALOG_VERSION = 1
CATALOG_FILE = Path("catalog") / "semantic_catalog.json"
DEFAULT_MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"
FACT_TABLE = "marts.enriched_transactions"
CUSTOMER_TABLE = "marts.dim_customers"
CURATED_TABLES = ("banking.transactions", "marts.fct_transactions", "marts.dim_customers", FACT_TABLE)

# Columns added by the enrichment stage (not a dbt model, so not in the manifest).
ENRICHMENT_COLUMNS = {
    "fraud_score": "Anomaly score of the production Isolation Forest, 0..1 (higher = more anomalous).",
    "is_flagged": "True when fraud_score is at or above the registered model threshold.",
    "memo_sentiment": "Sentiment of the memo text, -1 (negative) .. 1 (positive).",
}
ENRICHMENT_DESCRIPTION = (
    "fct_transactions plus fraud_score, is_flagged and memo_sentiment from akko_ai_anomaly() and "
    "akko_ai_sentiment(); published by the enrichment stage."
)

_FLAG_WORDS = ("flagged", "fraudulent", "suspicious", "fraud")
_SHARE_WORDS = ("share", "percentage", "proportion", "fraction", "ratio", "percent", "rate")

# The metrics of the business glossary (DESIGN.md: fraud rate = flagged / all in the period).
# `sql` is an aggregate over one row of FACT_TABLE; `kind` drives formatting and comparisons.
METRICS: dict[str, dict[str, Any]] = {
    "transactions": {
        "label": "transactions", "kind": "count", "sql": "count(*)",
        "description": "Number of transactions.",
        "synonyms": ["number of transactions", "transaction count", "count of transactions",
                     "number of payments", "number of purchases", "how many transactions", "transactions",
                     "payments", "purchases", "txns"],
    },
    "flagged_transactions": {
        "label": "flagged transactions", "kind": "count",
        "sql": "count(*) FILTER (WHERE is_flagged)",
        "description": "Number of transactions flagged by the fraud model (is_flagged).",
        "synonyms": [f"{w} transactions" for w in _FLAG_WORDS]
        + [f"{w} payments" for w in _FLAG_WORDS]
        + ["fraud cases", "frauds", "flags", "number of flags", "fraud count", "flagged count"],
    },
    "fraud_rate": {
        "label": "fraud rate", "kind": "rate",
        "sql": "avg(CASE WHEN is_flagged THEN 1.0 ELSE 0.0 END)",
        "description": "Flagged transactions / all transactions in the period.",
        "synonyms": ["fraud rate", "rate of fraud", "fraud ratio", "fraud share", "fraud percentage",
                     "flag rate", "flagged rate", "flagging rate", "suspicious rate", "fraud level"]
        + [f"{s} of {w} {n}" for s in _SHARE_WORDS for w in _FLAG_WORDS for n in ("transactions", "payments", "purchases")]
        + [f"{s} of {w}" for s in _SHARE_WORDS for w in _FLAG_WORDS]
        # In a fraud glossary "what share of transactions ..." asks for the flagged share.
        + [f"{s} of transactions" for s in ("share", "percentage", "proportion", "fraction", "percent")],
    },
    "total_amount": {
        "label": "total amount", "kind": "amount", "sql": "sum(amount)",
        "description": "Sum of amounts (mixed currencies as booked: EUR in EU, USD elsewhere).",
        "synonyms": ["total amount", "total spend", "total spending", "total spent", "total volume",
                     "transaction volume", "payment volume", "total value", "sum of amounts", "turnover",
                     "amount spent", "money spent", "spend", "spending", "volume", "amount", "amounts"],
    },
    "average_amount": {
        "label": "average amount", "kind": "amount", "sql": "avg(amount)",
        "description": "Mean transaction amount.",
        "synonyms": ["average amount", "average transaction amount", "mean amount", "avg amount",
                     "average spend", "average spending", "average transaction value", "average ticket",
                     "average transaction size", "average value", "mean transaction amount",
                     "average payment", "average purchase", "typical amount"],
    },
    "average_fraud_score": {
        "label": "average fraud score", "kind": "score", "sql": "avg(fraud_score)",
        "description": "Mean anomaly score of the fraud model.",
        "synonyms": ["average fraud score", "mean fraud score", "avg fraud score", "average anomaly score",
                     "average risk score", "average score", "fraud score", "anomaly score", "risk score"],
    },
    "average_sentiment": {
        "label": "average memo sentiment", "kind": "score", "sql": "avg(memo_sentiment)",
        "description": "Mean sentiment of the memo texts (-1..1).",
        "synonyms": ["average memo sentiment", "average sentiment", "mean sentiment", "avg sentiment",
                     "memo sentiment", "sentiment"],
    },
    "customers": {
        "label": "customers", "kind": "count", "sql": "count(DISTINCT customer_id)",
        "description": "Number of distinct customers.",
        "synonyms": ["number of customers", "distinct customers", "unique customers", "customer count",
                     "how many customers", "number of card holders", "number of cardholders",
                     "customers", "cardholders", "card holders", "clients"],
    },
}

DIMENSIONS: dict[str, dict[str, Any]] = {
    "region": {"label": "region", "synonyms": ["region", "regions", "geography", "area", "areas", "continent"]},
    "country": {"label": "country", "synonyms": ["country", "countries", "nation", "nations", "market", "markets"]},
    "channel": {"label": "channel", "synonyms": ["channel", "channels", "payment channel", "payment channels",
                                                 "payment method", "payment methods"]},
    "merchant_category": {"label": "merchant category", "synonyms": [
        "merchant category", "merchant categories", "merchant type", "merchant types", "type of merchant",
        "types of merchant", "kind of merchant", "category", "categories", "sector", "sectors", "mcc"]},
    "status": {"label": "account status", "synonyms": ["account status", "account statuses", "status", "statuses",
                                                       "account state"]},
    "merchant": {"label": "merchant", "synonyms": ["merchant", "merchants", "shop", "shops", "store", "stores"]},
    "customer": {"label": "customer", "column": "customer_id",
                 "synonyms": ["customer", "customers", "card holder", "cardholder", "client", "clients"]},
}
# Dimensions whose distinct values are listed in the catalog (small, closed vocabularies).
VALUE_DIMENSIONS = ("region", "country", "channel", "merchant_category", "status")

TIME_GRAINS = {
    "day": {"sql": "txn_date", "synonyms": ["day", "daily", "date", "days"]},
    "week": {"sql": "CAST(date_trunc('week', txn_date) AS DATE)", "synonyms": ["week", "weekly", "weeks", "iso week"]},
    "month": {"sql": "CAST(date_trunc('month', txn_date) AS DATE)", "synonyms": ["month", "monthly", "months"]},
}

# Hand-kept knowledge: how people name the contract's regions, channels and statuses.
VALUE_SYNONYMS: dict[str, dict[str, list[str]]] = {
    "region": {
        "EU": ["europe", "european", "eu"], "NA": ["north america", "north american"],
        "APAC": ["asia pacific", "asia-pacific", "asia", "apac"],
        "LATAM": ["latin america", "south america", "latam"],
        "MEA": ["middle east", "middle east and africa", "africa", "mea"],
    },
    "channel": {
        "online": ["online", "e-commerce", "ecommerce", "internet", "web", "card not present"],
        "pos": ["point of sale", "point-of-sale", "in-store", "in store", "card present", "pos", "terminal"],
        "atm": ["atm", "atms", "cash machine", "cash machines"],
    },
    "status": {
        "active": ["active"], "suspended": ["suspended"], "closed": ["closed"],
    },
}
# Values matched only as written in capitals (codes like IN, US, NA collide with English words).
CASE_SENSITIVE_DIMENSIONS = ("region", "country")


def _country_names(codes: Iterable[str]) -> dict[str, list[str]]:
    """English names for ISO country codes (babel ships CLDR data; it comes with dbt via agate)."""
    try:
        from babel import Locale

        territories = Locale("en").territories
    except Exception:  # noqa: BLE001 - no CLDR data: the codes still work
        territories = {}
    names: dict[str, list[str]] = {}
    for code in codes:
        name = territories.get(code)
        extra = {"US": ["usa", "america", "united states"], "GB": ["uk", "britain"],
                 "AE": ["uae", "emirates"], "KR": ["korea"], "NL": ["holland"]}.get(code, [])
        names[code] = list(dict.fromkeys(([name.lower()] if name else []) + extra))
    return names


def _category_synonyms(values: Iterable[str]) -> dict[str, list[str]]:
    """'cash_withdrawal' -> ['cash withdrawal', 'cash withdrawals']; a few irregular plurals."""
    irregular = {"grocery": ["groceries", "supermarket", "supermarkets"], "pharmacy": ["pharmacies", "drugstore"],
                 "restaurant": ["restaurants", "dining", "food"], "travel": ["travel", "airlines", "hotels"],
                 "fuel": ["fuel", "gas", "petrol"], "electronics": ["electronics"], "fashion": ["fashion", "clothing"],
                 "digital_services": ["digital", "subscriptions"], "home_improvement": ["diy"]}
    out: dict[str, list[str]] = {}
    for value in values:
        words = value.replace("_", " ")
        out[value] = list(dict.fromkeys([words, words + "s", *irregular.get(value, [])]))
    return out


def _manifest_columns(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """schema.table -> {description, columns: {name: {description, pii}}} from dbt models and sources."""
    out: dict[str, dict[str, Any]] = {}
    nodes = list(manifest.get("nodes", {}).values()) + list(manifest.get("sources", {}).values())
    for node in nodes:
        if node.get("resource_type") == "model":
            key = f"{node.get('schema', 'marts')}.{node.get('alias') or node['name']}".lower()
        elif node.get("resource_type") == "source":
            key = f"{node.get('source_name', node.get('schema'))}.{node.get('name')}".lower()
        else:
            continue
        columns = {}
        for name, column in (node.get("columns") or {}).items():
            meta = column.get("meta") or column.get("config", {}).get("meta") or {}
            columns[name.lower()] = {"description": column.get("description") or "", "pii": meta.get("pii")}
        out[key] = {"description": (node.get("description") or "").strip(), "columns": columns}
    return out


def _describe(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    schema, name = table.split(".")
    return [(str(r[0]), str(r[1])) for r in con.execute(f'DESCRIBE "{schema}"."{name}"').fetchall()]


def _distinct(con: duckdb.DuckDBPyConnection, table: str, column: str) -> list[str]:
    schema, name = table.split(".")
    rows = con.execute(
        f'SELECT DISTINCT "{column}" FROM "{schema}"."{name}" WHERE "{column}" IS NOT NULL ORDER BY 1'
    ).fetchall()
    return [str(r[0]) for r in rows]


def build_semantic_catalog(
    con: duckdb.DuckDBPyConnection,
    manifest_path: Path = DEFAULT_MANIFEST,
    as_of: dt.date | None = None,
) -> dict[str, Any]:
    """The catalog as a JSON-serialisable dict; raises ValueError when the curated layer lacks the fact table."""
    try:
        manifest = json.loads(Path(manifest_path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"dbt manifest {manifest_path} is missing: run `make setup` (dbt parse) before building the catalog"
        ) from None
    documented = _manifest_columns(manifest)
    present = {f"{s}.{t}".lower() for s, t in con.execute(
        "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal "
        "UNION SELECT schema_name, table_name FROM duckdb_tables()").fetchall()}

    tables: dict[str, Any] = {}
    for table in CURATED_TABLES:
        if table not in present:
            continue
        docs = documented.get(table) or {}
        if table == FACT_TABLE:
            fct = documented.get("marts.fct_transactions", {})
            docs = {"description": ENRICHMENT_DESCRIPTION, "columns": {
                **fct.get("columns", {}),
                **{c: {"description": d, "pii": None} for c, d in ENRICHMENT_COLUMNS.items()},
            }}
        if table == "banking.transactions":
            # The source YAML documents few columns: the fact table's descriptions apply to the same names.
            fct_cols = documented.get("marts.fct_transactions", {}).get("columns", {})
            docs = {"description": docs.get("description", ""), "columns": {**fct_cols, **docs.get("columns", {})}}
        columns = {}
        for name, col_type in _describe(con, table):
            doc = docs.get("columns", {}).get(name.lower(), {})
            columns[name] = {"type": col_type, "description": doc.get("description", ""), "pii": doc.get("pii")}
        schema, name = table.split(".")
        row_count = con.execute(f'SELECT count(*) FROM "{schema}"."{name}"').fetchone()[0]
        tables[table] = {"description": docs.get("description", ""), "row_count": int(row_count), "columns": columns}

    if FACT_TABLE not in tables:
        raise ValueError(f"{FACT_TABLE} is not in the curated layer: materialize marts/enriched_transactions first")

    fact_columns = set(tables[FACT_TABLE]["columns"])
    dimensions: dict[str, Any] = {}
    for name, spec in DIMENSIONS.items():
        column = spec.get("column", name)
        if column not in fact_columns:
            continue
        entry: dict[str, Any] = {"column": column, "label": spec["label"], "synonyms": spec["synonyms"]}
        if name in VALUE_DIMENSIONS:
            values = _distinct(con, FACT_TABLE, column)
            if name == "country":
                synonyms = _country_names(values)
            elif name == "merchant_category":
                synonyms = _category_synonyms(values)
            else:
                synonyms = VALUE_SYNONYMS.get(name, {})
            entry["values"] = values
            entry["value_synonyms"] = {v: synonyms.get(v, []) for v in values}
            entry["case_sensitive_codes"] = name in CASE_SENSITIVE_DIMENSIONS
        dimensions[name] = entry

    time_range = con.execute(f"SELECT min(txn_date), max(txn_date) FROM {FACT_TABLE}").fetchone()
    return {
        "version": CATALOG_VERSION,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "as_of": (as_of.isoformat() if as_of else None),
        "manifest": str(manifest_path),
        "tables": tables,
        "semantic_model": {
            "fact_table": FACT_TABLE,
            "customer_table": CUSTOMER_TABLE if CUSTOMER_TABLE in tables else None,
            "time_column": "txn_date",
            "data_range": [str(time_range[0]) if time_range[0] else None, str(time_range[1]) if time_range[1] else None],
            "metrics": METRICS,
            "dimensions": dimensions,
            "time_grains": TIME_GRAINS,
            "flag_filter": {"sql": "is_flagged", "synonyms": list(_FLAG_WORDS),
                            "negated": ["not flagged", "non-flagged", "unflagged", "legitimate", "genuine", "clean"]},
            "business_terms": {
                "fraud rate": "flagged transactions / all transactions in the period",
                "last week": "the previous full ISO week (Monday-Sunday) before AKKO_AS_OF",
            },
        },
    }


def catalog_path(settings: Settings) -> Path:
    return settings.home / CATALOG_FILE


def write_catalog(catalog: Mapping[str, Any], path: Path) -> Path:
    """Write-then-rename, so a reader never sees a half-written catalog."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".semantic_catalog.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(catalog, fh, indent=2, sort_keys=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_catalog(path: Path) -> dict[str, Any] | None:
    """The catalog at `path`, or None when it has not been materialized."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
