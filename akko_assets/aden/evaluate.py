"""Execution accuracy of ADEN on a development set (used by the tests and bench/bench_aden.py).

Each item has a question and hand-written gold SQL. The gold SQL runs as is on the curated layer;
ADEN's answer rows must equal the gold rows: same column count, same multiset of rows (in order
when the item says `ordered: true`), numbers within a relative tolerance.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import yaml

REL_TOL = 1e-6
ABS_TOL = 1e-9


def load_dev_set(path: Path) -> list[dict[str, Any]]:
    items = yaml.safe_load(Path(path).read_text())
    if not isinstance(items, list) or not all("q" in i and "gold" in i for i in items):
        raise ValueError(f"{path}: expected a list of {{q, gold[, ordered]}} items")
    return items


def _norm(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float, decimal.Decimal)):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.date() if value.time() == dt.time() and value.tzinfo is None else value
    return value


def _key(row: Sequence[Any]) -> tuple[Any, ...]:
    # Sort key: numbers rounded so near-equal values sort together; None first.
    return tuple((0, "") if v is None else (1, round(v, 6)) if isinstance(v, float) else (2, str(v)) for v in row)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    return a == b


def same_result(gold: Sequence[Sequence[Any]], got: Sequence[Sequence[Any]], ordered: bool) -> bool:
    gold_rows = [tuple(_norm(v) for v in r) for r in gold]
    got_rows = [tuple(_norm(v) for v in r) for r in got]
    if len(gold_rows) != len(got_rows):
        return False
    if gold_rows and len(gold_rows[0]) != len(got_rows[0]):
        return False
    if not ordered:
        gold_rows, got_rows = sorted(gold_rows, key=_key), sorted(got_rows, key=_key)
    return all(_same(a, b) for g, r in zip(gold_rows, got_rows) for a, b in zip(g, r))


@dataclass
class ItemResult:
    question: str
    correct: bool
    seconds: float
    detail: str


def evaluate(items: list[dict[str, Any]], ask: Callable[[str], Any],
             connect: Callable[[], duckdb.DuckDBPyConnection]) -> list[ItemResult]:
    """Ask every question (timed) and compare with the gold SQL's rows."""
    con = connect()
    results = []
    try:
        for item in items:
            gold = con.execute(item["gold"]).fetchall()
            start = time.perf_counter()
            answer = ask(item["q"])
            seconds = time.perf_counter() - start
            if answer.refused:
                results.append(ItemResult(item["q"], False, seconds, f"refused: {answer.reason}"))
                continue
            ok = same_result(gold, answer.rows, bool(item.get("ordered")))
            detail = "" if ok else f"gold {gold[:3]} ({len(gold)} rows) vs got {answer.rows[:3]} ({len(answer.rows)} rows)\n{answer.sql}"
            results.append(ItemResult(item["q"], ok, seconds, detail))
    finally:
        con.close()
    return results
