"""How long a preset will take on this machine, measured before committing to it.

`projected` times a few training steps and one validation batch of every distinct configuration that
is not finished yet (seeds of one row share a measurement), under the thread count each worker will
have, and scales them to the run: epochs × training batches, plus a validation pass per epoch and one
test pass. The runs are then scheduled longest first over the workers (each free worker takes the
next), and the projection is the busiest worker's total. Per-epoch extras (fine-tuning, NT-ASGD's
averaged validation, dynamic evaluation after training) are not included; the notebook says so.
"""

import itertools
import json
import time

import torch

from . import data as data_module
from . import runs, workers
from .config import make_config


def _seconds(step, repeats):
    step()  # the first call pays for allocation and one-off setup
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats


def run_seconds(config, steps=3):
    """The projected seconds of one training run of `config`, from `steps` timed steps."""
    from . import train

    cfg = make_config(config)
    train.seed_everything(cfg["seed"])
    data = data_module.build(**cfg["data"])
    model = train.build_model(cfg, data.model_inputs)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    windows = itertools.cycle(data.batches("train", 1))  # a tiny split has fewer windows than timed steps

    def training_step():
        x, y = next(windows)
        loss, penalty, _ = train.window_loss(model, data, x, y, None, "cpu", cfg["ar"], cfg["tar"])
        optimizer.zero_grad()
        (loss + penalty).backward()
        optimizer.step()

    x, y = next(iter(data.batches("valid")))

    @torch.no_grad()
    def validation_step():
        model.eval()
        data.objective.statistics(model(x, None)[0], y)
        model.train()

    model.train()
    step = _seconds(training_step, steps)
    evaluate = _seconds(validation_step, 1)
    test = data.num_batches("test") * evaluate if "test" in data.splits else 0.0
    return cfg["epochs"] * (data.num_batches("train") * step + data.num_batches("valid") * evaluate) + test


def projected(configs, workers_count=1, run_root=None, steps=3):
    """(wall seconds, {key: seconds}) of training every unfinished config of {key: config} with
    `workers_count` workers on this machine; finished runs cost nothing."""
    threads = torch.get_num_threads()
    torch.set_num_threads(workers.threads_per_worker(workers_count))
    measured, per_run = {}, {}
    try:
        for key, config in configs.items():
            cfg = make_config(config)
            if runs.finished_summary(runs.run_folder(cfg, run_root), cfg) is not None:
                continue
            signature = json.dumps({k: v for k, v in cfg.items() if k not in ("seed", "model_name")}, sort_keys=True)
            if signature not in measured:
                measured[signature] = run_seconds(cfg, steps)
            per_run[key] = measured[signature]
    finally:
        torch.set_num_threads(threads)
    loads = [0.0] * max(1, workers_count)
    for seconds in sorted(per_run.values(), reverse=True):
        loads[loads.index(min(loads))] += seconds
    return max(loads), per_run
