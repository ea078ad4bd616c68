"""The core install (torch, numpy, filelock) runs every cell and says which extra a notebook helper needs."""

import subprocess
import sys

from conftest import REPO

# every optional dependency (lstm_nb/extras.py), made unimportable in a fresh interpreter
BLOCKED = ["pandas", "matplotlib", "nltk", "tqdm", "ipywidgets", "papermill", "ipykernel", "scipy", "traitlets"]

CORE_ONLY = f"""
import sys
for name in {BLOCKED!r}:
    sys.modules[name] = None  # import fails as if the package were not installed
import torch
from lstm_nb import cells, claims
layer = cells.build("ur_lstm", 3, 8, num_layers=2)
optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
x, losses = torch.randn(6, 4, 3), []
for _ in range(5):  # a plain PyTorch loop
    out, _ = layer(x)
    loss = (out - 0.5).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
assert losses[-1] < losses[0], losses
for helper in ("lstm_nb.plots", "lstm_nb.results", "lstm_nb.run"):
    try:
        __import__(helper)
    except ImportError as e:
        print(helper, "->", e)
"""


def test_the_core_trains_a_cell_and_a_helper_names_the_extra_it_needs():
    result = subprocess.run([sys.executable, "-c", CORE_ONLY], capture_output=True, text=True, cwd=REPO, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = dict(line.split(" -> ", 1) for line in result.stdout.strip().splitlines())
    assert lines["lstm_nb.plots"].startswith("matplotlib is not installed")
    assert 'pip install "lstm_nb[notebooks]"' in lines["lstm_nb.plots"]
    assert 'pip install "lstm_nb[notebooks]"' in lines["lstm_nb.results"]
    assert 'pip install "lstm_nb[runner]"' in lines["lstm_nb.run"]
