"""Execute notebooks headlessly with papermill: `python -m lstm_nb.run NOTEBOOK... [--preset P] [-p KEY VALUE]...`

Each notebook runs in a kernel of this Python environment, from the repository root; the executed
copy goes to run/notebooks/<name>-<preset>.ipynb. One summary line per notebook; the exit status is
non-zero when any notebook fails, and the failing cell's error is printed. Every notebook, preset and
parameter is checked before the first one runs: an undeclared parameter, a value of the wrong type or
an unknown preset stops the runner before anything is written. Before a notebook's kernel starts, its
corpora are found (or downloaded) and its run folders checked: a corpus that cannot be had, a run folder
another process is writing, or another runner on the same notebook and preset fails that notebook at
once, with no executed copy written.
"""

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import filelock

from . import checkpoints, corpora, paths, records
from .config import make_config
from .extras import require
from .parameters import check_parameters, default_preset, parse_value

papermill = require("papermill")
Config = require("traitlets.config").Config


def execute(notebook, parameters, output, command):
    """Run one notebook into the executed copy `output`; return (ok, seconds, error text)."""
    # Prefer this environment's kernelspec over a user-wide `python3` pointing at another Python.
    os.environ.setdefault("JUPYTER_PREFER_ENV_PATH", "1")
    # Read by the kernel: each run's configuration file records this command; progress bars, which would be saved as
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


def ready(notebook, preset, parameters):
    """None when `notebook`'s kernel may start on `preset`, else why not: a corpus its runs read that is
    neither here nor downloadable (CorpusError's advice), or a run folder another process writes."""
    from . import presets
    from .cli import notebook_configs

    if notebook.stem not in presets.PRESETS:  # a notebook of the user's own: nothing of ours to check
        return None
    configs = notebook_configs(notebook, preset, {k: v for k, v in parameters.items() if k != "preset"})
    corpus_names = {{"pmnist": "mnist"}.get(c["data"]["corpus"], c["data"]["corpus"]) for c in configs.values()}
    try:
        for name in sorted(corpus_names & set(corpora.CORPORA)):
            corpora.corpus_path(name)
    except corpora.CorpusError as e:
        return str(e)
    for key, cfg in configs.items():
        writer = checkpoints.writer_of(records.run_folder(make_config(cfg)))
        if writer:
            return (f"its run {key} is being written by {writer}; run the notebook when that has finished (it "
                    "then reads the run back), or stop it")
    return None


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
        # a second runner on this notebook and preset would overwrite this one's executed copy
        lock = filelock.FileLock(out_dir / f".{output.name}.lock", timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout:
            ok, seconds, error = False, 0.0, (f"another runner is running {notebook} on {preset} (into {output}); "
                                              "wait until it has finished")
        else:
            try:
                problem = ready(notebook, preset, parameters)
                ok, seconds, error = (False, 0.0, problem) if problem else execute(
                    notebook.resolve(), parameters, output, command)
            finally:
                lock.release()
        status = "ok    " if ok else "FAILED"
        print(f"{status} {notebook}  preset={preset}  {seconds:.1f}s  -> {output}", flush=True)
        if not ok:
            failures += 1
            print(f"       {error}", file=sys.stderr, flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
