"""The effective forget gate of any cell, read off the cell itself, and its timescale 1/(1 − f).

Every gated cell here updates its memory affinely in the old memory, c_t = g_t ⊙ c_{t-1} + a_t, where
g_t and a_t depend on x_t and h_{t-1} only: σ(f) for an LSTM, the refined f² + 2rf(1 − f) for a
UR-LSTM, ON-LSTM's f̂ = f ω + (f̃ − ω). So one step from c_{t-1} = 1 minus one step from c_{t-1} = 0
is g_t exactly, whatever the cell; nothing is re-implemented per cell. A unit with gate f keeps a
fraction f per step, forgetting over 1/(1 − f) steps (Tallec & Ollivier 2018; Gu et al. 2020, §3).
"""

import torch


@torch.no_grad()
def effective_forget_gates(layer, inputs=None, batch=64):
    """g (steps × batch, H) of a 1-layer recurrent module with nn.LSTM's interface. With `inputs`
    (T, B, I) the gate of every step of that sequence, from the states the layer itself reaches;
    without, the gate at rest (x = 0, h = 0): what the biases alone set, `batch` identical rows."""
    if inputs is None:
        inputs = torch.zeros(1, batch, layer.input_size)
    outputs, _ = layer(inputs)
    previous = torch.cat([torch.zeros_like(outputs[:1]), outputs[:-1]])  # h_{t-1}
    steps = inputs.reshape(1, -1, inputs.shape[-1])  # every (x_t, h_{t-1}) as a one-step sequence
    h = previous.reshape(1, -1, previous.shape[-1])
    kept = layer(steps, (h, torch.ones_like(h)))[1][1]
    fresh = layer(steps, (h, torch.zeros_like(h)))[1][1]
    return (kept - fresh)[0]


def timescales(gates):
    """1 / (1 − f): how many steps a unit with forget gate f remembers."""
    return 1.0 / (1.0 - gates).clamp_min(1e-12)
