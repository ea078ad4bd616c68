"""Monte-Carlo dropout evaluation (Gal & Ghahramani 2016; deepmind/lamb's `arithmetic` evaluation).

K stochastic samples of the model's prediction for every token of the evaluation text, dropout on with
every rate multiplied by `multiplier`, the state carried within each sample's stream. The per-token
probabilities are averaged over the samples, then the log is taken:

    loss = −mean_tokens log( (1/K) Σ_k p_k(token) )

(the arithmetic mean of probabilities, accumulated as logaddexp of log-probabilities; averaging
log-probabilities instead would give the geometric mean, a different and worse estimate).

As Gal's script does it (yaringal/BayesianRNN): word-type (embedding) dropout is off during MC unless
`word_dropout=True`, and one pass over the text yields `columns` samples, each evaluation stream
copied into that many batch columns, each column with its own masks and its own carried state. K =
`samples` = passes × columns. `curve=True` also returns the estimate after every k samples, which shows
how the estimate depends on K (by Jensen's inequality a small K overstates the loss on average).

Deterministic evaluation (`loop.evaluate`, dropout off) stays the default everywhere; this is an
option, cached in the run folder like dynamic evaluation:

    result = lstm_nb.mc_dropout.tune_and_test("run/…/gal_lstm", multipliers=[0.6, 0.8, 1.0], samples=50)

Every dropout rate of the model is scaled (the language model's input, inter-layer and output dropout,
and each cell's recurrent, weight and state dropout; the embedding's with `word_dropout`). Zoneout
cells stay in evaluation mode: their test-time rule is the expectation of the mixture, not a sample of it.
"""

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from . import checkpoints
from .cells.dropout import ZoneoutLSTM
from .finished import load_run
from .objectives import loss_metrics
from .records import cached

RATES = ("dropout", "input_dropout", "inter_layer_dropout", "embedding_dropout", "recurrent_dropout", "weight_drop",
         "state_dropout")


@contextlib.contextmanager
def stochastic(model, multiplier, word_dropout=False):
    """`model` in training mode (dropout on) with every dropout rate × `multiplier`, and the embedding's
    word-type dropout off unless `word_dropout`; restored after."""
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
            off = name == "embedding_dropout" and not word_dropout
            setattr(module, name, 0.0 if off else rate * multiplier)
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
def token_log_probs(model, data, split, device, columns=1):
    """log p(target) of every token of `split` in reading order, (N, columns): one pass with each stream
    copied into `columns` batch columns and the state carried (in the model's current mode: with
    dropout on, each column draws its own masks, so each is one sample)."""
    state, out = None, []
    for x, y in data.batches(split):
        x, y = x.to(device).repeat_interleave(columns, 1), y.to(device).repeat_interleave(columns, 1)
        logits, state = model(x, state if data.carry_state else None)
        log_p = F.log_softmax(logits.float(), -1).gather(-1, y.unsqueeze(-1))
        out.append(log_p.reshape(-1, columns))  # (T, B·C) → (T·B, C): a token's C samples side by side
    return torch.cat(out).double()


def mc_evaluate(model, data, split, device, samples=50, multiplier=1.0, seed=0, columns=1, word_dropout=False,
                curve=False):
    """Mean NLL per token of `split` under MC dropout: −mean log((1/K) Σ_k p_k), K = `samples`, drawn as
    samples / `columns` passes of `columns` columns. The samples draw from a generator seeded with
    `seed`; the caller's random state is left as it was. With `curve`, returns (loss, {k: the loss of
    the first k samples}) for k = 1 … columns and every later multiple of `columns`."""
    if samples < 1 or columns < 1 or samples % columns:
        raise ValueError(f"samples ({samples}) must be a positive multiple of columns ({columns})")
    total, by_k = None, {}
    with torch.random.fork_rng(devices=[device] if torch.device(device).type == "cuda" else []):
        torch.manual_seed(seed)
        with stochastic(model, multiplier, word_dropout):
            for done in range(0, samples, columns):
                log_p = token_log_probs(model, data, split, device, columns)
                if total is None:
                    running = torch.logcumsumexp(log_p, 1)  # the first pass: k = 1 … columns
                    by_k.update({k + 1: _loss(running[:, k], k + 1) for k in range(columns)})
                    total = running[:, -1]
                else:
                    total = torch.logaddexp(total, torch.logsumexp(log_p, 1))
                    by_k[done + columns] = _loss(total, done + columns)
    return (by_k[samples], by_k) if curve else by_k[samples]


def _loss(log_sum, k):
    """−mean log((1/k) Σ p) from log Σ p."""
    return -(log_sum - math.log(k)).mean().item()


def evaluate_run(folder, split="test", samples=50, multiplier=1.0, seed=0, device="auto", loaded=None, columns=1,
                 word_dropout=False):
    """MC-dropout evaluation of a finished run's best model on `split`, kept in the run's `mc_dropout` evaluation file
    with its options and read back from there when asked again; `curve` holds the loss after k samples.
    `loaded`: as for `finished.load_run`."""
    options = {"split": split, "samples": samples, "multiplier": multiplier, "seed": seed, "columns": columns,
               "word_dropout": word_dropout}

    def compute(_saved):
        data, model, on = load_run(folder, device, loaded)
        loss, by_k = mc_evaluate(model, data, split, on, samples, multiplier, seed, columns, word_dropout, curve=True)
        return {**loss_metrics("mc", loss, data.unit), "curve": {str(k): v for k, v in by_k.items()}}

    return cached(folder, "mc_dropout", options, compute)


def tune_and_test(folder, multipliers, samples=50, seed=0, device="auto", columns=1, word_dropout=False):
    """lamb's protocol: the multiplier with the lowest MC loss on validation, then the test split once
    with it (a single multiplier skips the validation passes). Returns {"multiplier", "valid", "test"},
    also saved as the run's chosen `mc_dropout` file ("valid" is None when there was nothing to choose)."""
    options = {"samples": samples, "seed": seed, "device": device, "loaded": {}, "columns": columns,
               "word_dropout": word_dropout}  # `loaded`: the model is read from disk once for every split
    valid = {m: evaluate_run(folder, "valid", multiplier=m, **options) for m in multipliers} if len(multipliers) > 1 else {}
    best = min(valid, key=lambda m: valid[m]["mc_loss"]) if valid else multipliers[0]
    test = evaluate_run(folder, "test", multiplier=best, **options)
    chosen = {"multiplier": best, "valid": valid.get(best), "test": test}
    checkpoints.save_json(chosen, checkpoints.evaluation_file(folder, "mc_dropout", chosen=True))
    return chosen
