"""Dynamic evaluation (Krause, Kahembwe, Murray & Renals, ICML 2018): the model keeps learning while
it reads the evaluation text.

The text is read segment by segment with the state carried. Each segment is first scored by the
current weights (that loss is what is reported: no token is predicted after training on it), then the
weights take one gradient step on that segment, so later segments are predicted by a model adapted to
the text read so far. The default rule is Krause's "RMS with global prior decay":

    θ ← θ − η ∇L_s(θ) / (√MS + ε) + λ ⊙ (θ_0 − θ),    λ = decay · √MS / mean(√MS), capped at 1

MS is the mean squared gradient over `train_batches` training batches at the trained weights θ_0.
`rule="sgd"` is the plain variant θ ← θ − η ∇L_s + decay · (θ_0 − θ). As in the official Mogrifier
code, dropout, L2 and gradient clipping are off while adapting. The caller's model is not modified.

    result = lstm_nb.dyneval.tune_and_test("run/mogrifier-ptb-cpu/mogrifier", lr_grid=[1e-5, 1e-4], decay=0.02)
"""

import copy
import math
from pathlib import Path

import torch

from . import checkpoints
from .finished import load_run
from .loop import evaluate, window_loss
from .objectives import loss_metrics
from .records import cached

RULES = ("rms", "sgd")


def gradient_mean_square(model, data, device, train_batches):
    """MS per parameter: the mean of the squared training gradient over the first `train_batches`
    training batches (dropout off, state carried)."""
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    ms = [torch.zeros_like(p) for p in params]
    state, n = None, 0
    for x, y in data.batches("train"):
        if n == train_batches:
            break
        loss, state, _ = window_loss(model, data, x, y, state, device)
        grads = torch.autograd.grad(loss, params)
        for acc, g in zip(ms, grads):
            acc += g * g
        n += 1
    return [acc / max(n, 1) for acc in ms]


def dynamic_evaluate(model, data, split, device, lr, decay, rule="rms", segment_length=None, eps=1e-3,
                     train_batches=100, mean_square=None):
    """Mean NLL per token of `split` under dynamic evaluation (token-weighted, like `loop.evaluate`).

    segment_length: tokens per adaptation step (default: the data's bptt); the split's streams are
    the data's evaluation batch (batch 1 is the paper's setting: one stream, no mixing of texts).
    mean_square: `gradient_mean_square(model, data, device, train_batches)` when already computed.
    """
    if rule not in RULES:
        raise ValueError(f"unknown dynamic-evaluation rule {rule!r}; use one of {', '.join(RULES)}")
    if not data.carry_state:
        raise ValueError("dynamic evaluation reads a continuous text: it needs a stream corpus (PTB, WikiText-2)")
    if rule == "rms" and mean_square is None:
        mean_square = gradient_mean_square(model, data, device, train_batches)
    model = copy.deepcopy(model)
    params = [p for p in model.parameters() if p.requires_grad]
    start = [p.detach().clone() for p in params]
    if rule == "rms":
        rms = [ms.sqrt() for ms in mean_square]
        mean_rms = sum(r.sum() for r in rms) / sum(r.numel() for r in rms)
        step_scale = [1.0 / (r + eps) for r in rms]
        decay_rate = [(decay * r / mean_rms).clamp(max=1.0) for r in rms]
    else:
        step_scale, decay_rate = [1.0] * len(params), [decay] * len(params)

    model.eval()  # dropout off; the weights still get gradients
    state, total, count = None, 0.0, 0
    for x, y in data.batches(split, bptt=segment_length):
        loss, state, _ = window_loss(model, data, x, y, state, device)
        total += loss.item() * y.numel()  # scored before the weights see this segment
        count += y.numel()
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g, p0, scale, rate in zip(params, grads, start, step_scale, decay_rate):
                p.sub_(lr * g * scale).add_(rate * (p0 - p))
    return total / count


def evaluate_run(folder, split="test", lr=1e-4, decay=0.02, rule="rms", segment_length=None, eps=1e-3,
                 train_batches=100, device="auto", loaded=None):
    """Static and dynamic evaluation of a finished run's best model on `split`. Every result is kept in
    the run's `dynamic_eval` evaluation file with its options, and read back from there when asked again.
    `loaded`: a dict shared by calls on the same run, so its data, model and training-gradient
    statistics are loaded and computed once."""
    folder = Path(folder)
    options = {"split": split, "lr": lr, "decay": decay, "rule": rule, "segment_length": segment_length,
               "eps": eps, "train_batches": train_batches}
    loaded = {} if loaded is None else loaded

    def compute(saved):
        data, model, on = load_run(folder, device, loaded)
        loaded.setdefault("mean_square", {})
        if rule == "rms" and train_batches not in loaded["mean_square"]:
            loaded["mean_square"][train_batches] = gradient_mean_square(model, data, on, train_batches)
        known = [r["static_loss"] for r in saved if r["options"]["split"] == split]  # independent of the options
        static = known[0] if known else evaluate(model, data, split, on)
        dynamic = dynamic_evaluate(model, data, split, on, lr, decay, rule, segment_length, eps, train_batches,
                                   mean_square=loaded["mean_square"].get(train_batches))
        return {**loss_metrics("static", static, data.unit), **loss_metrics("dynamic", dynamic, data.unit)}

    return cached(folder, "dynamic_eval", options, compute)


def tune_and_test(folder, lr_grid, **options):
    """Krause's protocol: pick the learning rate with the lowest dynamic loss on the validation split,
    then evaluate the test split once with it. Returns {"lr", "valid", "test"} (each a result dict),
    also saved as the run's chosen `dynamic_eval` file."""
    loaded = {}
    valid = {lr: evaluate_run(folder, "valid", lr=lr, loaded=loaded, **options) for lr in lr_grid}
    # a diverged learning rate's loss is non-finite (null once read back from JSON)
    finite = {lr: r for lr, r in valid.items() if r["dynamic_loss"] is not None and math.isfinite(r["dynamic_loss"])}
    if not finite:
        raise FloatingPointError(f"dynamic evaluation diverged for every lr in {lr_grid}; try smaller ones")
    best = min(finite, key=lambda lr: finite[lr]["dynamic_loss"])
    chosen = {"lr": best, "valid": valid[best], "test": evaluate_run(folder, "test", lr=best, loaded=loaded, **options)}
    checkpoints.save_json(chosen, checkpoints.evaluation_file(folder, "dynamic_eval", chosen=True))
    return chosen
