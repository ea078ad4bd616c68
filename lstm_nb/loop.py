"""The one training loop: epochs of training and validation over a data object's batches, with
callbacks (`lstm_nb.callbacks`) at fixed points. `train.train` builds a `Run` from a configuration,
resumes it from its run folder and calls `fit`.
"""

import dataclasses
import math
import resource
import time

import torch

from . import distributed, models, phases, records
from .errors import ExplainedError
from .progress import bar as progress_bar


class NonFiniteLossError(ExplainedError, FloatingPointError):
    """The loss became NaN or infinite; training stopped, the last good checkpoint is kept."""


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


def window_loss(model, data, x, y, state, device, outputs=False):
    """(the task's mean loss, new state, the last layer's (raw, dropped) outputs with `outputs` else None)
    of one (input, target) window, from `state` (detached: truncated BPTT) when the data's windows
    continue each other, else from zeros."""
    x, y = x.to(device), y.to(device)
    state = models.detach_state(state) if data.carry_state else None
    if outputs:
        logits, state, raw, dropped = model(x, state, return_outputs=True)
        return data.objective.loss(logits, y), state, (raw, dropped)
    logits, state = model(x, state)
    return data.objective.loss(logits, y), state, None


@dataclasses.dataclass
class Step:
    """One training window, as the step callbacks see it."""
    x: torch.Tensor
    y: torch.Tensor
    optimizer: torch.optim.Optimizer
    data: object
    loss: torch.Tensor = None  # the task's mean loss: what training reports
    penalty: torch.Tensor | float = 0.0  # added to the loss for the gradient alone (AR/TAR)
    outputs: tuple = None  # the last layer's (raw, dropped) outputs, for callbacks that want them


def training_step(model, data, optimizer, x, y, state, cfg, device, callbacks=()):
    """One optimiser step on one window: (the task's loss, the new state)."""
    step = Step(x.to(device), y.to(device), optimizer, data)
    for callback in callbacks:
        callback.before_step(step)
    with autocast(cfg["precision"], device):
        step.loss, state, step.outputs = window_loss(model, data, step.x, step.y, state, device,
                                                     outputs=any(c.wants_outputs for c in callbacks))
        for callback in callbacks:
            callback.after_loss(step)
    optimizer.zero_grad(set_to_none=True)
    (step.loss + step.penalty).backward()
    if cfg["clip"]:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["clip"])
    optimizer.step()
    for callback in callbacks:
        callback.after_step(step)
    return step.loss, state


# How often (in steps) training reads its running loss on the host: to check that it is finite and to
# show it on the progress bar. Reading it every step would stall a GPU at every step.
SYNC_EVERY = 50


def train_epoch(model, data, optimizer, cfg, epoch, device, desc=None, callbacks=(), **batch_options):
    """One pass over the training split (`data.batches("train", epoch, **batch_options)`); returns the
    mean training loss, weighted by the targets (the task's loss alone, without AR/TAR), over every
    rank's targets under torchrun (`model` is then the DistributedDataParallel wrapper), and the number
    of optimizer steps taken. The loss is summed on the device and checked every SYNC_EVERY steps and
    at the end: a non-finite loss is reported with the first batch where it appeared (the epoch's steps
    after it are discarded with the epoch)."""
    model.train()
    state, count = None, 0
    total = torch.zeros((), dtype=torch.float64, device=device)
    first_bad = torch.full((), -1, dtype=torch.long, device=device)  # the first non-finite step, or -1
    bad_loss = torch.zeros((), dtype=torch.float64, device=device)
    bar = progress_bar(data.batches("train", epoch, **batch_options), total=data.num_batches("train"),
                       desc=desc or f"epoch {epoch}", leave=False, mininterval=1.0)
    for step, (x, y) in enumerate(bar):
        loss, state = training_step(model, data, optimizer, x, y, state, cfg, device, callbacks)
        summed = loss.detach().to(torch.float64) * y.numel()
        newly_bad = (first_bad < 0) & ~torch.isfinite(summed)
        first_bad = torch.where(newly_bad, step, first_bad)
        bad_loss = torch.where(newly_bad, summed / y.numel(), bad_loss)
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


@dataclasses.dataclass
class LoopState:
    """The loop's own state: with the callbacks' states, a checkpoint's "progress"."""
    config: dict
    world_size: int = 1  # processes under torchrun (a resume needs the same)
    phase: str = "train"  # "train", or the phase a callback began when the one before ended
    epoch: int = 0
    updates: int | None = 0  # optimizer steps over all phases (None: a checkpoint from before they were counted)
    best_epoch: int | None = None
    best_validation_loss: float = math.inf
    best_validation: dict | None = None  # the best epoch's validation metrics
    duration: float = 0.0  # seconds of training and validation, summed over epochs and resumes
    stopped_early: bool = False  # the training phase ended before its epochs (callbacks.EarlyStopping)
    history: list = dataclasses.field(default_factory=list)  # every epoch's metrics

    @classmethod
    def from_progress(cls, progress):
        """The state a checkpoint saved; a field it lacks takes its default, except `updates`: a run
        whose first epochs were not counted stays uncounted (None) rather than counting from here."""
        saved = {f.name: progress[f.name] for f in dataclasses.fields(cls) if f.name in progress}
        return cls(**{"updates": None, **saved})


@dataclasses.dataclass
class Run:
    """One training run as the loop and its callbacks see it."""
    cfg: dict
    folder: object  # its run folder (pathlib.Path); rank 0 alone writes it
    data: object
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    device: torch.device
    callbacks: list
    state: LoopState
    net: torch.nn.Module = None  # what trains: the model, or its DistributedDataParallel wrapper
    writer: object = None  # TensorBoard's SummaryWriter, when it is installed
    # the current epoch's, set by the loop and its callbacks
    epoch_label: str = ""  # its metrics' "phase"
    epoch_title: str = ""  # its name on the epoch line
    batch_options: dict = None
    notes: list = None  # added to the epoch line
    validation: dict = None
    improved: bool = False

    def call(self, hook):
        for callback in self.callbacks:
            getattr(callback, hook)(self)

    def phase_over(self):
        if self.state.phase == "train":
            return self.state.epoch >= self.cfg["epochs"] or self.state.stopped_early
        return any(callback.phase_over(self) for callback in self.callbacks)

    def progress(self):
        """The loop's and the callbacks' states, as every checkpoint saves them."""
        entries = dataclasses.asdict(self.state)
        for callback in self.callbacks:
            entries.update(callback.state_entries())
        return entries

    def evaluate(self, split):
        return evaluation(self.model, self.data, split, self.device, self.cfg["precision"])

    def best_model_state(self):
        return distributed.on_main(lambda: records.best_model_state(self.folder, self.progress(), "cpu"))

    @property
    def name(self):
        return f"{self.cfg['experiment']}/{self.cfg['model_name']}"


def fit(run):
    """Train `run` epoch by epoch until its phase is over and no callback begins another."""
    while True:
        while not run.phase_over():
            run_epoch(run)
        phase = run.state.phase
        run.call("at_phase_end")
        if run.state.phase == phase:
            return


def run_epoch(run):
    """One epoch: train, validate (ASGD's averaged weights where the optimiser keeps them), let the
    callbacks act, then write the epoch's metrics and checkpoint."""
    state, epoch = run.state, run.state.epoch + 1
    run.epoch_label, run.epoch_title = run.cfg["optimizer"]["name"].lower(), f"epoch {epoch}/{run.cfg['epochs']}"
    run.batch_options, run.notes = {}, []
    run.call("before_epoch")
    start = time.time()
    try:
        train_loss, steps = train_epoch(run.net, run.data, run.optimizer, run.cfg, epoch, run.device,
                                        f"{run.name} epoch {epoch}", run.callbacks, **run.batch_options)
        with phases.averaged_weights(run.model, run.optimizer) as averaged:
            run.validation = run.evaluate("valid")
            evaluated_state = records.copy_state(run.model) if averaged else None
        if not math.isfinite(run.validation["loss"]):
            raise NonFiniteLossError(f"the validation loss became {run.validation['loss']} at epoch {epoch}")
    except NonFiniteLossError as e:
        error = NonFiniteLossError(diverged_advice(e, run.name, run.folder, state.epoch))
        error.reason = str(e)  # "the training loss became nan at epoch E, batch B"
        raise error from None
    run.improved = run.validation["loss"] < state.best_validation_loss
    if run.improved:
        state.best_epoch, state.best_validation_loss, state.best_validation = epoch, run.validation["loss"], run.validation
    state.epoch = epoch
    run.call("after_validation")
    epoch_time = time.time() - start
    state.duration += epoch_time
    if state.updates is not None:
        state.updates += steps
    state.history.append(epoch_metrics(run, train_loss, averaged, epoch_time))
    rng = distributed.gather(records.rng_state())
    distributed.on_main(records.save_epoch, run.cfg, run.folder, run.model, run.optimizer, run.scheduler,
                        run.progress(), run.improved, rng if distributed.active() else rng[0], run.writer,
                        evaluated_state)
    if distributed.is_main():
        print(f"{run.name} {run.epoch_title}: training loss {train_loss:.4f}, validation loss "
              f"{run.validation['loss']:.4f}{' (averaged weights)' if averaged else ''}"
              f"{' (best)' if run.improved else ''}, {epoch_time:.1f}s{''.join(', ' + n for n in run.notes)}",
              flush=True)


def epoch_metrics(run, train_loss, averaged, epoch_time):
    """An epoch's metrics file (keys in docs/run-folder.md)."""
    state, metrics_of = run.state, run.data.objective.metrics  # {"loss": …, …} → the metrics files' names
    metrics = {
        "epoch": state.epoch,
        "training_epochs": state.epoch,
        "updates": state.updates,  # optimizer steps since the start, all phases
        "best_epoch": state.best_epoch,
        "phase": run.epoch_label,
        "averaged_weights": averaged,
        **metrics_of("training", {"loss": train_loss}),
        **metrics_of("validation", run.validation),
        **metrics_of("best_validation", {"loss": state.best_validation_loss}),
        "training_duration": state.duration,
        "epoch_duration": epoch_time,
        "learning_rate": run.optimizer.param_groups[0]["lr"],
        "peak_cpu_memory_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if run.device.type == "cuda":
        metrics["peak_gpu_0_memory_MB"] = torch.cuda.max_memory_allocated(run.device) / 2**20
    return metrics


def diverged_advice(error, name, folder, last_good_epoch):
    kept = f"the checkpoints up to epoch {last_good_epoch} are kept" if last_good_epoch else "no epoch had finished"
    return (
        f"{name}: {error}; {kept}. The same configuration diverges again at the same batch, so change it: "
        f"lower optimizer.lr, or set or lower clip (the gradient-norm limit), then train under another "
        f"model_name, or delete {folder} and train again."
    )
