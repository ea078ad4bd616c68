"""AWD-LSTM's additions to the training loop (Merity, Keskar & Socher 2018, "Regularizing and
Optimizing LSTM Language Models"; official code salesforce/awd-lstm-lm, main.py and finetune.py):
the AR/TAR loss terms, the non-monotone trigger of NT-ASGD, the averaged weights it evaluates, and
the phase a run is in.

A run's phases, in `progress["phase"]`:
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

import torch


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


def initial_progress():
    """The phase keys of a run's progress at its start (the loop keeps the rest)."""
    return {"phase": "train", "switched_after_epoch": None, "logs": [], "finetune": None}


def uses_averaging(progress):
    """Whether the epochs now run on ASGD: after NT-ASGD's switch, and throughout fine-tuning."""
    return progress["phase"] == "finetune" or progress["switched_after_epoch"] is not None


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


@contextlib.contextmanager
def scaled_lr(optimizer, scale):
    """main.py's variable-BPTT step: lr × seq_len / bptt for this batch, restored after it."""
    saved = [group["lr"] for group in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * scale
    try:
        yield
    finally:
        for group, lr in zip(optimizer.param_groups, saved):
            group["lr"] = lr


def next_phase(cfg, progress):
    """What the next epoch is: "train", "finetune", "start_finetune" (the main training is over and
    fine-tuning begins) or None (the run is finished)."""
    if progress["phase"] == "train":
        if progress["epoch"] < cfg["epochs"] and not progress["stopped_early"]:
            return "train"
        return "start_finetune" if cfg["finetune"] else None
    finetune = progress["finetune"]
    if finetune["stopped"] or progress["epoch"] - finetune["start_epoch"] >= cfg["finetune"]["epochs"]:
        return None
    return "finetune"


def after_validation(cfg, progress, epoch, validation_loss):
    """The phase's rule after an epoch's validation: NT-ASGD's switch (returns "switch") or
    fine-tuning's stop; then the loss is logged, as main.py and finetune.py do."""
    decision = None
    if progress["phase"] == "train" and cfg["nt_asgd"] and progress["switched_after_epoch"] is None:
        if nonmono_triggered(progress["logs"], validation_loss, cfg["nt_asgd"]["nonmono"]):
            progress["switched_after_epoch"] = epoch
            decision = "switch"
        progress["logs"].append(validation_loss)
    elif progress["phase"] == "finetune":
        if nonmono_triggered(progress["logs"], validation_loss, cfg["finetune"]["nonmono"]):
            progress["finetune"]["stopped"] = True
        progress["logs"].append(validation_loss)
    return decision
