"""Where the repository's folders are: data/, run/, figures/.

Notebooks run from notebooks/ in JupyterLab, from the repository root under the runner, and from
/content in Colab; every one of them should write into the same run/ and figures/. The root is
`$LSTM_NB_HOME` if set, else the nearest folder at or above the current directory that holds this
repository's pyproject.toml, else the current directory (Colab, or a pip-installed package).
"""

import os
from pathlib import Path


def repo_root():
    if os.environ.get("LSTM_NB_HOME"):
        return Path(os.environ["LSTM_NB_HOME"]).expanduser().resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        project = folder / "pyproject.toml"
        if project.is_file() and 'name = "lstm_nb"' in project.read_text():
            return folder
    return here


def run_dir(*parts):
    return repo_root().joinpath("run", *parts)


def figures_dir():
    path = repo_root() / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path
