"""Monte-Carlo dropout evaluation (Gal & Ghahramani 2016; deepmind/lamb's `arithmetic` evaluation).

K full stochastic passes over the evaluation text, dropout on with every rate multiplied by
`multiplier`, the state carried within each pass. The per-token probabilities are averaged over the
passes, then the log is taken:

    loss = −mean_tokens log( (1/K) Σ_k p_k(token) )

(the arithmetic mean of probabilities, accumulated as logaddexp of log-probabilities; averaging
log-probabilities instead would give the geometric mean, a different and worse estimate).
Deterministic evaluation (`train.evaluate`, dropout off) stays the default everywhere; this is an
option, cached in the run folder like dynamic evaluation:

    result = lstm_nb.mc_dropout.tune_and_test("run/…/gal_lstm", multipliers=[0.6, 0.8, 1.0], samples=50)

Every dropout rate of the model is scaled (the language model's embedding, input, inter-layer and
output dropout, and each cell's recurrent, weight and state dropout). Zoneout cells stay in
evaluation mode: their test-time rule is the expectation of the mixture, not a sample of it.
"""

import contextlib
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import checkpoints
from .cells.dropout import ZoneoutLSTM
from .objectives import loss_metrics
from .runs import cached
from .train import load_run

RATES = ("dropout", "input_dropout", "inter_layer_dropout", "embedding_dropout", "recurrent_dropout", "weight_drop",
         "state_dropout")


@contextlib.contextmanager
def stochastic(model, multiplier):
    """`model` in training mode (dropout on) with every dropout rate × `multiplier`; restored after."""
    if multiplier < 0:
        raise ValueError(f"the dropout multiplier must be ≥ 0, got {multiplier}")
    scaled = [(module, name, getattr(module, name)) for module in model.modules()
              for name in (*RATES, *(("p",) if isinstance(module, nn.Dropout) else ()))
              if isinstance(getattr(module, name, None), float)]
    too_high = [f"{name} {rate} × {multiplier}" for _, name, rate in scaled if rate * multiplier >= 1]
    if too_high:
        raise ValueError(f"dropout rates must stay below 1: {', '.join(too_high)}")
    was_training = model.training
    try:
        for module, name, rate in scaled:
            setattr(module, name, rate * multiplier)
        model.train()
        for module in model.modules():
            if isinstance(module, ZoneoutLSTM):
                module.eval()
        yield model
    finally:
        for module, name, rate in scaled:
            setattr(module, name, rate)
        model.train(was_training)


@torch.no_grad()
def token_log_probs(model, data, split, device):
    """log p(target) of every token of `split`, in reading order, from one pass with the state carried
    (in the model's current mode: dropout on in training mode)."""
    state, out = None, []
    for x, y in data.batches(split):
        logits, state = model(x.to(device), state if data.carry_state else None)
        out.append(F.log_softmax(logits.float(), -1).gather(-1, y.to(device).unsqueeze(-1)).reshape(-1))
    return torch.cat(out).double()


def mc_evaluate(model, data, split, device, samples=50, multiplier=1.0, seed=0):
    """Mean NLL per token of `split` under MC dropout: −mean log((1/K) Σ_k p_k), K = `samples` passes.
    The passes draw from a generator seeded with `seed`; the caller's random state is left as it was."""
    total = None
    with torch.random.fork_rng(devices=[device] if torch.device(device).type == "cuda" else []):
        torch.manual_seed(seed)
        with stochastic(model, multiplier):
            for _ in range(samples):
                log_p = token_log_probs(model, data, split, device)
                total = log_p if total is None else torch.logaddexp(total, log_p)
    return -(total - math.log(samples)).mean().item()


def evaluate_run(folder, split="test", samples=50, multiplier=1.0, seed=0, device="auto", loaded=None):
    """MC-dropout evaluation of a finished run's best model on `split`, kept in `<folder>/mc_dropout.json`
    with its options and read back from there when asked again. `loaded`: as for `train.load_run`."""
    options = {"split": split, "samples": samples, "multiplier": multiplier, "seed": seed}

    def compute(_saved):
        data, model, on = load_run(folder, device, loaded)
        return loss_metrics("mc", mc_evaluate(model, data, split, on, samples, multiplier, seed), data.unit)

    return cached(folder, "mc_dropout.json", options, compute)


def tune_and_test(folder, multipliers, samples=50, seed=0, device="auto"):
    """lamb's protocol: the multiplier with the lowest MC loss on validation, then the test split once
    with it. Returns {"multiplier", "valid", "test"}, also saved as `<folder>/mc_dropout_chosen.json`."""
    loaded = {}
    valid = {m: evaluate_run(folder, "valid", samples, m, seed, device, loaded) for m in multipliers}
    best = min(valid, key=lambda m: valid[m]["mc_loss"])
    test = evaluate_run(folder, "test", samples, best, seed, device, loaded)
    chosen = {"multiplier": best, "valid": valid[best], "test": test}
    checkpoints.save_json(chosen, Path(folder) / "mc_dropout_chosen.json")
    return chosen
