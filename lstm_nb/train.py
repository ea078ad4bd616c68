"""A training run from its configuration: data, model, optimiser and callbacks built, the run folder
locked and resumed, the loop (`lstm_nb.loop`) run, the summary written.

    summary = lstm_nb.train.train({"experiment": "brown", "model_name": "lstm", "data": {...}, ...})
    python -m lstm_nb.train notebooks/mogrifier.ipynb --preset paper [--only NAME ...] [-p KEY VALUE ...]
    torchrun --nproc_per_node N -m lstm_nb.train ...   (DistributedDataParallel, lstm_nb/distributed.py)

(the command line is lstm_nb/cli.py; a finished run is read back by lstm_nb/finished.py)

Writes the run folder `run/<experiment>/<model_name>/` (its files: `lstm_nb.checkpoints`). Running the
same experiment again resumes from the last complete epoch (or returns the finished summary); a
changed configuration in an existing folder is an error, never a silent mix. A deleted or damaged
best model, configuration or metrics file is rebuilt from the checkpoints on the next run.
"""

import contextlib
import random

import numpy as np
import torch

from . import callbacks, checkpoints, distributed, gemm, loop, models, phases, records
from . import data as data_module
from . import workers as pool
from .config import ConfigError, make_config
from .extras import require
from .loop import NonFiniteLossError


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _from_torch(namespace, spec, *args):
    spec = dict(spec)
    name = spec.pop("name")
    try:
        return getattr(namespace, name)(*args, **spec)
    except (TypeError, ValueError) as e:  # a misspelt or out-of-range option
        raise ConfigError(f"bad options for {namespace.__name__}.{name}, nothing was written: {e}") from None


def make_optimizer(model, spec):
    return _from_torch(torch.optim, spec, model.parameters())


def make_scheduler(optimizer, spec):
    return None if spec is None else _from_torch(torch.optim.lr_scheduler, spec, optimizer)


def callbacks_for(cfg, data):
    """The callbacks a configuration asks for, in the order they act at each hook."""
    chosen = [
        cfg["scheduler"] and callbacks.LearningRateSchedule(),
        cfg["patience"] is not None and callbacks.EarlyStopping(cfg["patience"]),
        data.variable_bptt and callbacks.VariableBPTT(),
        (cfg["ar"] or cfg["tar"]) and phases.ActivationRegularization(cfg["ar"], cfg["tar"]),
        cfg["nt_asgd"] and phases.NTASGD(cfg["nt_asgd"]["nonmono"], cfg["optimizer"]),
        cfg["finetune"] and phases.FineTune(cfg["finetune"]["epochs"], cfg["finetune"]["nonmono"], cfg["optimizer"]),
    ]
    return [callback for callback in chosen if callback]


def _tensorboard(folder):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(folder / "tensorboard"))


@contextlib.contextmanager
def flushed_denormals():
    """Gradients carried back through hundreds of steps (pixel MNIST's 784) shrink into denormal
    floats, which x86 CPUs compute with up to ~100× slower; flushed to zero, they cost nothing. Only
    values below 1.2e-38 change. Restored to torch's default (off) afterwards."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def train(config, run_root=None):
    """Train (or resume, or just report) the experiment described by `config`; return its summary.

    Everything that can be wrong with the input (configuration, corpus, model options) is refused
    before the run folder is written. A second process on the same folder is refused (RunLockedError).
    Under torchrun every rank calls this with the same config; rank 0 alone reads and writes the folder.
    """
    cfg = make_config(config)
    folder = records.run_folder(cfg, run_root)
    finished = distributed.on_main(lambda: records.finished_summary(folder, cfg))
    if finished is not None:
        return finished

    seed_everything(cfg["seed"])
    device = distributed.device(cfg["device"])
    data = data_module.build(**cfg["data"]).to(device)
    model = models.from_config(cfg, data.model_inputs).to(device)
    optimizer = make_optimizer(model, cfg["optimizer"])
    run = loop.Run(cfg, folder, data, model, optimizer, make_scheduler(optimizer, cfg["scheduler"]), device,
                   callbacks_for(cfg, data), loop.LoopState(records.as_json(cfg), distributed.world_size()))
    if distributed.active():  # the same initial weights everywhere, different dropout masks per rank
        torch.manual_seed(cfg["seed"] * 1000 + distributed.rank())
    with contextlib.ExitStack() as held:
        held.enter_context(flushed_denormals())

        def lock():
            folder.mkdir(parents=True, exist_ok=True)
            held.enter_context(checkpoints.locked(folder))
            finished = records.finished_summary(folder, cfg)  # another process may have finished it meanwhile
            if finished is None:
                for path in checkpoints.remove_stale_temporaries(folder):
                    print(f"removed {path.name}, left by a process that was stopped while writing it")
            return finished

        finished = distributed.on_main(lock)
        if finished is not None:
            return finished
        # a resumed run keeps the matrix-product backend it started with, so it stays bit-identical
        held.enter_context(gemm.using(distributed.on_main(lambda: records.recorded_gemm_backend(folder))))
        _resume(run, distributed.on_main(lambda: records.resume_state(
            cfg, folder, data, models.count_parameters(model), device)))
        run.net = model
        if distributed.active():
            run.net = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
        run.writer = _tensorboard(folder) if distributed.is_main() else None
        loop.fit(run)
        return _finish(run)


def _resume(run, ckpt):
    """The run as its newest checkpoint left it (nothing, for a new run): states, weights, optimiser
    (after the callbacks rebuilt it where they had replaced it), scheduler and random streams."""
    if ckpt is None:
        return
    run.state = loop.LoopState.from_progress(ckpt["progress"])
    for callback in run.callbacks:
        callback.load_state(ckpt["progress"])
    run.model.load_state_dict(ckpt["model"])
    run.call("on_resume")
    run.optimizer.load_state_dict(ckpt["optimizer"])
    if run.scheduler is not None:
        run.scheduler.load_state_dict(ckpt["scheduler"])
    rng = ckpt["rng"]  # one state per rank (a list), or the one state of a single-process run
    records.set_rng_state(rng[distributed.rank()] if isinstance(rng, list) else rng)


def _finish(run):
    """The summary of a run whose phases are over: the best model's metrics, test included, and the
    callbacks' keys; written to the run folder."""
    cfg, state, metrics_of = run.cfg, run.state, run.data.objective.metrics
    run.model.load_state_dict(run.best_model_state())
    summary = {
        "experiment": cfg["experiment"], "model_name": cfg["model_name"], "corpus": cfg["data"]["corpus"],
        "parameters": models.count_parameters(run.model), "epochs_trained": state.epoch,
        "stopped_early": state.stopped_early, "best_epoch": state.best_epoch, "training_duration": state.duration,
        "mean_epoch_duration": state.duration / max(state.epoch, 1), "world_size": distributed.world_size(),
        # the best epoch's validation metrics (checkpoints written before there were tasks hold its loss alone)
        **metrics_of("best_validation", state.best_validation or {"loss": state.best_validation_loss}),
    }
    if "test" in run.data.splits:
        summary.update(metrics_of("test", run.evaluate("test")))
    for callback in run.callbacks:
        callback.summary(run, summary)
    distributed.on_main(lambda: checkpoints.save_json(summary, run.folder / checkpoints.SUMMARY))
    if run.writer is not None:
        run.writer.close()
    return summary


def train_each(configs, run_root=None, keep_going=False, workers=1):
    """Train every config of {model_name: config} (one section of `presets.training_configs`); return
    the summaries as a DataFrame indexed by model name. With `keep_going`, a run whose loss becomes
    NaN or infinite does not stop the others: its row says where in `diverged` and has no metrics
    (its checkpoints up to the last good epoch stay; training it again diverges at the same batch).
    `workers` > 1 trains the configs in that many parallel processes (`lstm_nb.workers`); then every
    configuration runs to its end before a failure or a divergence (without `keep_going`) is raised."""
    pd = require("pandas")

    if workers > 1 and len(configs) > 1:
        outcomes = pool.train_all(configs, run_root, workers)
        pool.raise_failures(outcomes)
        diverged = [key for key, (kind, _) in outcomes.items() if kind == "diverged"]
        if diverged and not keep_going:
            reasons = "; ".join(f"{key}: {outcomes[key][1]}" for key in diverged)
            raise NonFiniteLossError(f"diverged, the others trained: {reasons}")
        rows = [value if kind == "summary" else {"model_name": configs[key]["model_name"], "diverged": value}
                for key, (kind, value) in outcomes.items()]
        return pd.DataFrame(rows).set_index("model_name")
    rows = []
    for cfg in configs.values():
        try:
            rows.append(train(cfg, run_root))
        except NonFiniteLossError as e:
            if not keep_going:
                raise
            rows.append({"model_name": cfg["model_name"], "diverged": e.reason})
    return pd.DataFrame(rows).set_index("model_name")


if __name__ == "__main__":  # the command line (lstm_nb/cli.py), as `python -m lstm_nb.train`
    from .cli import main

    main()
