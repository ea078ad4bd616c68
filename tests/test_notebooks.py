"""Notebooks: committed without outputs, and each runs through the papermill runner on `smoke`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lstm_nb import presets

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def runner(*args, env=None):
    return subprocess.run([sys.executable, "-m", "lstm_nb.run", *map(str, args)], capture_output=True,
                          text=True, env=env, check=False)


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(notebook):
    nb = json.loads(notebook.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert not cell["outputs"] and cell["execution_count"] is None, notebook.name


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_declares_preset_parameter_with_known_presets(notebook):
    import papermill

    declared = papermill.inspect_notebook(str(notebook))
    assert "preset" in declared
    assert {"smoke", "cpu", "paper"} <= set(presets.names(notebook.stem))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_runs_on_smoke_preset_and_resumes(notebook, home):
    result = runner(notebook, "--preset", "smoke")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok")
    executed = home / "run" / "notebooks" / f"{notebook.stem}-smoke.ipynb"
    nb = json.loads(executed.read_text())
    assert not any(o.get("output_type") == "error" for c in nb["cells"] for o in c.get("outputs", []))
    metrics = list((home / "run").glob("*/*/metrics_epoch_*.json"))
    assert metrics, "the notebook wrote no per-epoch metrics into run/"
    assert list((home / "figures").glob(f"{notebook.stem}_*.png"))
    before = {p: p.stat().st_mtime_ns for p in metrics}
    again = runner(notebook, "--preset", "smoke")
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_mtime_ns for p in metrics} == before  # finished runs are read back, not retrained


def test_runner_rejects_undeclared_parameter_and_unknown_preset(home):
    notebook = NOTEBOOKS[0]
    result = runner(notebook, "-p", "learning_rate", "0.1")
    assert result.returncode != 0 and "no parameter(s) learning_rate" in result.stderr
    result = runner(notebook, "--preset", "huge")
    assert result.returncode != 0 and "unknown preset 'huge'" in result.stderr


def test_runner_reports_the_failing_cell(home, tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("raise RuntimeError('boom here')")]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    result = runner(path)
    assert result.returncode == 1
    assert result.stdout.startswith("FAILED") and "RuntimeError: boom here" in result.stderr
