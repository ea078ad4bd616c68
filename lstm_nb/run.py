"""Execute notebooks headlessly with papermill: `python -m lstm_nb.run NOTEBOOK... [--preset P] [-p KEY VALUE]...`

Each notebook runs in a kernel of this Python environment, from the repository root; the executed
copy goes to run/notebooks/<name>-<preset>.ipynb. One summary line per notebook; the exit status is
non-zero when any notebook fails, and the failing cell's error is printed. Every notebook, preset and
parameter is checked before the first one runs: an undeclared parameter, a value of the wrong type or
an unknown preset stops the runner before anything is written.
"""

import argparse
import ast
import os
import re
import shlex
import sys
import time
from pathlib import Path

import papermill
from traitlets.config import Config

from . import paths, presets

# A parameter's type: its type comment in the parameters cell (`epochs = None  # type: Optional[int]`), else
# the type of its default value; a parameter whose default is None and has no annotation takes anything.
TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "None": (type(None),),
         "list": (list,), "dict": (dict,)}


def parse_value(text):
    """A Python literal when it parses as one (3, 0.5, None, [1, 2]), otherwise the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def accepted_types(declared):
    """The type names a declared parameter (papermill's inspection of it) accepts; None = any."""
    annotation = declared["inferred_type_name"]
    optional = re.fullmatch(r"Optional\[(\w+)\]", annotation)
    if optional:
        return [optional.group(1), "None"]
    if annotation in TYPES and annotation != "None":
        return [annotation]
    default = parse_value(declared["default"])
    return None if default is None else [type(default).__name__]


def _type_problem(name, value, declared):
    names = accepted_types(declared)
    if names is None or any(n not in TYPES for n in names):
        return None
    types = tuple(t for n in names for t in TYPES[n])
    if isinstance(value, types) and not (isinstance(value, bool) and bool not in types):
        return None
    return f"parameter {name} must be {' or '.join(names)}, got {value!r} ({type(value).__name__})"


def check_parameters(notebook, parameters):
    """Reject parameters the notebook's `parameters` cell does not declare, values of the wrong type,
    and unknown presets."""
    try:
        declared = papermill.inspect_notebook(str(notebook))
    except ValueError as e:  # e.g. no kernelspec in its metadata
        raise SystemExit(f"{notebook}: cannot read its parameters cell: {e}") from e
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise SystemExit(
            f"{notebook}: no parameter(s) {', '.join(unknown)}; it declares {', '.join(sorted(declared)) or 'none'}"
        )
    problems = [p for name, value in parameters.items() if (p := _type_problem(name, value, declared[name]))]
    if problems:
        raise SystemExit(f"{notebook}: " + "; ".join(problems))
    known = presets.PRESETS.get(notebook.stem)
    if "preset" in parameters and known is not None and parameters["preset"] not in known:
        raise SystemExit(
            f"{notebook}: unknown preset {parameters['preset']!r}; choose one of {', '.join(sorted(known))}"
        )


def default_preset(notebook):
    declared = papermill.inspect_notebook(str(notebook)).get("preset")
    return parse_value(declared["default"]) if declared else "default"


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
