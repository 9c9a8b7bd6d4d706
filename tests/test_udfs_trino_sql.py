"""Trino CREATE FUNCTION generation: bodies run standalone, SQL parses as Trino, bad models stop it."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import pytest
import sqlglot
from sqlglot import exp

from akko_assets.contract import MODEL_FEATURES
from test_udfs_anomaly import synthetic_features, trained
from test_udfs_sentiment import RULE_CASES, labelled_memos
from trino_udfs.akko_ai_anomaly import make_scorer
from trino_udfs.akko_ai_sentiment import akko_ai_sentiment
from trino_udfs.trino_sql import trino_create_function_statements, write_trino_sql

STATEMENT = re.compile(
    r"^CREATE OR REPLACE FUNCTION (?P<name>[\w.]+)\((?P<args>[^)]*)\)\n.*?AS \$\$\n(?P<body>.*)\$\$$",
    re.DOTALL)

# Runs a function body the way Trino's sandbox does: a module with only the standard library.
RUNNER = """
import json, sys
namespace = {"__name__": "trino_udf"}
exec(compile(open(sys.argv[1], encoding="utf-8").read(), "udf_body", "exec"), namespace)
handler = namespace[sys.argv[2]]
rows = json.load(open(sys.argv[3], encoding="utf-8"))
third_party = sorted(m for m in sys.modules
                     if m.split(".")[0] not in sys.stdlib_module_names and m != "__main__")
print(json.dumps({"values": [handler(*row) for row in rows], "third_party": third_party,
                  "path": sys.path}))
"""


@pytest.fixture(scope="module")
def statements():
    _, data = trained(0.6)
    return trino_create_function_statements(data, catalog="iceberg", schema="udfs")


def split(statement: str) -> dict:
    match = STATEMENT.match(statement)
    assert match, statement[:300]
    return match.groupdict()


def run_isolated(tmp_path, body: str, handler: str, rows: list) -> list:
    (tmp_path / "body.py").write_text(body, encoding="utf-8")
    (tmp_path / "rows.json").write_text(json.dumps(rows), encoding="utf-8")
    (tmp_path / "runner.py").write_text(RUNNER, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(tmp_path / "runner.py"), str(tmp_path / "body.py"),
         handler, str(tmp_path / "rows.json")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["third_party"] == []
    assert not any("site-packages" in p for p in result["path"])
    return result["values"]


def test_statement_shape(statements):
    anomaly, sentiment = map(split, statements)
    assert anomaly["name"] == "iceberg.udfs.akko_ai_anomaly"
    assert anomaly["args"] == ", ".join(f"{f} double" for f in MODEL_FEATURES)
    assert sentiment["name"] == "iceberg.udfs.akko_ai_sentiment"
    assert sentiment["args"] == "memo varchar"
    assert "WITH (handler = 'akko_ai_anomaly')" in statements[0]
    assert "WITH (handler = 'akko_ai_sentiment')" in statements[1]


def test_bodies_import_only_the_standard_library(statements):
    for statement in statements:
        tree = ast.parse(split(statement)["body"])
        imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom)}
        assert imported and imported <= set(sys.stdlib_module_names), imported


def test_sql_parses_as_trino(statements):
    # sqlglot's Trino tokenizer has no dollar-quoted strings: with the $$ body left in, it
    # falls back to an opaque Command (or fails on a quote inside the Python). So the body is
    # swapped for a string literal and the rest of the statement is parsed and checked.
    for statement, handler, n_args in [(statements[0], "akko_ai_anomaly", 8),
                                       (statements[1], "akko_ai_sentiment", 1)]:
        body = split(statement)["body"]
        assert "$$" not in body
        parsed = sqlglot.parse_one(statement.replace(f"$$\n{body}$$", "'<python body>'"), read="trino")
        assert isinstance(parsed, exp.Create) and parsed.args["kind"] == "FUNCTION"
        assert parsed.args["replace"] is True
        udf = parsed.this
        assert isinstance(udf, exp.UserDefinedFunction) and udf.this.name == handler
        assert len(udf.expressions) == n_args
        props = {type(p).__name__: p for p in parsed.args["properties"].expressions}
        assert props["ReturnsProperty"].this.is_type("double")
        assert props["LanguageProperty"].this.name.upper() == "PYTHON"
        assert props["HandlerProperty"].this.name == handler


def test_anomaly_body_runs_isolated_with_the_same_values(statements, tmp_path):
    _, data = trained(0.6)
    X = synthetic_features(500, seed=11).tolist()
    X[0][0] = None
    X[1][3] = -1.0e40  # float32 overflow -> -inf, still scored
    rows = X + [[None] * 8]
    got = run_isolated(tmp_path, split(statements[0])["body"], "akko_ai_anomaly", rows)
    scorer = make_scorer(data)
    assert got == [scorer(*row) for row in rows]  # bit-identical (JSON keeps float repr)
    assert got[0] is None and got[-1] is None and isinstance(got[1], float)


def test_sentiment_body_runs_isolated_with_the_same_values(statements, tmp_path):
    memos = [memo for memo, _ in labelled_memos()] + RULE_CASES + [None, "", "Café 😀 " * 900]
    got = run_isolated(tmp_path, split(statements[1])["body"], "akko_ai_sentiment",
                       [[m] for m in memos])
    assert got == [akko_ai_sentiment(m) for m in memos]


def test_write_trino_sql(tmp_path):
    _, data = trained()
    out = write_trino_sql(data, tmp_path / "sql" / "udfs.sql", catalog="hive", schema="akko")
    text = out.read_text(encoding="utf-8")
    assert text.count("CREATE OR REPLACE FUNCTION hive.akko.") == 2 and text.endswith("$$;\n\n")


def test_bad_model_writes_nothing(tmp_path):
    _, data = trained()
    swapped = dict(data, features=list(reversed(data["features"])))
    out = tmp_path / "udfs.sql"
    with pytest.raises(ValueError, match="model data and feature columns disagree"):
        write_trino_sql(swapped, out)
    assert not out.exists()


def test_statement_over_trino_max_length_is_refused(tmp_path):
    _, data = trained()
    out = tmp_path / "udfs.sql"
    with pytest.raises(ValueError, match="query.max-length"):
        write_trino_sql(data, out, max_length=100_000)
    assert not out.exists()


def test_cli_writes_the_file(tmp_path):
    _, data = trained()
    model = tmp_path / "model.json"
    model.write_text(json.dumps(data), encoding="utf-8")
    out = tmp_path / "udfs.sql"
    subprocess.run([sys.executable, "-m", "trino_udfs.trino_sql", "--model", str(model),
                    "--out", str(out), "--schema", "akko"], check=True, timeout=120)
    assert out.read_text(encoding="utf-8").count("CREATE OR REPLACE FUNCTION iceberg.akko.") == 2


@pytest.mark.parametrize("catalog,schema", [("iceberg", "udfs; DROP"), ("Ice berg", "udfs"),
                                            ("iceberg", "")])
def test_identifiers_are_validated(catalog, schema):
    _, data = trained()
    with pytest.raises(ValueError, match="invalid catalog/schema"):
        trino_create_function_statements(data, catalog=catalog, schema=schema)
