"""The optional dependencies: which extra of `pip install "lstm_nb[...]"` brings each, and an import
that says so when it is missing.

The core (`pip install lstm_nb`) is torch, numpy and filelock: enough for every cell, the training loop
and the claims rule. The notebooks' helpers need the `notebooks` extra (pandas, matplotlib, nltk, tqdm,
ipywidgets); the headless runner needs `runner` (papermill, ipykernel); the tests need `dev`.
"""

import importlib

EXTRA_OF = {"pandas": "notebooks", "matplotlib": "notebooks", "nltk": "notebooks", "tqdm": "notebooks",
            "ipywidgets": "notebooks", "papermill": "runner", "ipykernel": "runner", "scipy": "dev"}


def require(module):
    """`importlib.import_module(module)`, or an ImportError that names the extra installing it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        top = module.split(".")[0]
        raise ImportError(f"{top} is not installed, and this part of lstm_nb needs it: "
                          f"pip install \"lstm_nb[{EXTRA_OF.get(top, 'all')}]\" (or the repository's "
                          f"requirements.txt)") from e
