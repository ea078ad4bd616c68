"""The training command line: `python -m lstm_nb.train NOTEBOOK [--preset P] [--only NAME ...]
[-p KEY VALUE ...] [--workers N]`, or `python -m lstm_nb.train CONFIG.json`; under torchrun every
configuration trains with DistributedDataParallel. A notebook's parameters are parsed and checked as
the papermill runner checks them (`lstm_nb.parameters`)."""

import json
import sys
from pathlib import Path

from . import checkpoints, distributed, paths, presets
from . import workers as pool
from .parameters import check_parameters, default_preset, parse_value
from .presets.seeds import split_run_name
from .train import NonFiniteLossError, train


def notebook_configs(notebook, preset, parameters, only=()):
    """{experiment/model_name: config} of what `notebook` trains on `preset` with its `parameters`
    (checked as the runner checks them), restricted to the names in `only` when given."""
    notebook = Path(notebook)
    if not notebook.is_file():
        raise SystemExit(f"no such notebook: {notebook}; the notebooks are {paths.notebook_list()}")
    if notebook.stem not in presets.PRESETS:
        raise SystemExit(f"{notebook}: no presets for it; notebooks with presets: {', '.join(sorted(presets.PRESETS))}")
    check_parameters(notebook, {**parameters, "preset": preset})
    try:
        sections = presets.training_configs(notebook.stem, preset, **parameters)
    except ValueError as e:
        raise SystemExit(f"{notebook}: {e}") from None
    configs = {f"{experiment}/{name}": cfg for experiment, models in sections.items() for name, cfg in models.items()}
    if not only:
        return configs
    def names(key, cfg):  # a run answers to its key, its name, and its row (every seed of it)
        row = split_run_name(cfg["model_name"])[0]
        return {key, cfg["model_name"], row, f"{cfg['experiment']}/{row}"}

    chosen = {key: cfg for key, cfg in configs.items() if names(key, cfg) & set(only)}
    unknown = [name for name in only if not any(name in names(key, cfg) for key, cfg in configs.items())]
    if unknown:
        raise SystemExit(f"{notebook} --preset {preset}: no configuration named {', '.join(unknown)}; "
                         f"it trains {', '.join(configs)}")
    return chosen


def main(argv=None):
    """python -m lstm_nb.train NOTEBOOK [--preset P] [--only NAME ...] [-p KEY VALUE ...], or CONFIG.json."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m lstm_nb.train",
        description="Train a notebook's preset into run/, exactly as the notebook would (then the notebook, run "
                    "with the same preset, only reports), or one training config from a JSON file. Under "
                    "torchrun every configuration is trained with DistributedDataParallel.")
    parser.add_argument("target", type=Path, help="a notebook (notebooks/NAME.ipynb) or a training config (.json)")
    parser.add_argument("--preset", help="the notebook's preset (smoke, cpu, paper; default: the one its parameters "
                                         "cell sets, as for python -m lstm_nb.run)")
    parser.add_argument("--only", nargs="+", default=[], metavar="NAME",
                        help="train only these models (model_name, or experiment/model_name; a row "
                             "trained over seeds, e.g. lstm, picks every seed)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                        help="a notebook parameter, as for python -m lstm_nb.run")
    parser.add_argument("--workers", type=int, default=1,
                        help="train independent configurations in this many parallel processes, the CPU "
                             "threads split between them (not under torchrun)")
    args = parser.parse_args(argv)
    if args.workers < 1:
        raise SystemExit(f"--workers must be at least 1, got {args.workers}")
    parameters = {k: parse_value(v) for k, v in args.parameter}
    if args.target.suffix == ".json":
        if args.preset or args.only or parameters:
            raise SystemExit("--preset, --only and -p are for a notebook; a JSON config is trained as it is")
        config = checkpoints.load_json(args.target, advice="Give the path of a training config (JSON).")
        configs = {args.target.name: config}
        device = config.get("device", "auto")
    else:
        if not args.preset and args.target.is_file():  # as the runner does: the notebook's own default
            args.preset = default_preset(args.target)
            print(f"{args.target}: no --preset given, training its default, {args.preset}", flush=True)
        configs = notebook_configs(args.target, args.preset, parameters, args.only)
        device = parameters.get("device", "auto")
    if args.workers > 1 and distributed.launched():
        raise SystemExit("--workers is for independent runs in one launch; under torchrun each configuration "
                         "already uses every process")
    distributed.start(device)
    diverged, failed = [], []
    try:
        if args.workers > 1:
            outcomes = pool.train_all(configs, workers=args.workers)
        else:
            outcomes = {key: _outcome(cfg) for key, cfg in configs.items()}
        for key, (kind, value) in outcomes.items():
            if not distributed.is_main():
                continue
            if kind == "summary":
                print(f"{key}: {json.dumps(value, sort_keys=True)}", flush=True)
            else:  # the other configurations still trained; the exit status says so
                (diverged if kind == "diverged" else failed).append(key)
                print(f"{key}: {value}", file=sys.stderr, flush=True)
    finally:
        distributed.stop()
    if diverged or failed:
        raise SystemExit("; ".join(f"{what}, the others trained: {', '.join(keys)}"
                                   for what, keys in (("diverged", diverged), ("failed", failed)) if keys))


def _outcome(cfg):
    """("summary", summary) or ("diverged", the advice): a divergence does not stop the other runs."""
    try:
        return "summary", train(cfg)
    except NonFiniteLossError as e:
        return "diverged", str(e)
