"""Optional LLM path: an OpenAI-compatible /v1/chat/completions endpoint writes the SQL.

Only used when AKKO_LLM_BASE_URL is set. The prompt carries the semantic catalog (tables,
columns, metric definitions, business terms and the concrete dates of relative ranges), the
answer's SQL goes through the same validation, cost gate and governed execution as the semantic
parser's, and any failure makes the caller fall back to the parser.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from akko_assets.aden.timerange import find_time_range

TIMEOUT_SECONDS = 20.0


class LLMError(RuntimeError):
    pass


def llm_configured() -> bool:
    return bool(os.environ.get("AKKO_LLM_BASE_URL", "").strip())


def _endpoint() -> str:
    base = os.environ["AKKO_LLM_BASE_URL"].strip().rstrip("/")
    return base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")


def build_prompt(question: str, catalog: Mapping[str, Any], as_of: dt.date) -> list[dict[str, str]]:
    model = catalog["semantic_model"]
    tables = []
    for name, table in catalog["tables"].items():
        if name.startswith("banking."):
            continue  # the raw replica: the marts answer everything
        columns = ", ".join(f"{c} {v['type']}" + (f" -- {v['description']}" if v["description"] else "")
                            for c, v in table["columns"].items())
        tables.append(f"{name}: {table['description']}\n  columns: {columns}")
    metrics = "\n".join(f"- {k}: {m['sql']} ({m['description']})" for k, m in model["metrics"].items())
    values = "\n".join(f"- {d['column']}: {', '.join(d['values'])}" for d in model["dimensions"].values() if d.get("values"))
    ranges = []
    for phrase in ("last week", "this week", "last month", "yesterday"):
        time_range, _ = find_time_range(phrase, as_of)
        if time_range:
            ranges.append(f"- {phrase}: {time_range.start} to {time_range.end}")
    system = (
        "You write one DuckDB SELECT statement answering a question about card transactions. "
        "Use only these tables and columns:\n" + "\n".join(tables)
        + "\nMetrics:\n" + metrics + "\nKnown values:\n" + values
        + f"\nToday is {as_of.isoformat()}. Filter dates with txn_date BETWEEN DATE 'a' AND DATE 'b' (inclusive). "
        "Relative ranges:\n" + "\n".join(ranges)
        + "\nFraud means flagged (is_flagged); never use is_fraud. Reply with the SQL only, in a ```sql block. "
        "If the question cannot be answered from these tables, reply exactly: REFUSE: <reason>."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


def ask_llm_for_sql(question: str, catalog: Mapping[str, Any], as_of: dt.date) -> str:
    """The SQL the endpoint proposes; LLMError on transport errors, refusals or replies without SQL."""
    body = json.dumps({
        "model": os.environ.get("AKKO_LLM_MODEL", "").strip() or "default",
        "messages": build_prompt(question, catalog, as_of),
        "temperature": 0,
    }).encode()
    headers = {"Content-Type": "application/json"}
    if os.environ.get("AKKO_LLM_API_KEY"):
        headers["Authorization"] = "Bearer " + os.environ["AKKO_LLM_API_KEY"]
    request = urllib.request.Request(_endpoint(), data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            reply = json.loads(response.read())
        content = reply["choices"][0]["message"]["content"]
    except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise LLMError(f"LLM endpoint {_endpoint()} failed: {exc}") from None
    content = str(content).strip()
    if content.upper().startswith("REFUSE"):
        raise LLMError(f"the LLM declined: {content[:200]}")
    block = re.search(r"```(?:sql)?\s*(.*?)```", content, re.DOTALL | re.IGNORECASE)
    sql = (block.group(1) if block else content).strip().rstrip(";").strip()
    if not re.match(r"(?is)^\s*(select|with)\b", sql):
        raise LLMError("the LLM reply holds no SELECT")
    return sql
