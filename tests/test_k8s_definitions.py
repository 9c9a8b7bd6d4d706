"""The k8s profile loads the same Definitions with the manifests' environment, connecting nowhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import k8s_helpers as kh

SCRIPT = """
import json, socket
def refuse(*args, **kwargs):
    raise AssertionError("loading Definitions must not open network connections")
socket.socket.connect = refuse
socket.create_connection = refuse
from akko_assets.definitions import defs
from akko_assets.settings import load_settings
from akko_assets.resources import dbt_environment
from akko_assets.lakehouse.catalog import catalog_properties
s = load_settings()
keys = sorted(k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys())
print(json.dumps({"profile": s.profile, "replicator": s.replicator, "keys": keys,
                  "dbt_target": dbt_environment(s)["AKKO_DBT_TARGET"],
                  "catalog_type": catalog_properties(s)["type"],
                  "jobs": sorted(j.name for j in defs.resolve_all_job_defs())}))
"""


def test_definitions_load_under_the_k8s_profile_without_connecting(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKKO_")}
    env.update(kh.akko_env())
    env["AKKO_HOME"] = str(tmp_path)
    assert env["AKKO_PROFILE"] == "k8s"
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded["profile"] == "k8s" and loaded["replicator"] == "spark"
    assert loaded["dbt_target"] == "k8s" and loaded["catalog_type"] == "rest"
    assert {"postgres/raw_transactions", "iceberg/banking/transactions", "marts/fct_transactions",
            "ml/fraud_model", "marts/enriched_transactions", "bi/akko_banking_fraud_dashboard"} <= set(loaded["keys"])
    assert "banking_fraud_demo" in loaded["jobs"]
