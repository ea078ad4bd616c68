"""Mogrifier LSTM (Melis, Kočiský & Blunsom, ICLR 2020).

Before the usual LSTM update, x (dim m) and h_{t-1} (dim n) gate each other for r rounds, starting
from x^{-1} = x, h^0 = h_{t-1}:

    odd i :  x^i = 2σ(Q^i h^{i-1} + b^i) ⊙ x^{i-2}        Q^i ∈ R^{m×n}
    even i:  h^i = 2σ(R^i x^{i-1} + b^i) ⊙ h^{i-2}        R^i ∈ R^{n×m}

The LSTM then reads the last x and h in place of x_t and h_{t-1}; c is not modulated and the state
carried on is the LSTM's new h. r = 0 is the plain LSTM. The factor 2 keeps each round near the
identity at initialisation (σ(0) = ½). As in the official code (deepmind/lamb): every round has its
own Q^i / R^i and a bias b^i (init 0); `rank=k` factorises each map as (k × in) then (out × k).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import RecurrentLayers, lstm_gates, set_forget_bias


class MogrifierLSTM(RecurrentLayers):
    """Mogrifier LSTM with `rounds` rounds, each with its own map (full rank, or `rank` k).

    Options of the official code: `cap_input_gate` (c_t = f ⊙ c_{t-1} + min(i, 1 − f) ⊙ g) and
    `forget_bias` (the effective forget bias set to this value at initialisation). Both default off,
    so that rounds=0 is exactly nn.LSTM. Per-round parameters of layer k: `mog_w{i}_l{k}` (full rank)
    or `mog_u{i}_l{k}` (k × in) and `mog_v{i}_l{k}` (out × k), and `mog_b{i}_l{k}`.
    """

    def __init__(self, input_size, hidden_size, *args, rounds=5, rank=None, mogrifier_bias=True,
                 cap_input_gate=False, forget_bias=None, **kwargs):
        if rounds < 0:
            raise ValueError(f"rounds must be >= 0, got {rounds}")
        if rank is not None and not 0 < rank < min(input_size, hidden_size):
            raise ValueError(f"rank must be in (0, min(input_size, hidden_size)), got {rank}")
        self.rounds, self.rank, self.mogrifier_bias = rounds, rank, mogrifier_bias
        self.cap_input_gate, self.forget_bias = cap_input_gate, forget_bias
        super().__init__(input_size, hidden_size, *args, **kwargs)

    def round_shape(self, i, layer_input):
        """(out, in) of round i's map: odd rounds map h → x-sized gates, even rounds x → h-sized."""
        return (layer_input, self.hidden_size) if i % 2 == 1 else (self.hidden_size, layer_input)

    def extra_parameters(self, k, layer_input):
        shapes = {}
        for i in range(1, self.rounds + 1):
            out, inp = self.round_shape(i, layer_input)
            if self.rank is None:
                shapes[f"mog_w{i}"] = (out, inp)
            else:
                shapes[f"mog_u{i}"] = (self.rank, inp)
                shapes[f"mog_v{i}"] = (out, self.rank)
            if self.mogrifier_bias:
                shapes[f"mog_b{i}"] = (out,)
        return shapes

    def reset_parameters(self):
        super().reset_parameters()
        for k in range(self.num_layers):
            for i in range(1, self.rounds + 1):
                fan_in = self.round_shape(i, self.layer_input_size(k))[1]
                if self.rank is None:  # variance 1 / fan_in, truncated at 2σ (lamb)
                    nn.init.trunc_normal_(self.layer_param(f"mog_w{i}", k), std=math.sqrt(1.0 / fan_in), a=-2, b=2)
                else:  # each factor std (1 / (fan_in · k))^¼, so the product has variance 1 / fan_in
                    std = (1.0 / (fan_in * self.rank)) ** 0.25
                    for factor in ("mog_u", "mog_v"):
                        nn.init.trunc_normal_(self.layer_param(f"{factor}{i}", k), std=std, a=-2 * std, b=2 * std)
                if self.mogrifier_bias:
                    nn.init.zeros_(self.layer_param(f"mog_b{i}", k))
            if self.forget_bias is not None:
                set_forget_bias(self, k, self.forget_bias)

    def round_map(self, k, i, source):
        """Q^i h + b^i (odd i) or R^i x + b^i (even i) for layer k."""
        bias = self.layer_param(f"mog_b{i}", k)
        if self.rank is None:
            return F.linear(source, self.layer_param(f"mog_w{i}", k), bias)
        return F.linear(F.linear(source, self.layer_param(f"mog_u{i}", k)), self.layer_param(f"mog_v{i}", k), bias)

    def mogrify(self, k, x, h):
        for i in range(1, self.rounds + 1):
            if i % 2 == 1:
                x = 2 * torch.sigmoid(self.round_map(k, i, h)) * x
            else:
                h = 2 * torch.sigmoid(self.round_map(k, i, x)) * h
        return x, h

    def layer_forward(self, k, x, h0, c0):
        # x^r depends on h_{t-1}, so W_ih x cannot be precomputed for all steps: a plain autograd loop.
        w_ih, w_hh = self.layer_param("weight_ih", k), self.layer_param("weight_hh", k)
        bias = self.layer_param("bias_ih", k) + self.layer_param("bias_hh", k) if self.bias else None
        h, c, outs = h0, c0, []
        for x_t in x.unbind(0):
            x_m, h_m = self.mogrify(k, x_t, h)
            i, f, g, o = lstm_gates(F.linear(x_m, w_ih, bias) + h_m @ w_hh.t())
            if self.cap_input_gate:
                i = torch.minimum(i, 1 - f)
            c = f * c + i * g
            h = o * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs), (h, c)


class SharedMogrifierLSTM(MogrifierLSTM):
    """The variant of the original public notebook (RMichaelSwan/MogrifierLSTM), labelled as such:
    ONE full-rank Q (`mog_q_l{k}`) and ONE R (`mog_r_l{k}`), no bias, shared by every round. It is
    not the paper's model, whose rounds each have their own maps."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, rank=None, mogrifier_bias=False, **kwargs)

    def extra_parameters(self, k, layer_input):
        return {"mog_q": self.round_shape(1, layer_input), "mog_r": self.round_shape(2, layer_input)}

    def reset_parameters(self):
        RecurrentLayers.reset_parameters(self)  # nn.LSTM's uniform init for every tensor, as the notebook

    def round_map(self, k, i, source):
        return F.linear(source, self.layer_param("mog_q" if i % 2 == 1 else "mog_r", k))
