"""The language model every notebook trains: embedding → recurrent layers → decoder.

The recurrent layers come from `lstm_nb.cells` by name, so any registered cell drops in. Each layer
is its own 1-layer module so that dropout can sit between layers and the decoder can read either the
last layer or, as in the official Mogrifier code, the sum of every layer's output.
"""

import torch
import torch.nn.functional as F
from torch import nn

from . import cells


class LanguageModel(nn.Module):
    """Next-token model over a vocabulary of `vocab_size`.

    With `tie_weights` the decoder reuses the embedding matrix; the last layer's size is then the
    embedding size (as in AWD-LSTM), the others `hidden_size`. Dropouts (ordinary, fresh mask per
    step): `input_dropout` on the embeddings, `inter_layer_dropout` between layers, `dropout` on what
    the decoder reads.
    """

    def __init__(self, vocab_size, embedding_size, hidden_size, num_layers=1, cell="lstm", cell_options=None,
                 tie_weights=False, sum_layer_outputs=False, dropout=0.0, input_dropout=0.0,
                 inter_layer_dropout=0.0):
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
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        if tie_weights:
            self.decoder.weight = self.embedding.weight

    def forward(self, tokens, state=None):
        """tokens (T, B) → logits (T, B, V) and the new per-layer state list."""
        x = F.dropout(self.embedding(tokens), self.input_dropout, self.training)
        state = state or [None] * len(self.layers)
        new_state, total = [], 0
        for k, layer in enumerate(self.layers):
            if k > 0:
                x = F.dropout(x, self.inter_layer_dropout, self.training)
            x, s = layer(x, state[k])
            new_state.append(s)
            if self.sum_layer_outputs:
                total = total + x
        out = total if self.sum_layer_outputs else x
        return self.decoder(F.dropout(out, self.dropout, self.training)), new_state


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
