"""AWD-LSTM's additions to the training loop, as callbacks (`lstm_nb.callbacks`) (Merity, Keskar &
Socher 2018, "Regularizing and Optimizing LSTM Language Models"; official code salesforce/awd-lstm-lm,
main.py and finetune.py): the AR/TAR loss terms, NT-ASGD's switch and the averaged weights it
evaluates, and the fine-tuning phase.

A run's phases, in `run.state.phase`:
  "train"     the configured optimiser (SGD for NT-ASGD) for up to `epochs` epochs; with `nt_asgd`,
              it switches once, for good, to `torch.optim.ASGD(t0=0, lambd=0)` when validation
              stops improving (`nonmono_triggered`), and from then on validation, the best model and test
              use the average of the iterates (`averaged_weights`);
  "finetune"  with `finetune`: from the best model, a fresh ASGD, stopped by the same rule or after
              `finetune.epochs` epochs (finetune.py).
The optimiser's state (the averages included) is in every epoch checkpoint, so a resumed run
continues the same iterates and averages.
"""

import contextlib
import dataclasses

import torch

from .callbacks import Callback


def activation_regularization(raw, dropped, ar, tar):
    """AR + TAR of one window (the paper's §4.6; main.py):

        AR  = α · mean(ĥ_t²)              ĥ: the last layer's output after its (locked) dropout
        TAR = β · mean((h_t − h_{t−1})²)  h: the same output before the dropout

    means over steps × batch × units, with gradient (the a-martyn/awd-lstm reimplementation computed
    them on detached outputs, which adds a constant and no gradient)."""
    loss = raw.new_zeros(())
    if ar:
        loss = loss + ar * dropped.pow(2).mean()
    if tar:
        loss = loss + tar * (raw[1:] - raw[:-1]).pow(2).mean()
    return loss


def nonmono_triggered(logs, validation_loss, nonmono):
    """NT-ASGD's non-monotone trigger, as main.py tests it after each epoch: more than `nonmono`
    earlier validation losses are logged and this one is worse than the best of all but the last
    `nonmono` of them. finetune.py stops on the same rule."""
    return len(logs) > nonmono and validation_loss > min(logs[:-nonmono])


def averaging_sgd(model, optimizer_spec):
    """The averaged SGD main.py switches to and finetune.py starts: constant lr (lambd = 0), averaging
    from the first step (t0 = 0), SGD's learning rate and weight decay."""
    return torch.optim.ASGD(model.parameters(), lr=optimizer_spec["lr"], t0=0, lambd=0.0,
                            weight_decay=optimizer_spec.get("weight_decay", 0))


@contextlib.contextmanager
def averaged_weights(model, optimizer):
    """Inside: the model holds ASGD's averages `ax` (torch.optim.ASGD's running mean of the iterates),
    as main.py swaps them in to validate and save; the raw weights are back afterwards. With another
    optimiser, or before ASGD's first step, the model is left as it is."""
    raw = {}
    if isinstance(optimizer, torch.optim.ASGD):
        with torch.no_grad():
            for p in model.parameters():
                if "ax" in optimizer.state.get(p, {}):
                    raw[p] = p.clone()
                    p.copy_(optimizer.state[p]["ax"])
    try:
        yield bool(raw)
    finally:
        with torch.no_grad():
            for p, weight in raw.items():
                p.copy_(weight)


class ActivationRegularization(Callback):
    """AR and TAR (`activation_regularization`) added to every training window's gradient; the
    reported training loss stays the task's own."""

    wants_outputs = True

    def __init__(self, ar, tar):
        super().__init__()
        self.ar, self.tar = ar, tar

    def after_loss(self, step):
        raw, dropped = step.outputs
        step.penalty = step.penalty + activation_regularization(raw, dropped, self.ar, self.tar)


@dataclasses.dataclass
class NTASGDState:
    switched_after_epoch: int | None = None  # the epoch after which the run switched to ASGD
    logs: list = dataclasses.field(default_factory=list)  # the validation losses up to the switch


class NTASGD(Callback):
    """Non-monotonically triggered ASGD (main.py): the training phase switches, once, to
    `averaging_sgd` when the validation loss is worse than the best of all but the last `nonmono`
    epochs; the epochs after it are labelled "asgd"."""

    State = NTASGDState

    def __init__(self, nonmono, optimizer_spec):
        super().__init__()
        self.nonmono, self.optimizer_spec = nonmono, optimizer_spec

    def on_resume(self, run):
        if self.state.switched_after_epoch is not None:
            run.optimizer = averaging_sgd(run.model, self.optimizer_spec)

    def before_epoch(self, run):
        if self.state.switched_after_epoch is not None:
            run.epoch_label = "asgd"

    def after_validation(self, run):
        if run.state.phase != "train" or self.state.switched_after_epoch is not None:
            return
        if nonmono_triggered(self.state.logs, run.validation["loss"], self.nonmono):
            self.state.switched_after_epoch = run.state.epoch
            run.optimizer = averaging_sgd(run.model, self.optimizer_spec)
            run.notes.append("switching to ASGD")
        self.state.logs.append(run.validation["loss"])

    def summary(self, run, summary):
        summary["switched_to_asgd_after_epoch"] = self.state.switched_after_epoch


@dataclasses.dataclass
class FineTuneState:
    start_epoch: int | None = None  # the last epoch of the training phase; None before fine-tuning
    stopped: bool = False  # the non-monotone rule ended it
    before: dict | None = None  # the best epoch before it: its number, validation loss and test loss
    logs: list = dataclasses.field(default_factory=list)  # its validation losses


class FineTune(Callback):
    """finetune.py as a phase after training: from the best model, a fresh `averaging_sgd` for up to
    `epochs` epochs, stopped by the non-monotone rule; variable-BPTT windows capped at bptt + 10."""

    State = FineTuneState
    key = "finetune"

    def __init__(self, epochs, nonmono, optimizer_spec):
        super().__init__()
        self.epochs, self.nonmono, self.optimizer_spec = epochs, nonmono, optimizer_spec

    def load_state(self, progress):
        super().load_state(progress)
        if "logs" not in (progress.get("finetune") or {}):  # older checkpoints kept its logs at the top level
            self.state.logs = list(progress.get("logs", [])) if progress.get("phase") == "finetune" else []

    def on_resume(self, run):
        if run.state.phase == "finetune":
            run.optimizer = averaging_sgd(run.model, self.optimizer_spec)

    def at_phase_end(self, run):
        if run.state.phase != "train":
            return
        run.model.load_state_dict(run.best_model_state())
        run.optimizer = averaging_sgd(run.model, self.optimizer_spec)
        before = {"epoch": run.state.best_epoch, "validation_loss": run.state.best_validation_loss}
        if "test" in run.data.splits:
            before["test_loss"] = run.evaluate("test")["loss"]
        self.state = FineTuneState(start_epoch=run.state.epoch, before=before)
        run.state.phase = "finetune"

    def before_epoch(self, run):
        if run.state.phase != "finetune":
            return
        run.epoch_label = "finetune"
        run.epoch_title = f"fine-tuning epoch {run.state.epoch + 1 - self.state.start_epoch}/{self.epochs}"
        if run.data.variable_bptt:
            run.batch_options["max_length"] = run.data.bptt + 10

    def after_validation(self, run):
        if run.state.phase != "finetune":
            return
        if nonmono_triggered(self.state.logs, run.validation["loss"], self.nonmono):
            self.state.stopped = True
        self.state.logs.append(run.validation["loss"])

    def phase_over(self, run):
        return run.state.phase == "finetune" and (
            self.state.stopped or run.state.epoch - self.state.start_epoch >= self.epochs)

    def summary(self, run, summary):
        if run.state.phase != "finetune":
            return
        metrics_of, before = run.data.objective.metrics, self.state.before
        summary.update({"finetune_epochs": run.state.epoch - self.state.start_epoch,
                        "before_finetune_best_epoch": before["epoch"],
                        **metrics_of("before_finetune_best_validation", {"loss": before["validation_loss"]})})
        if "test_loss" in before:
            summary.update(metrics_of("before_finetune_test", {"loss": before["test_loss"]}))
