"""Execute notebooks headlessly with papermill: `python -m lstm_nb.run NOTEBOOK... [--preset P] [-p KEY VALUE]...`

Each notebook runs in a kernel of this Python environment, from the repository root; the executed
copy goes to run/notebooks/<name>-<preset>.ipynb. One summary line per notebook; the exit status is
non-zero when any notebook fails, and the failing cell's error is printed. Every notebook, preset and
parameter is checked before the first one runs: an undeclared parameter, a value of the wrong type or
an unknown preset stops the runner before anything is written.
"""

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from . import paths
from .extras import require
from .parameters import check_parameters, default_preset, parse_value

papermill = require("papermill")
Config = require("traitlets.config").Config


def execute(notebook, parameters, output, command):
    """Run one notebook into the executed copy `output`; return (ok, seconds, error text)."""
    # Prefer this environment's kernelspec over a user-wide `python3` pointing at another Python.
    os.environ.setdefault("JUPYTER_PREFER_ENV_PATH", "1")
    # Read by the kernel: config.json records this command; progress bars, which would be saved as
    # text stuck at 0 % in the executed copy, are off (each epoch's printed line is the record).
    os.environ["LSTM_NB_COMMAND"] = command
    os.environ["TQDM_DISABLE"] = "1"
    start = time.time()
    try:
        papermill.execute_notebook(
            str(notebook), str(output), parameters=parameters, kernel_name="python3", language="python",
            cwd=str(paths.repo_root()), progress_bar=False, log_output=False,
            # kernel sockets over local IPC: nothing listens on TCP, and the kernel has nothing to warn about
            config=Config({"KernelManager": {"transport": "ipc"}}),
        )
    except papermill.PapermillExecutionError as e:
        return False, time.time() - start, f"cell {e.exec_count}: {e.ename}: {e.evalue}"
    except Exception as e:  # noqa: BLE001 — any failure (kernel did not start, bad notebook) is reported, not raised
        return False, time.time() - start, f"{type(e).__name__}: {e}"
    return True, time.time() - start, ""


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m lstm_nb.run", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--preset", help="preset name (smoke, cpu, paper); the notebook's default if absent")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"))
    args = parser.parse_args(argv)

    parameters = {k: parse_value(v) for k, v in args.parameter}
    if args.preset:
        parameters["preset"] = args.preset
    for notebook in args.notebooks:
        if not notebook.is_file():
            raise SystemExit(f"no such notebook: {notebook}; the notebooks are {paths.notebook_list()}")
        check_parameters(notebook, parameters)

    out_dir = paths.run_dir("notebooks")
    out_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    for notebook in args.notebooks:
        preset = parameters.get("preset") or default_preset(notebook)
        command = shlex.join(["python", "-m", "lstm_nb.run", str(notebook), "--preset", preset,
                              *(word for pair in args.parameter for word in ("-p", *pair))])
        output = out_dir / f"{notebook.stem}-{preset}.ipynb"
        ok, seconds, error = execute(notebook.resolve(), parameters, output, command)
        status = "ok    " if ok else "FAILED"
        print(f"{status} {notebook}  preset={preset}  {seconds:.1f}s  -> {output}", flush=True)
        if not ok:
            failures += 1
            print(f"       {error}", file=sys.stderr, flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
