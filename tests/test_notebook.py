"""The seed notebook runs headless against the real broker, every cell without error."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "pcap_to_dataframe.ipynb"


def test_seed_notebook_runs_headless(settings, tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    os.environ.setdefault("WIRESTREAM_BOOTSTRAP_SERVERS", settings.bootstrap_servers)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = {
        i: cell.get("outputs", []) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
    }
    errors = [o for outs in outputs.values() for o in outs if o.get("output_type") == "error"]
    assert not errors, errors
    text = "\n".join(
        str(o.get("data", {}).get("text/plain", "")) for outs in outputs.values() for o in outs
    )
    assert "'status': 'ok'" in text
    assert "'conn'" in text and "'http'" in text
    images = [o for outs in outputs.values() for o in outs if "image/png" in o.get("data", {})]
    assert images, "the stacked bar plot was not rendered"


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")
    if not nb.cells:
        pytest.fail("empty notebook")
