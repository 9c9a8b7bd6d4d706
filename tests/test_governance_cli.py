"""`akko sql` / `akko token` behaviour through their plain functions (the lead wires Typer)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from akko_assets.governance import run_sql_command, token_command, verify_token
from akko_assets.governance.sample import build_sample_curated, luhn_valid
from akko_assets.settings import MASK


@pytest.fixture(autouse=True)
def akko_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AKKO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AKKO_PROFILE", "local")
    monkeypatch.delenv("AKKO_OIDC_ISSUER", raising=False)


@pytest.fixture(scope="module")
def connect(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("cli") / "curated.duckdb"
    con = duckdb.connect(str(path))
    build_sample_curated(con, rows=100, customers=20)
    con.close()
    return lambda: duckdb.connect(str(path), read_only=True)


SQL = "SELECT customer_id, customer_name, card_pan, total_amount FROM marts.dim_customers ORDER BY customer_id"


def test_json_output_analyst(connect, capsys) -> None:
    assert run_sql_command(SQL, user="carol", as_json=True, connect=connect) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["columns"] == ["customer_id", "customer_name", "card_pan", "total_amount"]
    assert len(out["rows"]) == 20
    assert {r[2] for r in out["rows"]} == {MASK} and MASK not in {r[1] for r in out["rows"]}
    assert all(isinstance(r[3], float) for r in out["rows"])


def test_json_output_admin_sees_pans(connect, capsys) -> None:
    assert run_sql_command(SQL, user="alice", as_json=True, connect=connect) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert all(luhn_valid(r[2]) for r in rows)


def test_table_output_with_token(connect, capsys) -> None:
    token = token_command("erin")
    assert verify_token(token).user == "erin"
    assert run_sql_command("SELECT region, status, count(*) AS n FROM marts.fct_transactions GROUP BY ALL ORDER BY ALL",
                           token=token, connect=connect) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["region", "|", "status", "|", "n"]
    body = out[2:-1]
    assert body and all(line.split()[0] in ("EU", "APAC") and line.split()[2] == "active" for line in body)
    assert out[-1] == f"({len(body)} rows)"


@pytest.mark.parametrize(
    "kwargs,reason",
    [
        ({"user": "mallory"}, "unknown user 'mallory'"),
        ({"token": "not.a.token"}, "token rejected"),
        ({}, "exactly one of --user NAME or --token JWT"),
        ({"user": "carol", "sql": "DROP TABLE marts.dim_customers"}, "only SELECT queries are allowed"),
        ({"user": "carol", "sql": "SELECT * FROM read_csv('/etc/passwd')"}, "read_csv() is not allowed"),
        ({"user": "dave", "sql": "SELECT 1; SELECT 2"}, "exactly one SELECT statement"),
    ],
)
def test_denials_exit_2_with_one_line(connect, capsys, kwargs, reason) -> None:
    sql = kwargs.pop("sql", SQL)
    assert run_sql_command(sql, connect=connect, **kwargs) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("denied: ") and reason in lines[0]


def test_query_error_exits_1(connect, capsys) -> None:
    assert run_sql_command("SELECT nope FROM marts.dim_customers", user="carol", connect=connect) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: query failed")


def test_token_for_unknown_user_is_denied() -> None:
    from akko_assets.governance import AccessDenied

    with pytest.raises(AccessDenied, match="unknown user"):
        token_command("mallory")
