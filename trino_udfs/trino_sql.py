"""Generate Trino ``CREATE OR REPLACE FUNCTION ... LANGUAGE PYTHON`` statements for the k8s profile.

The function bodies are the real module files of this package (read as package resources), plus
the model data as a Python literal, so the code Trino runs is the code the tests run.

    python -m trino_udfs.trino_sql --model model_data.json --out build/trino_udfs.sql
"""

from __future__ import annotations

import argparse
import json
import re
import importlib
from pathlib import Path

from trino_udfs.akko_ai_anomaly import Forest

# Trino rejects longer statements unless the coordinator's query.max-length is raised.
TRINO_DEFAULT_MAX_LENGTH = 1_000_000
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_LEXICON_IMPORT = "from trino_udfs._vader_lexicon import EMOJI, LEXICON  # trino_sql: inline _vader_lexicon\n"


def _module_source(name: str) -> str:
    """The file of module trino_udfs.<name>, as imported (so tests and Trino share one source)."""
    module = importlib.import_module(f"trino_udfs.{name}")
    return Path(module.__file__).read_text(encoding="utf-8")


def anomaly_function_body(model_data: dict) -> str:
    """Python source for Trino: akko_ai_anomaly.py + the model data + the bound handler."""
    forest = Forest(model_data)  # load-time checks (feature order, format) before anything is written
    literal = json.dumps(forest.to_data(), separators=(",", ":"), allow_nan=False)
    return (_module_source("akko_ai_anomaly")
            + "\n\n# --- model data embedded by trino_udfs/trino_sql.py ---\n"
            + f"_MODEL_DATA = {literal}\n"
            + "akko_ai_anomaly = make_scorer(_MODEL_DATA)\n")


def sentiment_function_body() -> str:
    """Python source for Trino: the VADER lexicon module inlined into akko_ai_sentiment.py."""
    source = _module_source("akko_ai_sentiment")
    if source.count(_LEXICON_IMPORT) != 1:
        raise RuntimeError("akko_ai_sentiment.py: the marked lexicon import line changed; "
                           "update _LEXICON_IMPORT in trino_sql.py")
    return _module_source("_vader_lexicon") + "\n" + source.replace(_LEXICON_IMPORT, "")


def _create_function(qualified_name: str, params: list[tuple[str, str]], returns: str,
                     handler: str, body: str) -> str:
    if "$$" in body:  # the body is dollar-quoted: it must not contain the delimiter
        raise ValueError(f"{qualified_name}: function body contains '$$'")
    args = ", ".join(f"{name} {sql_type}" for name, sql_type in params)
    return (f"CREATE OR REPLACE FUNCTION {qualified_name}({args})\n"
            f"RETURNS {returns}\n"
            "LANGUAGE PYTHON\n"
            f"WITH (handler = '{handler}')\n"
            f"AS $$\n{body}$$")


def trino_create_function_statements(
    model_data: dict, catalog: str = "udf", schema: str = "akko",
    max_length: int = TRINO_DEFAULT_MAX_LENGTH,
) -> list[str]:
    """[CREATE akko_ai_anomaly, CREATE akko_ai_sentiment] for ``catalog.schema``.

    The catalog must support function storage (Trino: Hive or Memory connector), or point
    ``sql.default-function-catalog``/``-schema`` at one. Raises ValueError when the model data
    and the feature columns disagree, so no statement is produced for a bad model, and when a
    statement is longer than ``max_length`` (Trino's ``query.max-length``).
    """
    for part in (catalog, schema):
        if not _IDENTIFIER.match(part):
            raise ValueError(f"invalid catalog/schema name {part!r}: use lower-case letters, "
                             "digits and underscores")
    forest = Forest(model_data)
    anomaly = _create_function(
        f"{catalog}.{schema}.akko_ai_anomaly", [(f, "double") for f in forest.features],
        "double", "akko_ai_anomaly", anomaly_function_body(model_data))
    sentiment = _create_function(
        f"{catalog}.{schema}.akko_ai_sentiment", [("memo", "varchar")],
        "double", "akko_ai_sentiment", sentiment_function_body())
    for statement in (anomaly, sentiment):
        if len(statement) > max_length:
            raise ValueError(
                f"{statement[:statement.index('(')]}: statement has {len(statement)} characters, "
                f"over Trino's query.max-length {max_length}; raise query.max-length on the "
                "coordinator (and pass max_length=) or export a smaller model (fewer trees)")
    return [anomaly, sentiment]


def write_trino_sql(model_data: dict, out_path: str | Path, catalog: str = "udf",
                    schema: str = "akko", max_length: int = TRINO_DEFAULT_MAX_LENGTH) -> Path:
    """Write the statements, each ended by ';', to ``out_path`` (nothing is written on error)."""
    statements = trino_create_function_statements(model_data, catalog, schema, max_length)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(f"{s};\n\n" for s in statements), encoding="utf-8")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Write Trino CREATE FUNCTION statements")
    parser.add_argument("--model", type=Path, required=True, help="model data JSON (export.py)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--catalog", default="iceberg")
    parser.add_argument("--schema", default="udfs")
    parser.add_argument("--max-length", type=int, default=TRINO_DEFAULT_MAX_LENGTH)
    args = parser.parse_args()
    data = json.loads(args.model.read_text(encoding="utf-8"))
    print(write_trino_sql(data, args.out, args.catalog, args.schema, args.max_length))


if __name__ == "__main__":
    main()
