"""Layer-normalised LSTM (Ba, Kiros & Hinton 2016), and its recurrent-dropout combinations.

    [i; f; g; o] = LN(W_h h_{t-1}; α1, β1) + LN(W_x x_t; α2, β2) + b
    c_t = σ(f) ⊙ c_{t-1} + σ(i) ⊙ tanh(g)
    h_t = σ(o) ⊙ tanh(LN(c_t; α3, β3))

Each projection is normalised on its own over its whole 4H vector (all gates jointly), and the cell
only on the path to h: the *raw* c_t is carried to the next step (Ba et al.'s `lnlstm_layer`).
Gains start at 1, biases at 0. `carry_normalized_cell=True` carries LN(c_t) instead — the variant of
PyTorch's custom_lstms.py and lstms.pth, labelled here because it is a different model.
`dropout_method` adds Gal, Moon or Semeniuta dropout (see `dropout.py`) with rate `recurrent_dropout`.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ..recurrence import recurrence
from .base import PointwiseLayers, lstm_gates
from .dropout import _check_p, gal_masks, sequence_mask, step_masks

METHODS = (None, "gal", "moon", "semeniuta")


class LayerNormLSTM(PointwiseLayers):
    def __init__(self, *args, dropout_method=None, recurrent_dropout=0.25, carry_normalized_cell=False,
                 eps=1e-5, **kwargs):
        if dropout_method not in METHODS:
            raise ValueError(f"dropout_method must be one of {METHODS}, got {dropout_method!r}")
        _check_p(recurrent_dropout=recurrent_dropout)
        self.dropout_method, self.recurrent_dropout = dropout_method, recurrent_dropout
        self.carry_normalized_cell, self.eps = carry_normalized_cell, eps
        super().__init__(*args, **kwargs)

    def extra_parameters(self, k, layer_input):
        G, H = self.gate_rows(), self.hidden_size
        return {"ln_ih_weight": (G,), "ln_ih_bias": (G,), "ln_hh_weight": (G,), "ln_hh_bias": (G,),
                "ln_c_weight": (H,), "ln_c_bias": (H,)}

    def reset_parameters(self):
        super().reset_parameters()
        for name, p in self.named_parameters():
            if name.startswith("ln_"):
                nn.init.ones_(p) if "_weight_" in name else nn.init.zeros_(p)

    def input_projection(self, k, x):
        """LN(W_x x_t) + b for all steps at once (W_x x has no bias of its own; b = b_ih + b_hh)."""
        wx = F.linear(x, self.layer_param("weight_ih", k))
        wx = F.layer_norm(wx, wx.shape[-1:], self.layer_param("ln_ih_weight", k), self.layer_param("ln_ih_bias", k),
                          self.eps)
        return wx + self.layer_param("bias_ih", k) + self.layer_param("bias_hh", k) if self.bias else wx

    def step_params(self, k):
        return [self.layer_param(n, k) for n in ("ln_hh_weight", "ln_hh_bias", "ln_c_weight", "ln_c_bias")]

    def step(self, xw, hw, h, c, *masks_and_params):
        *masks, hh_w, hh_b, c_w, c_b = masks_and_params
        mask = masks[0] if masks else None
        i, f, g, o = lstm_gates(xw + F.layer_norm(hw, hw.shape[-1:], hh_w, hh_b, self.eps))
        if self.dropout_method == "semeniuta" and mask is not None:
            g = mask * g
        c = f * c + i * g
        if self.dropout_method == "moon" and mask is not None:
            c = mask * c
        c_norm = F.layer_norm(c, c.shape[-1:], c_w, c_b, self.eps)
        return o * torch.tanh(c_norm), (c_norm if self.carry_normalized_cell else c)

    def layer_forward(self, k, x, h0, c0):
        h_mask, masks, p = None, [], self.recurrent_dropout
        if self.dropout_method == "gal":
            x, h_mask = gal_masks(self, k, x, p, p)
        elif self.training and p and self.dropout_method in ("moon", "semeniuta"):
            masks = [(sequence_mask if self.dropout_method == "moon" else step_masks)(x, self.hidden_size, p)]
        return recurrence(self.step, self.input_projection(k, x), h0, c0, self.layer_param("weight_hh", k),
                          params=self.step_params(k), extras=masks, h_mask=h_mask, engine=self.engine)


class LayerNormGalLSTM(LayerNormLSTM):
    """LayerNorm LSTM with Gal's variational masks on x and h."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, dropout_method="gal", **kwargs)


class LayerNormMoonLSTM(LayerNormLSTM):
    """LayerNorm LSTM with Moon's per-sequence cell mask."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, dropout_method="moon", **kwargs)


class LayerNormSemeniutaLSTM(LayerNormLSTM):
    """LayerNorm LSTM with Semeniuta's per-step candidate mask."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, dropout_method="semeniuta", **kwargs)
