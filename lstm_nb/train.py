"""The one training loop: data and model from a config, per-epoch metrics and checkpoints in run/.

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
import math
import random
import resource
import time

import numpy as np
import torch

from . import checkpoints, distributed, gemm, models, phases, runs
from . import data as data_module
from . import workers as pool
from .config import ConfigError, make_config
from .errors import ExplainedError
from .extras import require
from .progress import bar as progress_bar


class NonFiniteLossError(ExplainedError, FloatingPointError):
    """The loss became NaN or infinite; training stopped, the last good checkpoint is kept."""


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_state():
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [x.tolist() if isinstance(x, np.ndarray) else x for x in np.random.get_state()]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state):
    torch.set_rng_state(state["torch"])
    version, keys, *rest = state["python"]
    random.setstate((version, tuple(keys), *rest))
    np.random.set_state((state["numpy"][0], np.array(state["numpy"][1], dtype=np.uint32), *state["numpy"][2:]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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


def _tensorboard(folder):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(folder / "tensorboard"))


def autocast(precision, device):
    """The mixed-precision context of a config's `precision`: "bfloat16" autocasts the embedding and
    decoder products; the recurrent layers always run in float32 (models.LanguageModel)."""
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bfloat16")


@torch.no_grad()
def evaluation(model, data, split, device, precision="float32"):
    """The task's metrics over the whole split ({"loss": mean loss, ...}; a language model's loss is
    the mean NLL per token, token-weighted), dropout off, state carried where the data carries it.
    The sums stay on the device until the split is read (one host sync per split, not per batch).
    Under torchrun each rank reads its share and the sums are added over ranks."""
    model.eval()
    state, sums = None, {}
    with autocast(precision, device):
        for x, y in data.batches(split):
            x, y = x.to(device), y.to(device)
            output, state = model(x, state if data.carry_state else None)
            for name, (total, count) in data.objective.statistics(output, y).items():
                before = sums.get(name, (0.0, 0))
                sums[name] = (before[0] + total, before[1] + count)
    sums = {name: (float(total), count) for name, (total, count) in sums.items()}
    if data.sharded[split]:
        sums = {name: distributed.sum_over_ranks(*pair) for name, pair in sums.items()}
    return {name: total / count for name, (total, count) in sums.items()}


def evaluate(model, data, split, device, precision="float32"):
    """The mean loss over the whole split (`evaluation`'s "loss")."""
    return evaluation(model, data, split, device, precision)["loss"]


def window_loss(model, data, x, y, state, device, ar=0.0, tar=0.0):
    """(the task's mean loss, AR + TAR penalty, new state) of one (input, target) window, from `state`
    (detached: truncated BPTT) when the data's windows continue each other, else from zeros."""
    x, y = x.to(device), y.to(device)
    state = models.detach_state(state) if data.carry_state else None
    if ar or tar:
        logits, state, raw, dropped = model(x, state, return_outputs=True)
        penalty = phases.activation_regularization(raw, dropped, ar, tar)
    else:
        (logits, state), penalty = model(x, state), 0.0
    return data.objective.loss(logits, y), penalty, state


# How often (in steps) training reads its running loss on the host: to check that it is finite and to
# show it on the progress bar. Reading it every step would stall a GPU at every step.
SYNC_EVERY = 50


def train_epoch(model, data, optimizer, cfg, epoch, device, desc=None, max_length=None):
    """One pass over the training split; returns the mean training loss, weighted by the targets (the
    task's loss alone, without AR/TAR), over every rank's targets under torchrun, and the number of
    optimizer steps taken (under torchrun `model` is
    the DistributedDataParallel wrapper). With variable BPTT each step's learning rate is scaled by the
    window's length / bptt (main.py; `data.lr_scale`); `max_length` caps the lengths (fine-tuning). The loss is summed on
    the device and checked every SYNC_EVERY steps and at the end: a non-finite loss is reported with
    the first batch where it appeared (the epoch's steps after it are discarded with the epoch)."""
    model.train()
    state, count = None, 0
    total = torch.zeros((), dtype=torch.float64, device=device)
    first_bad = torch.full((), -1, dtype=torch.long, device=device)  # the first non-finite step, or -1
    bad_loss = torch.zeros((), dtype=torch.float64, device=device)
    windows = data.batches("train", epoch, max_length=max_length) if max_length else data.batches("train", epoch)
    bar = progress_bar(windows, total=data.num_batches("train"), desc=desc or f"epoch {epoch}", leave=False,
                       mininterval=1.0)
    for step, (x, y) in enumerate(bar):
        with autocast(cfg["precision"], device):
            loss, penalty, state = window_loss(model, data, x, y, state, device, cfg["ar"], cfg["tar"])
        summed = loss.detach().to(torch.float64) * y.numel()
        newly_bad = (first_bad < 0) & ~torch.isfinite(summed)
        first_bad = torch.where(newly_bad, step, first_bad)
        bad_loss = torch.where(newly_bad, summed / y.numel(), bad_loss)
        optimizer.zero_grad(set_to_none=True)
        (loss + penalty).backward()
        if cfg["clip"]:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["clip"])
        scale = data.lr_scale(x.shape[0]) if data.variable_bptt else 1.0
        with phases.scaled_lr(optimizer, scale):
            optimizer.step()
        total += summed
        count += y.numel()
        if (step + 1) % SYNC_EVERY == 0:
            _check_finite(total, count, first_bad, bad_loss, epoch, step)
            bar.set_postfix(loss=f"{total.item() / count:.3f}", refresh=False)
    return _check_finite(total, count, first_bad, bad_loss, epoch, step), step + 1


def _check_finite(total, count, first_bad, bad_loss, epoch, step):
    """The mean training loss so far over every rank (one host sync); NonFiniteLossError naming the first
    bad batch when it is not finite. Every rank takes the same decision on the same summed number."""
    loss_sum, tokens = distributed.sum_over_ranks(total.item(), count)
    if not math.isfinite(loss_sum):
        where = int(first_bad)
        at = f"batch {where}" if where >= 0 else f"a batch up to {step} of another process"
        value = float(bad_loss) if where >= 0 else loss_sum / tokens
        raise NonFiniteLossError(f"the training loss became {value} at epoch {epoch}, {at}")
    return loss_sum / tokens


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
    folder = runs.run_folder(cfg, run_root)
    finished = distributed.on_main(lambda: runs.finished_summary(folder, cfg))
    if finished is not None:
        return finished

    seed_everything(cfg["seed"])
    device = distributed.device(cfg["device"])
    data = data_module.build(**cfg["data"]).to(device)
    model = models.from_config(cfg, data.model_inputs).to(device)
    optimizer = make_optimizer(model, cfg["optimizer"])
    scheduler = make_scheduler(optimizer, cfg["scheduler"])
    if distributed.active():  # the same initial weights everywhere, different dropout masks per rank
        torch.manual_seed(cfg["seed"] * 1000 + distributed.rank())
    with contextlib.ExitStack() as held:
        held.enter_context(flushed_denormals())

        def lock():
            folder.mkdir(parents=True, exist_ok=True)
            held.enter_context(checkpoints.locked(folder))
            finished = runs.finished_summary(folder, cfg)  # another process may have finished it meanwhile
            if finished is None:
                for path in checkpoints.remove_stale_temporaries(folder):
                    print(f"removed {path.name}, left by a process that was stopped while writing it")
            return finished

        finished = distributed.on_main(lock)
        if finished is not None:
            return finished
        # a resumed run keeps the matrix-product backend it started with, so it stays bit-identical
        held.enter_context(gemm.using(distributed.on_main(lambda: runs.recorded_gemm_backend(folder))))
        return _train_locked(cfg, folder, data, model, optimizer, scheduler, device)


def _train_locked(cfg, folder, data, model, optimizer, scheduler, device):
    name = f"{cfg['experiment']}/{cfg['model_name']}"
    n_params = models.count_parameters(model)
    progress = {"epoch": 0, "updates": 0, "best_epoch": None, "best_validation_loss": math.inf, "stale": 0, "duration": 0.0,
                "stopped_early": False, "history": [], "config": runs.as_json(cfg),
                "world_size": distributed.world_size(), **phases.initial_progress()}
    ckpt = distributed.on_main(lambda: runs.resume_state(cfg, folder, data, n_params, device))
    if ckpt is not None:
        progress = {**phases.initial_progress(), **ckpt["progress"]}  # older checkpoints lack the phase keys
        model.load_state_dict(ckpt["model"])
        if phases.uses_averaging(progress):
            optimizer = phases.averaging_sgd(model, cfg["optimizer"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
        rng = ckpt["rng"]  # one state per rank (a list), or the one state of a single-process run
        _set_rng_state(rng[distributed.rank()] if isinstance(rng, list) else rng)
    net = model
    if distributed.active():
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    writer = _tensorboard(folder) if distributed.is_main() else None
    metrics_of = data.objective.metrics  # {"loss": …, …} → the metrics files' names
    while (phase := phases.next_phase(cfg, progress)) is not None:
        if phase == "start_finetune":  # finetune.py: the best model, a fresh averaged SGD
            model.load_state_dict(distributed.on_main(lambda: runs.best_model_state(folder, progress, "cpu")))
            optimizer = phases.averaging_sgd(model, cfg["optimizer"])
            before = {"epoch": progress["best_epoch"], "validation_loss": progress["best_validation_loss"]}
            if "test" in data.splits:
                before["test_loss"] = evaluate(model, data, "test", device, cfg["precision"])
            progress.update(phase="finetune", logs=[],
                            finetune={"start_epoch": progress["epoch"], "stopped": False, "before": before})
        epoch = progress["epoch"] + 1
        start = time.time()
        max_length = data.bptt + 10 if progress["phase"] == "finetune" and data.variable_bptt else None
        try:
            train_loss, steps = train_epoch(net, data, optimizer, cfg, epoch, device, desc=f"{name} epoch {epoch}",
                                            max_length=max_length)
            with phases.averaged_weights(model, optimizer) as averaged:
                valid = evaluation(model, data, "valid", device, cfg["precision"])
                valid_loss = valid["loss"]
                evaluated_state = runs.copy_state(model) if averaged else None
            if not math.isfinite(valid_loss):
                raise NonFiniteLossError(f"the validation loss became {valid_loss} at epoch {epoch}")
        except NonFiniteLossError as e:
            error = NonFiniteLossError(_diverged_advice(e, name, folder, progress["epoch"]))
            error.reason = str(e)  # "the training loss became nan at epoch E, batch B"
            raise error from None
        if scheduler is not None:
            is_plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
            scheduler.step(valid_loss) if is_plateau else scheduler.step()
        improved = valid_loss < progress["best_validation_loss"]
        if improved:
            progress.update(best_epoch=epoch, best_validation_loss=valid_loss, best_validation=valid, stale=0)
        else:
            progress["stale"] += 1
        epoch_phase = progress["phase"] if progress["phase"] == "finetune" else (
            "asgd" if phases.uses_averaging(progress) else cfg["optimizer"]["name"].lower())
        if phases.after_validation(cfg, progress, epoch, valid_loss) == "switch":
            optimizer = phases.averaging_sgd(model, cfg["optimizer"])
        epoch_time = time.time() - start
        if progress.get("updates") is not None:  # checkpoints written before updates were counted lack it
            progress["updates"] += steps
        progress.update(epoch=epoch, duration=progress["duration"] + epoch_time,
                        stopped_early=progress["stopped_early"] or (
                            progress["phase"] == "train" and cfg["patience"] is not None
                            and progress["stale"] >= cfg["patience"]))
        metrics = {
            "epoch": epoch,
            "training_epochs": epoch,
            "updates": progress.get("updates"),  # optimizer steps since the start, all phases
            "best_epoch": progress["best_epoch"],
            "phase": epoch_phase,
            "averaged_weights": averaged,
            **metrics_of("training", {"loss": train_loss}),
            **metrics_of("validation", valid),
            **metrics_of("best_validation", {"loss": progress["best_validation_loss"]}),
            "training_duration": progress["duration"],
            "epoch_duration": epoch_time,
            "learning_rate": optimizer.param_groups[0]["lr"],
            "peak_cpu_memory_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        if device.type == "cuda":
            metrics["peak_gpu_0_memory_MB"] = torch.cuda.max_memory_allocated(device) / 2**20
        progress["history"].append(metrics)
        rng = distributed.gather(_rng_state())
        distributed.on_main(runs.save_epoch, cfg, folder, model, optimizer, scheduler, progress, improved,
                            rng if distributed.active() else rng[0], writer, evaluated_state)
        if distributed.is_main():
            of = (f"epoch {epoch}/{cfg['epochs']}" if progress["phase"] == "train" else
                  f"fine-tuning epoch {epoch - progress['finetune']['start_epoch']}/{cfg['finetune']['epochs']}")
            print(f"{name} {of}: training loss {train_loss:.4f}, validation loss "
                  f"{valid_loss:.4f}{' (averaged weights)' if averaged else ''}{' (best)' if improved else ''}, "
                  f"{epoch_time:.1f}s{', switching to ASGD' if progress['switched_after_epoch'] == epoch else ''}",
                  flush=True)

    model.load_state_dict(distributed.on_main(lambda: runs.best_model_state(folder, progress, "cpu")))
    summary = {
        "experiment": cfg["experiment"], "model_name": cfg["model_name"], "corpus": cfg["data"]["corpus"],
        "parameters": n_params, "epochs_trained": progress["epoch"], "stopped_early": progress["stopped_early"],
        "best_epoch": progress["best_epoch"], "training_duration": progress["duration"],
        "mean_epoch_duration": progress["duration"] / max(progress["epoch"], 1),
        "world_size": distributed.world_size(),
        # the best epoch's validation metrics (checkpoints written before there were tasks hold its loss alone)
        **metrics_of("best_validation", progress.get("best_validation") or {"loss": progress["best_validation_loss"]}),
    }
    if "test" in data.splits:
        summary.update(metrics_of("test", evaluation(model, data, "test", device, cfg["precision"])))
    if cfg["nt_asgd"]:
        summary["switched_to_asgd_after_epoch"] = progress["switched_after_epoch"]
    if progress["phase"] == "finetune":
        before = progress["finetune"]["before"]
        summary.update({"finetune_epochs": progress["epoch"] - progress["finetune"]["start_epoch"],
                        "before_finetune_best_epoch": before["epoch"],
                        **metrics_of("before_finetune_best_validation", {"loss": before["validation_loss"]})})
        if "test_loss" in before:
            summary.update(metrics_of("before_finetune_test", {"loss": before["test_loss"]}))
    distributed.on_main(lambda: checkpoints.save_json(summary, folder / checkpoints.SUMMARY))
    if writer is not None:
        writer.close()
    return summary


def _diverged_advice(error, name, folder, last_good_epoch):
    kept = f"the checkpoints up to epoch {last_good_epoch} are kept" if last_good_epoch else "no epoch had finished"
    return (
        f"{name}: {error}; {kept}. The same configuration diverges again at the same batch, so change it: "
        f"lower optimizer.lr, or set or lower clip (the gradient-norm limit), then train under another "
        f"model_name, or delete {folder} and train again."
    )


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
