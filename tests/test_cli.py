"""The training command line (`python -m lstm_nb.train`, lstm_nb/cli.py): a notebook's preset trained
exactly as the notebook would train it, then only reported, and clear errors for bad names."""

import os
import subprocess
import sys

import pytest
from conftest import REPO

from lstm_nb import cli

NOTEBOOK = REPO / "notebooks" / "mogrifier.ipynb"


def test_the_command_line_trains_a_preset_and_the_notebook_then_only_reports(home, data_root):
    env = {**os.environ, "LSTM_NB_DATA": str(data_root)}
    trained = subprocess.run([sys.executable, "-m", "lstm_nb.train", str(NOTEBOOK), "--preset", "smoke"], env=env,
                             capture_output=True, text=True, check=False)
    assert trained.returncode == 0, trained.stderr[-3000:]
    metrics = sorted((home / "run").glob("*/*/metrics_epoch_*.json"))
    assert {p.parent.parent.name for p in metrics} == {"mogrifier-anchor-smoke", "mogrifier-brown-smoke",
                                                      "mogrifier-ptb-smoke"}
    before = {p: p.stat().st_mtime_ns for p in metrics}
    reported = subprocess.run([sys.executable, "-m", "lstm_nb.run", str(NOTEBOOK), "--preset", "smoke"], env=env,
                              capture_output=True, text=True, check=False)
    assert reported.returncode == 0, reported.stderr[-3000:]
    after = sorted((home / "run").glob("*/*/metrics_epoch_*.json"))
    assert after == metrics and {p: p.stat().st_mtime_ns for p in after} == before  # nothing trained again


@pytest.mark.parametrize(("args", "message"), [
    (["notebooks/nothing.ipynb", "--preset", "smoke"],
     "no such notebook: notebooks/nothing.ipynb; the notebooks are notebooks/awd_lstm.ipynb, "),
    ([str(NOTEBOOK), "--preset", "huge"], "unknown preset 'huge'"),
    ([str(NOTEBOOK), "--preset", "smoke", "--only", "gru"], "no configuration named gru; it trains mogrifier-anchor"),
    ([str(NOTEBOOK), "--preset", "smoke", "-p", "learning_rate", "1"], "no parameter(s) learning_rate"),
    ([str(NOTEBOOK), "--preset", "smoke", "-p", "epochs", "two"], "parameter epochs must be int or None"),
    ([str(NOTEBOOK), "--preset", "smoke", "-p", "word_corpus", "enwik8"], "word_corpus must be 'ptb' or 'wikitext-2'"),
])
def test_the_command_line_refuses_unknown_names_with_a_clear_message(home, args, message):
    result = subprocess.run([sys.executable, "-m", "lstm_nb.train", *args], capture_output=True, text=True,
                            check=False, cwd=REPO)
    assert result.returncode != 0 and message in result.stderr
    assert not (home / "run").exists()


def test_without_a_preset_the_command_line_trains_the_notebooks_default(home):
    result = subprocess.run([sys.executable, "-m", "lstm_nb.train", str(NOTEBOOK), "--only", "nn.LSTM", "-p", "epochs",
                             "1"], capture_output=True, text=True, check=False, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no --preset given, training its default, smoke" in result.stdout
    assert (home / "run" / "mogrifier-brown-smoke" / "nn.LSTM-seed1" / "metrics.json").exists()


def test_only_picks_models_by_name_and_the_configs_are_the_notebooks(home):
    configs = cli.notebook_configs(NOTEBOOK, "smoke", {"epochs": 1}, only=["nn.LSTM", "mogrifier-ptb-smoke/lstm"])
    assert list(configs) == ["mogrifier-ptb-smoke/lstm-seed1", "mogrifier-ptb-smoke/lstm-seed2",
                             "mogrifier-brown-smoke/nn.LSTM-seed1"]  # a row picks every seed it trains
    assert all(cfg["epochs"] == 1 for cfg in configs.values())
