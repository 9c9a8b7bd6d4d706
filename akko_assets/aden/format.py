"""Answer sentences: what the rows say, in words, with the period and filters that produced them."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping, Sequence
from typing import Any

from akko_assets.aden.parser import Plan, dimension_alias

SENTENCE_ITEMS = 10
_OP_WORDS = {">": "above", ">=": "at least", "<": "below", "<=": "at most", "=": "equal to"}


def format_value(value: Any, kind: str) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool):
        number = float(value)
        if kind == "rate":
            return f"{number * 100:.2f} %"
        if kind == "count":
            return f"{round(number):,}"
        if kind == "amount":
            return f"{number:,.2f}"
        return f"{number:.3f}"
    return str(value)


def _threshold(value: float, kind: str) -> str:
    if kind == "rate":
        return f"{value * 100:g} %"
    return f"{value:,g}"


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _plural(noun: str) -> str:
    if noun.endswith("y"):
        return noun[:-1] + "ies"
    return noun + ("es" if noun.endswith(("s", "x")) else "s")


def _condition(c: Any, metrics: Mapping[str, Any]) -> str:
    metric = metrics[c.target]
    if metric["kind"] == "count":
        return f"{_OP_WORDS[c.op]} {_threshold(c.value, 'count')} {metric['label']}"
    return f"a {metric['label']} {_OP_WORDS[c.op]} {_threshold(c.value, metric['kind'])}"


def _scope(plan: Plan) -> str:
    parts = []
    if plan.time_range is not None:
        parts.append(plan.time_range.describe())
    if plan.filter_text:
        parts.append("for " + ", ".join(plan.filter_text))
    return (" " + " ".join(parts)) if parts else " over all recorded data"


def answer_sentence(plan: Plan, model: Mapping[str, Any], columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    metrics = model["metrics"]
    scope = _scope(plan)
    if plan.kind == "list":
        noun = "transaction" if len(rows) == 1 else "transactions"
        if "is_flagged" in plan.filters:
            noun = "flagged " + noun
        return f"{len(rows):,} {noun}{scope}" + (" (first 1,000 shown)" if len(rows) >= 1000 else "") + "."

    if not plan.dimensions:
        row = rows[0] if rows else [None] * len(columns)
        values = dict(zip(columns, row))
        parts = [_scalar_part(m, metrics[m], values.get(m)) for m in plan.metrics]
        sentence = f"{_upper_first(scope.strip())}, " + " and ".join(parts) + "."
        for check in plan.checks:
            kind = metrics[check.target]["kind"]
            actual = values.get(check.target)
            holds = actual is not None and _compare(float(actual), check.op, check.value)
            sentence = (f"{'Yes' if holds else 'No'}: {sentence[0].lower()}{sentence[1:-1]}, which is "
                        f"{'' if holds else 'not '}{_OP_WORDS[check.op]} {_threshold(check.value, kind)}.")
        return sentence

    dim_labels = [model["time_grains"][d]["synonyms"][0] if d in model["time_grains"] else model["dimensions"][d]["label"]
                  for d in plan.dimensions]
    dim_cols = [dimension_alias(d, model) for d in plan.dimensions]

    if not rows:
        condition = " and ".join(_condition(c, metrics) for c in plan.having)
        return f"No {dim_labels[0]} had {condition or 'any matching transactions'}{scope}."
    items = []
    for row in rows[:SENTENCE_ITEMS]:
        values = dict(zip(columns, row))
        key = " / ".join(format_value(values.get(c), "") for c in dim_cols)
        metric_text = ", ".join(format_value(values.get(m), metrics[m]["kind"]) for m in plan.metrics)
        items.append(f"{key} ({metric_text})")
    more = f" and {len(rows) - SENTENCE_ITEMS} more" if len(rows) > SENTENCE_ITEMS else ""
    noun = dim_labels[0] if len(rows) == 1 else _plural(dim_labels[0])
    if plan.having:
        condition = " and ".join(_condition(c, metrics) for c in plan.having)
        return f"{len(rows)} {noun} had {condition}{scope}: " + "; ".join(items) + more + "."
    labels = " and ".join(metrics[m]["label"] for m in plan.metrics)
    if plan.order and plan.order[0] in metrics and plan.limit == 1:
        direction = "highest" if plan.order[1] else "lowest"
        return f"The {dim_labels[0]} with the {direction} {metrics[plan.order[0]]['label']}{scope}: " + items[0] + "."
    if plan.order and plan.order[0] in metrics and plan.limit:
        direction = "top" if plan.order[1] else "bottom"
        return f"The {direction} {len(rows)} {noun} by {metrics[plan.order[0]]['label']}{scope}: " + "; ".join(items) + "."
    by = " and ".join(dim_labels)
    return f"{_upper_first(labels)} by {by}{scope}: " + "; ".join(items) + more + "."



def _scalar_part(name: str, metric: Mapping[str, Any], value: Any) -> str:
    if metric["kind"] == "count":
        return f"the number of {metric['label']} was {format_value(value, 'count')}"
    return f"the {metric['label']} was {format_value(value, metric['kind'])}"


def _compare(actual: float, op: str, value: float) -> bool:
    return {">": actual > value, ">=": actual >= value, "<": actual < value, "<=": actual <= value,
            "=": abs(actual - value) < 1e-9}[op]


def llm_answer_sentence(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    if len(rows) == 1 and len(columns) == 1:
        return f"The answer is {format_value(rows[0][0], 'score' if isinstance(rows[0][0], float) else '')}."
    return f"{len(rows):,} row{'s' if len(rows) != 1 else ''} ({', '.join(columns)})."
