"""Questions ADEN must refuse, the missing-catalog answer, the cost gate, the CLI contract and the LLM path."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import dagster as dg
import pytest
import yaml

from akko_assets.aden import NO_CATALOG, ask, ask_command
from akko_assets.aden.errors import Refusal
from akko_assets.aden.validate import validate_sql
from akko_assets.catalog.assets import semantic_catalog
from akko_assets.catalog.semantic import catalog_path, load_catalog
from akko_assets.governance import issue_token
from akko_assets.resources import AkkoSettingsResource, IcebergResource
from akko_assets.settings import load_settings

REFUSALS = yaml.safe_load((Path(__file__).parent / "data" / "aden_refusals.yaml").read_text())
SEED = "Which regions saw a fraud rate above 5 % last week?"


@pytest.fixture(scope="module")
def catalog_ready(pipeline_run):
    if not catalog_path(load_settings()).exists():
        result = dg.materialize([semantic_catalog], resources={"settings": AkkoSettingsResource(), "iceberg": IcebergResource()})
        assert result.success


def test_refusal_set_is_large_enough():
    assert len(REFUSALS) + 1 >= 25  # + the over-long question below


@pytest.mark.parametrize("item", REFUSALS, ids=[i["q"][:40] or "<empty>" for i in REFUSALS])
def test_refused(catalog_ready, item):
    answer = ask(item["q"], user="alice")
    assert answer.refused, f"answered: {answer.answer}\n{answer.sql}"
    assert item["reason"].lower() in answer.reason.lower()
    assert answer.sql is None and answer.rows == []


def test_over_long_question_is_refused(catalog_ready):
    answer = ask("fraud rate by region " * 30, user="alice")
    assert answer.refused and "limit is 500" in answer.reason


def test_missing_catalog_answers_no_tables(pipeline_run, tmp_path, monkeypatch):
    monkeypatch.setenv("AKKO_HOME", str(tmp_path / "empty_home"))
    answer = ask(SEED, user="alice")
    assert answer.refused and answer.reason == NO_CATALOG


def test_cost_gate_refuses_above_budget(catalog_ready, monkeypatch):
    monkeypatch.setenv("AKKO_ADEN_MAX_SCAN_ROWS", "100")
    answer = ask("fraud rate by region", user="alice")
    assert answer.refused and "above the budget of 100" in answer.reason
    monkeypatch.setenv("AKKO_ADEN_MAX_SCAN_ROWS", "50000000")
    assert not ask("fraud rate by region", user="alice").refused


def test_validation_keeps_sql_inside_the_catalog(catalog_ready):
    catalog = load_catalog(catalog_path(load_settings()))
    sql, tables = validate_sql("SELECT region FROM marts.enriched_transactions", catalog)
    assert sql.endswith("LIMIT 1000") and tables == ["marts.enriched_transactions"]
    sql, _ = validate_sql("SELECT region FROM marts.enriched_transactions LIMIT 5000", catalog)
    assert "LIMIT 1000" in sql
    for bad, reason in [
        ("SELECT 1; SELECT 2", "exactly one"),
        ("DELETE FROM marts.enriched_transactions", "only a SELECT"),
        ("SELECT * FROM akko.raw_transactions", "not in the semantic catalog"),
        ("SELECT secret FROM marts.enriched_transactions", "column secret"),
        ("SELECT * FROM read_csv('/etc/passwd')", "not a catalog table"),
        ("SELECT * FROM (SELECT 1)", "reads no catalog table"),
    ]:
        with pytest.raises(Refusal, match=reason):
            validate_sql(bad, catalog)


def test_ask_command_exit_codes_and_json(catalog_ready, capsys):
    assert ask_command(SEED, user="carol", as_json=True) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"answer", "sql", "columns", "rows"} and out["columns"] == ["region", "fraud_rate"]
    assert ask_command("drop table marts.dim_customers", user="carol") == 3
    assert "refused: ADEN only reads data" in capsys.readouterr().err
    assert ask_command(SEED, user="mallory") == 2
    assert "unknown user" in capsys.readouterr().err
    assert ask_command(SEED, token="not-a-jwt") == 2
    assert ask_command(SEED) == 2  # neither user nor token: denied by default
    assert ask_command(SEED, token=issue_token("dave")) == 0
    assert "fraud rate" in capsys.readouterr().out.lower()


class _FakeOpenAI(BaseHTTPRequestHandler):
    """A real HTTP endpoint speaking the chat-completions protocol, replying with a preset SQL."""

    reply = ""
    requests: ClassVar[list[dict]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "body": body})
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": type(self).reply}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def llm_server(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AKKO_LLM_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("AKKO_LLM_MODEL", "test-model")
    _FakeOpenAI.requests = []
    yield _FakeOpenAI
    server.shutdown()
    server.server_close()


def test_llm_sql_is_validated_and_governed(catalog_ready, llm_server):
    llm_server.reply = "```sql\nSELECT card_pan, count(*) AS n FROM marts.enriched_transactions GROUP BY card_pan ORDER BY n DESC LIMIT 3\n```"
    answer = ask("which cards are used most?", user="dave")
    assert answer.engine == "llm" and "card_pan" in answer.sql
    assert {row[0] for row in answer.rows} == {"***MASKED***"}  # governed execution masks the PAN
    request = llm_server.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["body"]["model"] == "test-model"
    prompt = request["body"]["messages"][0]["content"]
    assert "marts.enriched_transactions" in prompt and "last week: 2026-11-23 to 2026-11-29" in prompt


def test_llm_bad_sql_falls_back_to_the_semantic_parser(catalog_ready, llm_server):
    llm_server.reply = "DROP TABLE marts.enriched_transactions"
    answer = ask(SEED, user="alice")
    assert answer.engine == "semantic" and not answer.refused and "HAVING" in answer.sql
    llm_server.reply = "SELECT * FROM akko.raw_transactions"
    assert ask(SEED, user="alice").engine == "semantic"


def test_llm_unreachable_falls_back(catalog_ready, monkeypatch):
    monkeypatch.setenv("AKKO_LLM_BASE_URL", "http://127.0.0.1:9")  # discard port: connection refused
    answer = ask(SEED, user="alice")
    assert answer.engine == "semantic" and not answer.refused


def test_llm_never_sees_unsafe_questions(catalog_ready, llm_server):
    llm_server.reply = "SELECT 1 FROM marts.enriched_transactions"
    assert ask("delete all flagged transactions", user="alice").refused
    assert llm_server.requests == []
