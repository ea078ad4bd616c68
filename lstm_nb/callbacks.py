"""What plugs into the training loop (`lstm_nb.loop`): callbacks with typed state, after fastai's.

A callback overrides the hooks it needs; the loop calls every callback's hook, in the order of the
list, at fixed points:

    on_resume(run)         a checkpoint was loaded (callback states included), before the optimiser's
                           state is: a callback that replaced the optimiser replaces it again here
    before_epoch(run)      before an epoch's training: set `run.epoch_label`, `run.epoch_title`,
                           `run.batch_options` (given to `data.batches`)
    before_step(step)      a training window, before its forward pass (`loop.Step`)
    after_loss(step)       its loss is computed: add to `step.penalty` (the gradient's, not the report's)
    after_step(step)       after the optimiser's step
    after_validation(run)  the epoch's validation is in `run.validation`, `run.improved`, `run.state`
    phase_over(run)        whether the phase this callback began is over (the loop owns "train")
    at_phase_end(run)      the phase `run.state.phase` is over: a callback may begin another by
                           setting `run.state.phase` (fine-tuning), else training ends
    summary(run, summary)  add the callback's keys to the run's final summary

A callback's state is a dataclass (`State`), saved in every epoch checkpoint beside the loop's own
(`loop.LoopState`) and restored on resume, so a resumed run continues exactly. Its fields are keys of
the checkpoint's "progress" (or of one nested entry, `key`), which older checkpoints may lack: they
then take the field's default.

The loop's callbacks for a configuration are `train.callbacks_for`; AWD-LSTM's are in `phases`.
"""

import dataclasses

import torch


class Callback:
    State = None  # a dataclass of the callback's state, or None for a stateless callback
    key = None  # the progress entry holding the state's fields, or None: they sit at its top level
    wants_outputs = False  # whether `after_loss` reads the last layer's outputs (`step.outputs`)

    def __init__(self):
        self.state = self.State() if self.State else None

    def state_entries(self):
        """The state's entries in a checkpoint's progress."""
        if self.state is None:
            return {}
        fields = dataclasses.asdict(self.state)
        return {self.key: fields} if self.key else fields

    def load_state(self, progress):
        """The state from a checkpoint's progress; a field it lacks keeps its default."""
        if self.State is None:
            return
        saved = progress.get(self.key) if self.key else progress
        known = {f.name for f in dataclasses.fields(self.State)}
        self.state = self.State(**{name: value for name, value in (saved or {}).items() if name in known})

    def on_resume(self, run):
        pass

    def before_epoch(self, run):
        pass

    def before_step(self, step):
        pass

    def after_loss(self, step):
        pass

    def after_step(self, step):
        pass

    def after_validation(self, run):
        pass

    def phase_over(self, run):
        return False

    def at_phase_end(self, run):
        pass

    def summary(self, run, summary):
        pass


class LearningRateSchedule(Callback):
    """Steps the run's `torch.optim.lr_scheduler` after every validation (ReduceLROnPlateau with the
    validation loss). The scheduler's own state is in the checkpoint beside the optimiser's."""

    def after_validation(self, run):
        if isinstance(run.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            run.scheduler.step(run.validation["loss"])
        else:
            run.scheduler.step()


@dataclasses.dataclass
class EarlyStoppingState:
    stale: int = 0  # validations in a row without a new best


class EarlyStopping(Callback):
    """Ends the training phase after `patience` validations in a row without a new best
    (`run.state.stopped_early`, reported in the summary)."""

    State = EarlyStoppingState

    def __init__(self, patience):
        super().__init__()
        self.patience = patience

    def after_validation(self, run):
        self.state.stale = 0 if run.improved else self.state.stale + 1
        if run.state.phase == "train" and self.state.stale >= self.patience:
            run.state.stopped_early = True


class VariableBPTT(Callback):
    """AWD-LSTM's variable-BPTT step (main.py): the learning rate × the window's length / bptt
    (`data.lr_scale`) for this window's step, restored after it."""

    def before_step(self, step):
        self.saved = [group["lr"] for group in step.optimizer.param_groups]
        scale = step.data.lr_scale(step.x.shape[0])
        for group in step.optimizer.param_groups:
            group["lr"] = group["lr"] * scale

    def after_step(self, step):
        for group, lr in zip(step.optimizer.param_groups, self.saved):
            group["lr"] = lr
