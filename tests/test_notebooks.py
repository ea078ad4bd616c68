"""Notebooks: committed without outputs, and each runs through the papermill runner on `smoke`."""

import ast
import json
import os
import re
import subprocess
import sys

import papermill
import pytest
from conftest import REPO

from lstm_nb import colab, presets

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def runner(*args, env=None):
    return subprocess.run([sys.executable, "-m", "lstm_nb.run", *map(str, args)], capture_output=True,
                          text=True, env=env, check=False)


def outputs(notebook_json):
    """Every output's text, stream or plain-text display, of an executed notebook."""
    for cell in notebook_json["cells"]:
        for output in cell.get("outputs", []):
            yield "".join(output.get("text", "")) + "".join(output.get("data", {}).get("text/plain", ""))


def test_there_are_notebooks():
    assert NOTEBOOKS


def staged(path):
    """What git would commit of `path`: its staged (index) text, or the file outside a git checkout."""
    shown = subprocess.run(["git", "show", f":{path.relative_to(REPO)}"], cwd=REPO, capture_output=True, text=True,
                           check=False)
    return shown.stdout if shown.returncode == 0 else path.read_text()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(notebook):
    """Outputs a JupyterLab session saved into the working copy do not fail this: git's clean filter
    strips them when the notebook is staged (.gitattributes; `make` configures it)."""
    nb = json.loads(staged(notebook))
    with_outputs = [i for i, c in enumerate(nb["cells"])
                    if c["cell_type"] == "code" and (c["outputs"] or c["execution_count"] is not None)]
    assert not with_outputs, (
        f"{notebook.name} is staged with outputs in cells {with_outputs}: the clean filter is not configured "
        f"here. Run `make strip-outputs-on-commit`, then `git add {notebook.relative_to(REPO)}` again.")


def test_the_clean_filter_stages_an_executed_notebook_without_outputs(tmp_path):
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / ".gitattributes").write_text((REPO / ".gitattributes").read_text())
    subprocess.run([*git, "config", "filter.nbstripout.clean", f"{sys.executable} -m nbstripout --keep-id"], check=True)
    nb = json.loads(NOTEBOOKS[0].read_text())
    clean = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code.update(execution_count=3, outputs=[{"output_type": "stream", "name": "stdout", "text": ["saved by JupyterLab\n"]}])
    (tmp_path / "a.ipynb").write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    subprocess.run([*git, "add", "a.ipynb"], check=True)
    assert subprocess.run([*git, "show", ":a.ipynb"], capture_output=True, text=True, check=True).stdout == clean


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_declares_preset_parameter_with_known_presets(notebook):
    import papermill

    declared = papermill.inspect_notebook(str(notebook))
    assert "preset" in declared
    assert {"smoke", "cpu", "paper"} <= set(presets.names(notebook.stem))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_default_preset_is_the_cheap_one(notebook):
    assert ast.literal_eval(papermill.inspect_notebook(str(notebook))["preset"]["default"]) == "smoke"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_the_colab_cell_is_the_packages_one_cell(notebook):
    nb = json.loads(notebook.read_text())
    install = [c for c in nb["cells"] if "google.colab" in "".join(c["source"])]
    assert len(install) == 1 and "".join(install[0]["source"]) == colab.CELL, \
        f"{notebook.name}: its Colab cell is not lstm_nb.colab.CELL; copy that text into it"


def test_the_colab_cell_installs_from_drive_then_uploads_then_the_address(tmp_path, monkeypatch):
    """Outside Colab the cell only defines its helper (nothing is installed, no folder is made); the
    helper picks the first source a user can provide, and says what to do when there is none."""
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("LSTM_NB_HOME", raising=False)
    namespace = {}
    exec(colab.CELL, namespace)  # noqa: S102 — the cell's own text, as Colab runs it
    source = namespace["lstm_nb_source"]
    assert "LSTM_NB_HOME" not in os.environ
    drive, uploads = tmp_path / "drive", tmp_path / "content"
    drive.mkdir()
    uploads.mkdir()
    with pytest.raises(RuntimeError, match=r"make wheel.*MyDrive/lstm_nb.*LSTM_NB_INSTALL"):
        source(str(drive), str(uploads), "")
    assert source(str(drive), str(uploads), "lstm_nb @ git+https://example.org/fork") == "lstm_nb @ git+https://example.org/fork"
    (uploads / "lstm_nb-0.1.0-py3-none-any.whl").write_text("")
    assert source(str(drive), str(uploads), "address") == f"{uploads}/lstm_nb-0.1.0-py3-none-any.whl[notebooks]"
    older, newer = drive / "lstm_nb-0.1.0-py3-none-any.whl", drive / "lstm_nb-0.2.0-py3-none-any.whl"
    older.write_text("")
    newer.write_text("")
    os.utime(older, (1, 1))
    assert source(str(drive), str(uploads), "address") == f"{newer}[notebooks]"


def test_make_wheel_builds_an_installable_wheel_with_the_notebooks_extra(tmp_path):
    built = subprocess.run(["make", "-s", "wheel", f"DIST={tmp_path}", f"PY={sys.executable}"], cwd=REPO,
                           capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next(tmp_path.glob("lstm_nb-*.whl"))
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "lstm_nb/colab.py" in names and "lstm_nb/cells/gating.py" in names
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "Provides-Extra: notebooks" in metadata


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_runs_on_smoke_preset_and_resumes(notebook, home, data_root):
    # the README's offline set-up: a relative LSTM_NB_DATA, although the kernel runs in another folder
    env = {**os.environ, "LSTM_NB_DATA": os.path.relpath(data_root, REPO)}
    result = runner(notebook, "--preset", "smoke", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok")
    assert "without encryption" not in result.stderr
    executed = home / "run" / "notebooks" / f"{notebook.stem}-smoke.ipynb"
    nb = json.loads(executed.read_text())
    assert not any(o.get("output_type") == "error" for c in nb["cells"] for o in c.get("outputs", []))
    printed = list(outputs(nb))
    assert not [text for text in printed if "0%|" in text], "progress bars frozen at 0 % in the executed copy"
    assert any(re.search(r"-smoke/\S+ epoch 1/", text) for text in printed)
    configs = list((home / "run").glob("*/*/config.json"))
    assert configs and all(json.loads(p.read_text())["command"] ==
                           f"python -m lstm_nb.run {notebook} --preset smoke" for p in configs)
    metrics = list((home / "run").glob("*/*/metrics_epoch_*.json"))
    assert metrics, "the notebook wrote no per-epoch metrics into run/"
    assert list((home / "figures").glob(f"{notebook.stem}_*.png"))
    before = {p: p.stat().st_mtime_ns for p in metrics}
    again = runner(notebook, "--preset", "smoke", env=env)
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_mtime_ns for p in metrics} == before  # finished runs are read back, not retrained


def test_runner_rejects_undeclared_parameter_and_unknown_preset(home):
    notebook = NOTEBOOKS[0]
    result = runner(notebook, "-p", "learning_rate", "0.1")
    assert result.returncode != 0 and "no parameter(s) learning_rate" in result.stderr
    result = runner(notebook, "--preset", "huge")
    assert result.returncode != 0 and "unknown preset 'huge'" in result.stderr
    assert not (home / "run").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["-p", "epochs", "abc"], "parameter epochs must be int or None, got 'abc' (str)"),
    (["-p", "epochs", "2.5"], "parameter epochs must be int or None, got 2.5 (float)"),
    (["-p", "device", "0"], "parameter device must be str, got 0 (int)"),
])
def test_runner_type_checks_parameters_before_anything_is_written(home, args, message):
    result = runner(NOTEBOOKS[0], "--preset", "smoke", *args)
    assert result.returncode != 0 and message in result.stderr
    assert not (home / "run").exists()


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


def test_a_second_runner_on_the_same_notebook_and_preset_is_refused_at_once(home):
    import filelock

    notebook = REPO / "notebooks" / "ur_lstm.ipynb"
    (home / "run" / "notebooks").mkdir(parents=True)
    with filelock.FileLock(home / "run" / "notebooks" / ".ur_lstm-smoke.ipynb.lock", timeout=0):
        result = runner(notebook, "--preset", "smoke")
    assert result.returncode == 1 and "another runner is running" in result.stderr
    assert result.stdout.startswith("FAILED") and not (home / "run" / "notebooks" / "ur_lstm-smoke.ipynb").exists()


def test_a_run_folder_being_written_stops_the_notebook_before_its_kernel(home):
    from lstm_nb import checkpoints

    notebook = REPO / "notebooks" / "ur_lstm.ipynb"
    first = next(iter(presets.training_configs("ur_lstm", "smoke")["ur_lstm-copy-smoke"]))
    folder = home / "run" / "ur_lstm-copy-smoke" / first
    folder.mkdir(parents=True)
    with checkpoints.locked(folder):
        result = runner(notebook, "--preset", "smoke")
    assert result.returncode == 1 and f"ur_lstm-copy-smoke/{first} is being written by process" in result.stderr
    assert not (home / "run" / "notebooks" / "ur_lstm-smoke.ipynb").exists()
    assert list((home / "run").glob("ur_lstm-*/*")) == [folder]  # nothing was trained


def test_a_missing_corpus_stops_the_notebook_before_its_kernel(home, tmp_path, monkeypatch):
    from lstm_nb import corpora, run

    for name in ("ptb", "brown"):  # the corpora the notebook's smoke runs read
        spec = corpora.CORPORA[name]
        monkeypatch.setitem(corpora.CORPORA, name, corpora.CorpusFiles(
            spec.title, spec.folder, spec.sha256, "http://127.0.0.1:9/", gzipped=spec.gzipped))  # refused, as offline
    monkeypatch.setenv(corpora.DATA_ENV, str(tmp_path / "nothing-here"))
    problem = run.ready(REPO / "notebooks" / "mogrifier.ipynb", "smoke", {})
    assert "was not found" in problem and "Connection refused" in problem
    assert not (home / "data").exists() and not (home / "run").exists()
