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


def module_imports():
    """{module: the package's modules it imports at module level} (imports inside functions are lazy:
    they cannot make a cycle at import time)."""
    import ast

    root = REPO / "lstm_nb"
    graph = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        package = name.split(".") if is_package else name.split(".")[:-1]
        imported = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.level:
                target = package[: len(package) - node.level + 1] + ([node.module] if node.module else [])
                for alias in node.names:  # `from . import x` imports module x; `from .m import f` module m
                    candidate = [*target, alias.name]
                    is_module = (REPO.joinpath(*candidate).with_suffix(".py").exists()
                                 or REPO.joinpath(*candidate).is_dir())
                    imported.add(".".join(candidate if is_module else target))
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names if a.name.startswith("lstm_nb")}
        graph[name] = imported - {name}
    return graph


def test_no_import_cycle_among_the_package_modules():
    graph, cycles, state, stack = module_imports(), [], {}, []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for other in graph.get(module, ()):
            if state.get(other) == "open":
                cycles.append(stack[stack.index(other):] + [other])
            elif other in graph and other not in state:
                visit(other)
        stack.pop()
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module)
    assert len(graph) > 40 and graph["lstm_nb.train"] >= {"lstm_nb.loop", "lstm_nb.callbacks", "lstm_nb.phases"}
    assert not cycles, " ; ".join(" → ".join(c) for c in cycles)
