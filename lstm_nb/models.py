"""The models the notebooks train: the language model (embedding → recurrent layers → decoder), its
Transformer baseline, and the sequence model of the long-memory and pixel tasks.

The recurrent layers come from `lstm_nb.cells` by name, so any registered cell drops in. Each layer
of the language model is its own 1-layer module so that dropout can sit between layers and the
decoder can read either the last layer or, as in the official Mogrifier code, the sum of every
layer's output.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import cells, gemm
from .cells.dropout import embedding_dropout, locked_dropout


class LanguageModel(nn.Module):
    """Next-token model over a vocabulary of `vocab_size`.

    With `tie_weights` the decoder reuses the embedding matrix; the last layer's size is then the
    embedding size (as in AWD-LSTM), the others `hidden_size`. Dropouts: `embedding_dropout` drops
    whole word types; `input_dropout` on the embeddings, `inter_layer_dropout` between layers and
    `dropout` on what the decoder reads are ordinary (a fresh mask per step), or locked (one mask per
    sequence, AWD-LSTM's variational dropout) with `locked_dropout=True`. `init_range` r, when given,
    draws every parameter from U(−r, r), as Zaremba et al.'s main.lua does (r = 0.1); otherwise the
    embedding is U(−0.1, 0.1), the decoder bias 0 and each cell keeps its own initialisation.
    """

    def __init__(self, vocab_size, embedding_size, hidden_size, num_layers=1, cell="lstm", cell_options=None,
                 tie_weights=False, sum_layer_outputs=False, dropout=0.0, input_dropout=0.0,
                 inter_layer_dropout=0.0, embedding_dropout=0.0, locked_dropout=False, init_range=None):
        super().__init__()
        sizes = [hidden_size] * num_layers
        if tie_weights:
            sizes[-1] = embedding_size
        if sum_layer_outputs and len(set(sizes)) > 1:
            raise ValueError(f"sum_layer_outputs needs equal layer sizes, got {sizes}")
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        inputs = [embedding_size] + sizes[:-1]
        self.layers = nn.ModuleList(
            cells.build(cell, i, h, **(cell_options or {})) for i, h in zip(inputs, sizes)
        )
        self.decoder = nn.Linear(sizes[-1], vocab_size)
        self.sum_layer_outputs = sum_layer_outputs
        self.dropout, self.input_dropout, self.inter_layer_dropout = dropout, input_dropout, inter_layer_dropout
        self.embedding_dropout, self.locked_dropout = embedding_dropout, locked_dropout
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        if tie_weights:
            self.decoder.weight = self.embedding.weight
        if init_range is not None:
            for p in self.parameters():
                nn.init.uniform_(p, -init_range, init_range)

    def forward(self, tokens, state=None, return_outputs=False):
        """tokens (T, B) → logits (T, B, V) and the new per-layer state list; with `return_outputs`,
        also what the decoder reads before and after its dropout (AR and TAR act on them)."""
        x = embedding_dropout(self.embedding.weight, tokens, self.embedding_dropout, self.training)
        x = self.drop(x, self.input_dropout)
        state = state or [None] * len(self.layers)
        new_state, total = [], 0
        for k, layer in enumerate(self.layers):
            if k > 0:
                x = self.drop(x, self.inter_layer_dropout)
            if torch.is_autocast_enabled(x.device.type):  # mixed precision: the recurrence stays float32
                with torch.autocast(x.device.type, enabled=False):
                    x, s = layer(x.float(), state[k])
            else:
                x, s = layer(x, state[k])
            new_state.append(s)
            if self.sum_layer_outputs:
                total = total + x
        out = total if self.sum_layer_outputs else x
        dropped = self.drop(out, self.dropout)
        logits = gemm.linear(dropped, self.decoder.weight, self.decoder.bias)
        if return_outputs:
            return logits, new_state, out, dropped
        return logits, new_state

    def drop(self, x, p):
        if self.locked_dropout:
            return locked_dropout(x, p, self.training)
        return F.dropout(x, p, self.training)


class TransformerLanguageModel(nn.Module):
    """Causal Transformer-encoder language model, the baseline the PTB/WikiText-2 Mogrifier repository
    compares against: embedding × √d + sinusoidal positions → causal encoder layers → decoder tied to
    the embedding. It carries no state across BPTT windows (each window is read on its own)."""

    def __init__(self, vocab_size, embedding_size, hidden_size, num_layers=2, num_heads=2, dropout=0.1,
                 max_length=1024):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        position = torch.arange(max_length).unsqueeze(1)
        freq = torch.exp(torch.arange(0, embedding_size, 2) * (-math.log(10000.0) / embedding_size))
        pe = torch.zeros(max_length, 1, embedding_size)
        pe[:, 0, 0::2], pe[:, 0, 1::2] = torch.sin(position * freq), torch.cos(position * freq)
        self.register_buffer("positions", pe, persistent=False)
        layer = nn.TransformerEncoderLayer(embedding_size, num_heads, hidden_size, dropout)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.dropout = nn.Dropout(dropout)
        self.decoder = nn.Linear(embedding_size, vocab_size)
        self.decoder.weight = self.embedding.weight
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, tokens, state=None):
        T = tokens.shape[0]
        x = self.embedding(tokens) * math.sqrt(self.embedding.embedding_dim) + self.positions[:T]
        mask = nn.Transformer.generate_square_subsequent_mask(T, device=tokens.device)
        return self.decoder(self.encoder(self.dropout(x), mask=mask, is_causal=True)), None


class SequenceModel(nn.Module):
    """A sequence task's model: recurrent layers of any registered cell, then a linear head on the last
    layer's output at the last step (one class or value per sequence: pixel MNIST, adding) or, with
    `per_step`, at every step (copy). With `one_hot` the inputs are symbol ids, fed one-hot."""

    def __init__(self, input_size, output_size, hidden_size, num_layers=1, cell="lstm", cell_options=None,
                 per_step=False, one_hot=False):
        super().__init__()
        self.input_size, self.per_step, self.one_hot = input_size, per_step, one_hot
        self.rnn = cells.build(cell, input_size, hidden_size, num_layers=num_layers, **(cell_options or {}))
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, inputs, state=None):
        """inputs (T, B, input_size), or (T, B) symbol ids with `one_hot` → outputs (T, B, O) with
        `per_step`, else (B, O); and the recurrent layers' final state."""
        x = F.one_hot(inputs, self.input_size).float() if self.one_hot else inputs
        out, state = self.rnn(x, state)
        last = out if self.per_step else out[-1]
        return gemm.linear(last, self.head.weight, self.head.bias), state


def build_sequence_model(input_size, output_size, per_step=False, one_hot=False, architecture="rnn", **options):
    """The SequenceModel of a sequence task (sizes from its data, `data.SequenceBatches.model_inputs`)
    and a config's `model` section."""
    if architecture != "rnn":
        raise ValueError(f"a sequence task trains a recurrent model (architecture 'rnn'), not {architecture!r}")
    try:
        return SequenceModel(input_size, output_size, per_step=per_step, one_hot=one_hot, **options)
    except TypeError as e:
        raise ValueError(f"bad option for the sequence model: {e}") from e


def build(vocab_size, architecture="rnn", parameter_budget=None, **options):
    """The language model of a config's `model` section: `architecture` "rnn" or "transformer".

    With `parameter_budget` (the official Mogrifier code's `num_params`), the hidden size is not given
    but chosen: the largest H whose model, with embedding size = hidden size = H, has at most that
    many parameters. Models compared at one budget are then the same size, whatever their cell.
    """
    classes = {"rnn": LanguageModel, "transformer": TransformerLanguageModel}
    if architecture not in classes:
        raise ValueError(f"unknown architecture {architecture!r}; use 'rnn' or 'transformer'")
    if parameter_budget is not None:
        options = {**options, **size_for_budget(classes[architecture], vocab_size, parameter_budget, options)}
    try:
        return classes[architecture](vocab_size, **options)
    except TypeError as e:
        raise ValueError(f"bad option for the {architecture} language model: {e}") from e


def size_for_budget(model_class, vocab_size, budget, options):
    """{"embedding_size": H, "hidden_size": H} for the largest H fitting `budget` parameters."""
    if "hidden_size" in options or "embedding_size" in options:
        raise ValueError("give either parameter_budget or hidden_size/embedding_size, not both")

    def size(h):  # a size too small to build (e.g. below a Mogrifier's rank) counts as fitting
        try:
            with torch.device("meta"):  # shapes only: no memory, no initialisation cost
                return count_parameters(model_class(vocab_size, embedding_size=h, hidden_size=h, **options))
        except ValueError:
            return 0

    low, high = 0, 1
    while size(high) <= budget:
        low, high = high, high * 2
    while high - low > 1:  # size(low) <= budget < size(high)
        mid = (low + high) // 2
        low, high = (mid, high) if size(mid) <= budget else (low, mid)
    if size(low) == 0:
        raise ValueError(f"no model with these options fits a budget of {budget} parameters")
    return {"embedding_size": low, "hidden_size": low}


def detach_state(state):
    """Cut the graph at a BPTT window boundary, keeping the values."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.detach()
    return type(state)(detach_state(s) for s in state)


def count_parameters(model):
    """Trainable parameters, each shared tensor (tied weights) counted once."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters() if p.requires_grad}.values())


def from_config(cfg, model_inputs):
    """The model of `cfg` for its data: `model_inputs` is the data's ({"vocab_size": V} for a language
    model, input and output sizes for a sequence task)."""
    if "vocab_size" in model_inputs:
        return build(model_inputs["vocab_size"], **cfg["model"])
    return build_sequence_model(**model_inputs, **cfg["model"])
