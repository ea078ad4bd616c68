"""The standard LSTM, written from scratch with exactly `torch.nn.LSTM`'s math.

    z   = x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh,   [i, f, g, o] = split(z)
    c_t = σ(f) ⊙ c_{t-1} + σ(i) ⊙ tanh(g)
    h_t = σ(o) ⊙ tanh(c_t)

An `nn.LSTM` state dict loads into it unchanged (same parameter names and shapes).
"""

from ..recurrence import check_engine, lstm_recurrence
from .base import RecurrentLayers


class LSTM(RecurrentLayers):
    """From-scratch multi-layer LSTM. `engine="fused"` (default) uses the hand-written backward,
    `engine="autograd"` the plain autograd loop kept as reference."""

    def __init__(self, *args, engine="fused", **kwargs):
        check_engine(engine)
        self.engine = engine
        super().__init__(*args, **kwargs)

    def layer_forward(self, k, x, h0, c0):
        xw = self.input_projection(k, x)
        return lstm_recurrence(xw, h0, c0, self.layer_param("weight_hh", k), self.engine)
