"""Where the repository's folders are: data/, run/, figures/, and the corpora folder LSTM_NB_DATA.

Notebooks run from notebooks/ in JupyterLab, from the repository root under the runner, and from
/content in Colab; every one of them should write into the same run/ and figures/. The root is
`$LSTM_NB_HOME` if set (Colab sets it to a Google Drive folder when Drive is mounted, so that runs
survive a disconnect), else the nearest folder at or above the current directory that holds this
repository's pyproject.toml, else the current directory (Colab, or a pip-installed package).

A relative `$LSTM_NB_DATA` is taken relative to the repository checkout that `lstm_nb` is imported
from (the folder holding its pyproject.toml), so `LSTM_NB_DATA=../shared/data` means the same folder
from the shell, from pytest and from a kernel started in notebooks/. For a pip-installed package,
which has no checkout, it is taken relative to the root above.
"""

import os
from pathlib import Path

DATA_ENV = "LSTM_NB_DATA"


def _is_checkout(folder):
    project = folder / "pyproject.toml"
    return project.is_file() and 'name = "lstm_nb"' in project.read_text()


def repo_root():
    if os.environ.get("LSTM_NB_HOME"):
        return Path(os.environ["LSTM_NB_HOME"]).expanduser().resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if _is_checkout(folder):
            return folder
    return here


def checkout_root():
    """The repository checkout this package was imported from, or None for a pip-installed package."""
    folder = Path(__file__).resolve().parent.parent
    return folder if _is_checkout(folder) else None


def data_env():
    """`$LSTM_NB_DATA` as an absolute folder (a relative one resolved as the module docstring says),
    or None when it is not set."""
    value = os.environ.get(DATA_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else ((checkout_root() or repo_root()) / path).resolve()


def run_dir(*parts):
    return repo_root().joinpath("run", *parts)


def figures_dir():
    path = repo_root() / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def notebook_list():
    """The repository's notebooks, as a reader would type them: "notebooks/a.ipynb, notebooks/b.ipynb"."""
    folder = (checkout_root() or repo_root()) / "notebooks"
    return ", ".join(f"notebooks/{p.name}" for p in sorted(folder.glob("*.ipynb"))) or "none"
