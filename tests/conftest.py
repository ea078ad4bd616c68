"""Tests run on the real corpora: `LSTM_NB_DATA` must name a folder holding them (CI: ../shared/data),
unless they sit in data/. Every test writes run/ and figures/ into its own temporary LSTM_NB_HOME."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty repository root for run/ and figures/ (the corpora are still found via LSTM_NB_DATA)."""
    monkeypatch.setenv("LSTM_NB_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="session")
def data_root():
    root = os.environ.get("LSTM_NB_DATA")
    if not root and not (REPO / "data" / "ptb").is_dir():
        pytest.fail("set LSTM_NB_DATA to a folder holding the corpora (e.g. ../shared/data)")
    return Path(root) if root else REPO / "data"
