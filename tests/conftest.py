"""Tests run on the real corpora: `LSTM_NB_DATA` must name a folder holding them (CI: ../shared/data),
unless they sit in data/. Every test writes run/ and figures/ into its own temporary LSTM_NB_HOME."""

from pathlib import Path

import pytest

from lstm_nb import paths

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty repository root for run/ and figures/ (the corpora are still found via LSTM_NB_DATA)."""
    monkeypatch.setenv("LSTM_NB_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="session")
def data_root():
    """The corpora folder, absolute: LSTM_NB_DATA as the package resolves it (a relative path is taken
    from the repository root), else data/."""
    root = paths.data_env()
    if root is None and not (REPO / "data" / "ptb").is_dir():
        pytest.fail("set LSTM_NB_DATA to a folder holding the corpora (e.g. ../shared/data)")
    return root or REPO / "data"
