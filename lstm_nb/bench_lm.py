"""A whole training epoch of a word-level language model, ours against the one a user would write:
`python -m lstm_nb.bench --lm [--fraction 0.02] [--sizes 200 650] [--repeats 3] [--gemm torch onednn]`

On the head (`--fraction`) of PTB's training split, batch 20, BPTT 35, every model trains one epoch
the way pytorch/examples' word_language_model does (forward, cross-entropy, backward, gradient-norm
clip 0.25, SGD step, the state carried over windows), all models interleaved round after round in one
process, the best round counting. At each size (2 tied layers, embedding = hidden = size, dropout 0.2):

  plain PyTorch LM         the peer: nn.Embedding → nn.LSTM → nn.Linear sharing the embedding, as
                           pytorch/examples writes it
  LanguageModel(lstm)      ours, with the from-scratch `lstm` cell
  LanguageModel(nn.LSTM)   ours, with nn.LSTM inside

and, at the size of the Mogrifier notebook's `cpu` PTB models, those two models as the preset builds
them. Ratios are to the plain LM; memory is what autograd keeps for one batch's backward (plus the CUDA
peak on a GPU). `--gemm` times our models under each listed matrix-product backend (lstm_nb.gemm); the
plain LM always runs torch's own products.
"""

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from . import data, gemm, models, presets
from .config import make_config
from .timing import interleaved, saved_bytes

PLAIN = "plain PyTorch LM"


class PlainLanguageModel(nn.Module):
    """pytorch/examples word_language_model's RNNModel("LSTM", tied): the code a user would write."""

    def __init__(self, vocab_size, size, num_layers=2, dropout=0.2):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(vocab_size, size)
        self.rnn = nn.LSTM(size, size, num_layers, dropout=dropout)
        self.decoder = nn.Linear(size, vocab_size)
        self.decoder.weight = self.encoder.weight

    def forward(self, tokens, state=None):
        out, state = self.rnn(self.drop(self.encoder(tokens)), state)
        return self.decoder(self.drop(out)), state


def contenders(vocab_size, size):
    """{name: model}: the plain LM and ours with `lstm` and with nn.LSTM, 2 tied layers of `size`."""
    ours = {"num_layers": 2, "tie_weights": True, "dropout": 0.2, "input_dropout": 0.2, "inter_layer_dropout": 0.2}
    return {PLAIN: PlainLanguageModel(vocab_size, size),
            "LanguageModel(lstm)": models.LanguageModel(vocab_size, size, size, cell="lstm", **ours),
            "LanguageModel(nn.LSTM)": models.LanguageModel(vocab_size, size, size, cell="nn.LSTM", **ours)}


def notebook_models(vocab_size):
    """The Mogrifier notebook's `cpu` PTB models, {name: model}, and their LSTM's hidden size."""
    built = {f"notebook cpu: {name}": models.build(vocab_size, **make_config(cfg)["model"])
             for name, cfg in presets.get("mogrifier", "cpu")["ptb"].items()}
    return built, built["notebook cpu: lstm"].layers[0].hidden_size


def loss_of(model, x, y, state):
    logits, state = model(x, state)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)), state


def train_epoch(model, optimizer, windows, clip=0.25):
    """pytorch/examples' train(): per window, forward from the detached state, cross-entropy, backward,
    clip, step; the loss read back as a number each step, as its logging does."""
    model.train()
    state = None
    for x, y in windows:
        loss, state = loss_of(model, x, y, models.detach_state(state))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        loss.item()


def bench_size(built, size, windows, backends, repeats, device):
    """Rows for the models `built` ({name: model}) at one size, each of ours under every backend."""
    built = {name: model.to(device) for name, model in built.items()}
    runs = [(PLAIN, None)] + [(name, b) for name in built if name != PLAIN for b in backends]  # plain: torch's own
    optimizers = {name: torch.optim.SGD(model.parameters(), lr=20.0) for name, model in built.items()}
    memory = {}
    x, y = windows[0]
    for name, backend in runs:
        with gemm.using(backend):
            _, memory[name, backend] = saved_bytes(lambda m=built[name]: loss_of(m, x, y, None)[0])
            train_epoch(built[name], optimizers[name], windows[:2])  # warm-up
    epochs = {(name, backend): (backend, partial(train_epoch, built[name], optimizers[name], windows))
              for name, backend in runs}
    times, cuda_peak = interleaved(epochs, repeats, device)
    plain = min(times[PLAIN, None])
    rows = []
    for name, backend in runs:
        best = min(times[name, backend])
        rows.append({"model": name, "size": size, "gemm": backend or "-", "s_per_epoch": best,
                     "ms_per_step": 1e3 * best / len(windows), "vs_plain": best / plain,
                     "parameters": models.count_parameters(built[name]), "saved_MB": memory[name, backend] / 2**20,
                     **({"cuda_peak_MB": cuda_peak[name, backend]} if cuda_peak else {})})
    return rows


def run(sizes, fraction, repeats, backends, device, print_table=True):
    """Every size's rows, each size's printed as a table as it finishes unless `print_table` is False."""
    batches = data.build("ptb", batch_size=20, bptt=35, train_fraction=fraction)
    windows = [(x.to(device), y.to(device)) for x, y in batches.batches("train", 1)]
    vocab_size = batches.model_inputs["vocab_size"]
    notebook, notebook_size = notebook_models(vocab_size)
    rows = []
    for size in sizes:
        torch.manual_seed(0)
        built = {**contenders(vocab_size, size), **(notebook if size == notebook_size else {})}
        size_rows = bench_size(built, size, windows, backends, repeats, device)
        rows += size_rows
        if print_table:
            print(f"word-level LM on the head of PTB ({fraction:g} of it: {len(windows)} windows of 35 x 20), "
                  f"2 tied layers of {size}, on {device}, {torch.get_num_threads()} threads, best of {repeats}")
            print(f"  {'model':32s} {'gemm':7s} {'params':>10s} {'s/epoch':>8s} {'ms/step':>8s} {'× plain':>8s} "
                  f"{'saved MB':>9s}")
            for r in size_rows:
                print(f"  {r['model']:32s} {r['gemm']:7s} {r['parameters']:10,d} {r['s_per_epoch']:8.2f} "
                      f"{r['ms_per_step']:8.1f} {r['vs_plain']:8.2f} {r['saved_MB']:9.1f}", flush=True)
    return rows


def bench_workers(fraction=0.05, runs=2):
    """Throughput of `runs` independent small trainings (2 x 200 tied LM, one epoch on the head of PTB,
    seeds 1..runs) trained one after another in this process against the same runs with 2 workers
    (`lstm_nb.workers`), each in a fresh temporary run/: {"sequential_s", "workers_s", "speed_up"}."""
    import tempfile
    import time

    from . import train

    base = make_config(presets.get("mogrifier", "cpu")["anchor"])
    base.update(experiment="bench-workers", epochs=1, data={**base["data"], "fraction": fraction})
    configs = {f"lm-seed{s}": {**base, "model_name": f"lm-seed{s}", "seed": s} for s in range(1, runs + 1)}
    seconds = {}
    for how, workers in (("sequential_s", 1), ("workers_s", 2)):
        with tempfile.TemporaryDirectory() as root:
            start = time.perf_counter()
            train.train_each(configs, run_root=root, workers=workers)
            seconds[how] = time.perf_counter() - start
    return {**seconds, "speed_up": seconds["sequential_s"] / seconds["workers_s"]}
