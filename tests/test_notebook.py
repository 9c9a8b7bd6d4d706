"""The exploration notebook runs top to bottom against the local stack (small data)."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

from akko_assets.settings import REPO_ROOT


def test_notebook_runs_top_to_bottom(pipeline_run, tmp_path):
    nb = nbformat.read(REPO_ROOT / "notebooks" / "akko-banking-demo.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(str(o.get("data", {}).get("text/plain", "")) + o.get("text", "") for o in outputs)
    assert "roc_auc" in text and "***MASKED***" in text
