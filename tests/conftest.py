"""Tests run on the real corpora: `LSTM_NB_DATA` must name a folder holding them (CI: ../shared/data),
unless they sit in data/. Every test writes run/ and figures/ into its own temporary LSTM_NB_HOME."""

import json
import os
import signal
import subprocess
import sys
import time
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


class Training:
    """The kill-and-resume harness: a config trained by `python -m lstm_nb.train` in subprocesses, each
    with its own LSTM_NB_HOME under `root` and the same hash seed, so that runs can be compared."""

    def __init__(self, root, config, env=None):
        self.root, self.config, self.extra_env = Path(root), Path(root) / "config.json", env or {}
        self.config.write_text(json.dumps(config))
        self.folder_in = Path("run") / config["experiment"] / config["model_name"]

    def env(self, home):
        return {**os.environ, **self.extra_env, "PYTHONHASHSEED": "0", "LSTM_NB_HOME": str(self.root / home)}

    def folder(self, home):
        return self.root / home / self.folder_in

    def run(self, home):
        """Train to the end under `home`; the completed process (it must succeed)."""
        done = subprocess.run([sys.executable, "-m", "lstm_nb.train", str(self.config)], env=self.env(home),
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    def kill_after(self, home, file_name, delay=0.0):
        """Start training under `home`, wait until its run folder holds `file_name`, `delay` seconds more,
        then SIGKILL it."""
        proc = subprocess.Popen([sys.executable, "-m", "lstm_nb.train", str(self.config)], env=self.env(home),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 300
        while not (self.folder(home) / file_name).exists():
            assert proc.poll() is None and time.time() < deadline, f"training ended before {file_name}"
            time.sleep(0.01)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
