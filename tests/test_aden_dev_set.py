"""ADEN's execution accuracy on the development set (hand-written gold SQL, result-set comparison)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from akko_assets.aden import ask
from akko_assets.aden.evaluate import evaluate, load_dev_set, same_result
from akko_assets.catalog.assets import semantic_catalog
from akko_assets.catalog.semantic import catalog_path
from akko_assets.resources import AkkoSettingsResource, IcebergResource
from akko_assets.resources.engine import connect_curated
from akko_assets.settings import load_settings

DEV_SET = Path(__file__).parent / "data" / "aden_dev_set.yaml"
TARGET_ACCURACY = 0.95


@pytest.fixture(scope="module")
def catalog_ready(pipeline_run):
    if not catalog_path(load_settings()).exists():
        result = dg.materialize([semantic_catalog], resources={"settings": AkkoSettingsResource(), "iceberg": IcebergResource()})
        assert result.success


def test_dev_set_is_large_and_covers_the_grammar():
    items = load_dev_set(DEV_SET)
    assert len(items) >= 80
    text = " ".join(i["q"].lower() for i in items)
    for phrase in ("last week", "this week", "yesterday", "last 30 days", "last 2 weeks", "last 2 months", "november",
                   "between", "since", "above", "more than", "at least", "below", "top", "bottom", "highest",
                   "lowest", "daily", "weekly", "monthly", "customers", "sentiment", "fraud score", "average amount",
                   "spend", "country", "channel", "merchant category", "status", "europe"):
        assert phrase in text, phrase


# (file, floor): the dev set carries the target; the held-out paraphrases were written after tuning
# (the first 25 then drove four general fixes, reported as such), the blind set was run once untouched.
SETS = [("aden_dev_set.yaml", TARGET_ACCURACY), ("aden_holdout_set.yaml", 0.8), ("aden_blind_set.yaml", 0.8)]


@pytest.mark.parametrize("name,floor", SETS, ids=[n for n, _ in SETS])
def test_accuracy(catalog_ready, name, floor):
    items = load_dev_set(DEV_SET.parent / name)
    results = evaluate(items, lambda q: ask(q, user="alice"), connect_curated)
    accuracy = sum(r.correct for r in results) / len(results)
    failures = "\n".join(f"- {r.question}: {r.detail}" for r in results if not r.correct)
    print(f"\nADEN accuracy on {name}: {accuracy:.3f} ({sum(r.correct for r in results)}/{len(results)})")
    assert accuracy >= floor, failures


def test_the_seed_question(catalog_ready):
    answer = ask("Which regions saw a fraud rate above 5 % last week?", user="alice")
    assert not answer.refused
    assert answer.columns == ["region", "fraud_rate"]
    assert "DATE '2026-11-23' AND DATE '2026-11-29'" in answer.sql  # the previous ISO week before 2026-11-30
    con = connect_curated()
    try:
        rates = con.execute(
            "SELECT region, count_if(is_flagged) / count(*) FROM marts.enriched_transactions "
            "WHERE txn_date BETWEEN '2026-11-23' AND '2026-11-29' GROUP BY region"
        ).fetchall()
    finally:
        con.close()
    expected = [r for r in rates if r[1] > 0.05]
    assert same_result(expected, answer.rows, ordered=False)
    assert "last week (2026-11-23 to 2026-11-29)" in answer.answer
    for region, rate in answer.rows:
        assert region in answer.answer and f"{rate * 100:.2f} %" in answer.answer


def test_comparison_is_strict_and_numbers_tolerant():
    assert same_result([(1, 0.1)], [(1.0, 0.1 + 1e-12)], ordered=True)
    assert not same_result([(1, 0.1)], [(1, 0.11)], ordered=True)
    assert not same_result([("a", 1), ("b", 2)], [("b", 2), ("a", 1)], ordered=True)
    assert same_result([("a", 1), ("b", 2)], [("b", 2), ("a", 1)], ordered=False)
    assert not same_result([("a", 1)], [("a", 1, 2)], ordered=False)
