"""seba-1511/lstms.pth, re-measured: its two benchmarks run with lstm_nb's cells, and its four known
bugs reproduced in a few lines each so that a notebook can measure what each one costs.

Its benchmarks (the repository's test_capacity.py and test_speed.py):
- `capacity`: 100 sequences of 10 steps of U(0, 1)^256 inputs, the target the sum of the sequence's
  inputs, one layer of 256 units, dropout 0.9, SGD (lr 0.01, momentum 0.9) on the smooth-L1 loss
  summed over 10 sequences, 10 epochs; the score is the mean loss over the 100 sequences.
- `inference_timings`: a single sequence of 1000 steps, each a separate call on a (1, 1, size)
  input, sizes 128 to 2048, dropout 0.5, against nn.LSTM of the same size; the speed-up is
  nn.LSTM's time over the cell's.

Its bugs (read in its code; the first is github.com/seba-1511/lstms.pth/issues/3, fixed by its pull request 4):
- `layernorm_missing`: its LayerNorm + dropout classes inherited from its plain LSTM.
- `shared_batch_mask`: one (1, H) mask for the whole batch.
- `mask_outside_autograd`: masks applied as `h.data.mul_(mask)`, which autograd never sees.
- `normalized_cell_carried`: its LayerNorm LSTM carries LN(c_t) to the next step, not c_t.
"""

import time

import torch
import torch.nn.functional as F
from torch import nn

from . import cells
from .cells.dropout import dropout_mask

# The seed's numbers: capacity errors from its README, speed-ups from its speed_results.md.
SEED_CAPACITY = {"nn.LSTM": 3.515, "SlowLSTM": 4.171, "LSTM": 4.158, "GalLSTM": 3.517, "MoonLSTM": 4.443,
                 "SemeniutaLSTM": 3.773}
SEED_SIZES = [128, 256, 512, 1024, 2048]
SEED_SPEEDUP = {  # nn.LSTM time / cell time at each of SEED_SIZES (speed_results.md)
    "SlowLSTM": [1.046, 0.692, 0.684, 1.006, 0.869], "LSTM": [1.565, 1.059, 1.168, 1.119, 0.971],
    "GalLSTM": [0.953, 1.000, 1.019, 1.015, 0.980], "MoonLSTM": [1.728, 1.118, 1.087, 1.078, 0.949],
    "SemeniutaLSTM": [1.180, 1.237, 1.169, 1.016, 1.034]}
# The seed's class → our cell, with the seed's one `dropout` rate where it puts it (Gal: on h only).
SEED_CELLS = {"nn.LSTM": "nn.LSTM", "LSTM": "lstm", "GalLSTM": "gal_lstm", "MoonLSTM": "moon_lstm",
              "SemeniutaLSTM": "semeniuta_lstm"}


def seed_options(cell, p):
    """Our cell's options for the seed's `dropout=p`."""
    return {"gal_lstm": {"input_dropout": 0.0, "recurrent_dropout": p}, "moon_lstm": {"recurrent_dropout": p},
            "semeniuta_lstm": {"recurrent_dropout": p}}.get(cell, {})


def capacity(cell, dataset_size=100, length=10, size=256, dropout=0.9, epochs=10, batch=10, seed=1234):
    """The seed's capacity task with our `cell`: the mean smooth-L1 error over the dataset after
    training, read in evaluation mode (dropout off; the seed read it with dropout still on)."""
    torch.manual_seed(seed)
    layer = cells.build(cell, size, size, **seed_options(cell, dropout))
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(length, dataset_size, size)
    y = x.sum(0)
    # one random h0 and one random c0, the same for every sequence
    state = tuple(torch.rand(1, 1, size).expand(1, dataset_size, size).contiguous() for _ in "hc")

    def errors(rows):
        out = layer(x[:, rows], tuple(s[:, rows] for s in state))[0][-1]
        return F.smooth_l1_loss(out, y[rows], reduction="none").mean(-1)  # per sequence, as the seed

    for _ in range(epochs):
        for start in range(0, dataset_size, batch):
            loss = errors(slice(start, start + batch)).sum()  # the seed sums the batch's losses
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    layer.eval()
    with torch.no_grad():
        return errors(slice(None)).mean().item()


def capacity_floor(dataset_size=100, length=10, size=256, seed=1234):
    """The lowest error any output in tanh's range (−1, 1) can reach on the capacity task: the
    targets (sums of 10 uniforms, ≈ 5) lie outside it, so the best output is the clamped target."""
    torch.manual_seed(seed)
    y = torch.rand(length, dataset_size, size).sum(0)
    return F.smooth_l1_loss(y.clamp(-1, 1), y).item()


@torch.no_grad()
def inference_timings(names, sizes, steps=1000, dropout=0.5, seed=1234):
    """[{"size", "cell", "seconds", "speedup"}]: `steps` single-step calls of each cell (nn.LSTM
    included, timed once per size), each output fed back as the next input; the speed-up is nn.LSTM's
    time over the cell's, as the seed reports it."""
    rows = []
    for size in sizes:
        x0, state0 = torch.rand(1, 1, size), (torch.rand(1, 1, size), torch.rand(1, 1, size))
        seconds = {}
        for name in dict.fromkeys(["nn.LSTM", *names]):
            torch.manual_seed(seed)
            layer = cells.build(name, size, size, **seed_options(name, dropout))
            layer(x0, state0)  # warm-up
            out, state, start = x0, state0, time.perf_counter()
            for _ in range(steps):
                out, state = layer(out, state)
            seconds[name] = time.perf_counter() - start
        rows += [{"size": size, "cell": name, "seconds": t, "speedup": seconds["nn.LSTM"] / t}
                 for name, t in seconds.items()]
    return rows


def layernorm_missing(size=64, scale=10.0, seed=0):
    """What a LayerNorm LSTM that has no LayerNorm loses: invariance to the scale of its input
    projection. Returns the largest change of the output when W_ih is multiplied by `scale`, for
    `layernorm_lstm` and for the plain LSTM that the seed's LayerNorm + dropout classes really were."""
    torch.manual_seed(seed)
    x = torch.randn(20, 8, size)
    change = {}
    for name in ("layernorm_lstm", "lstm"):
        layer = cells.build(name, size, size).eval()
        with torch.no_grad():
            before = layer(x)[0]
            layer.weight_ih_l0.mul_(scale)
            change[name] = (layer(x)[0] - before).abs().max().item()
    return change


def _readout_problem(size, batch, seed):
    torch.manual_seed(seed)
    layer = nn.LSTM(size, size)
    x, readout, y = torch.randn(20, batch, size), torch.randn(size) / size**0.5, torch.randn(batch)
    return layer, x, readout, y


def shared_batch_mask(size=32, batch=32, p=0.5, draws=200, seed=0):
    """Dropout on an LSTM's output before a linear readout, with one mask per example (Gal, Moon) and
    with one mask shared by the batch (the seed's (1, H) mask), on the same model and batch. Returns,
    for each, the fraction of readout weights that get no gradient at all from the batch (mean over
    `draws` draws), and the gradient's noise: the RMS distance of a draw's gradient from their mean."""
    layer, x, readout, y = _readout_problem(size, batch, seed)
    h, readout = layer(x)[0][-1].detach(), readout.requires_grad_()
    measured = {}
    for kind, shape in (("per_example", (batch, size)), ("shared", (1, size))):
        grads = []
        for _ in range(draws):
            loss = (((h * dropout_mask(shape, p, h)) @ readout - y) ** 2).mean()
            grads.append(torch.autograd.grad(loss, readout)[0])
        grads = torch.stack(grads)
        measured[kind] = {"weights_without_gradient": (grads == 0).double().mean().item(),
                          "gradient_noise": (grads - grads.mean(0)).pow(2).sum(1).mean().sqrt().item()}
    return measured


def mask_outside_autograd(size=32, batch=16, p=0.5, seed=0):
    """How wrong the weight gradient is when the mask multiplies `h.data` (autograd never sees it)
    instead of `h`: the relative error ‖g_data − g‖ / ‖g‖ of the gradient of the LSTM's weights."""
    layer, x, readout, y = _readout_problem(size, batch, seed)
    mask = dropout_mask((batch, size), p, x)
    grads = {}
    for kind in ("autograd", "data"):
        h = layer(x)[0][-1]
        if kind == "data":
            h.data.mul_(mask)  # the forward value is masked, the backward is not
        else:
            h = h * mask
        loss = ((h @ readout - y) ** 2).mean()
        grads[kind] = torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(layer.parameters()))])
    return ((grads["data"] - grads["autograd"]).norm() / grads["autograd"].norm()).item()


def normalized_cell_carried(size=64, steps=10, seed=0):
    """A LayerNorm LSTM whose gates say "keep" (forget gate ≈ 1, input gate ≈ 0) must carry its
    memory unchanged. Returns the largest change of c after `steps` steps, carrying the raw c_t
    (Ba et al.) and carrying LN(c_t) (the seed, and PyTorch's custom_lstms.py)."""
    torch.manual_seed(seed)
    c0 = torch.randn(1, 4, size) * 3 + 2
    change = {}
    for name, carry_normalized in (("raw_c", False), ("normalized_c", True)):
        layer = cells.build("layernorm_lstm", size, size, carry_normalized_cell=carry_normalized).eval()
        with torch.no_grad():
            for weight in (layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_hh_l0):
                weight.zero_()
            layer.bias_ih_l0.copy_(torch.cat([torch.full((size,), v) for v in (-30.0, 30.0, 0.0, 0.0)]))  # i, f, g, o
            _, (_, c) = layer(torch.zeros(steps, 4, size), (torch.zeros(1, 4, size), c0))
        change[name] = (c - c0).abs().max().item()
    return change
