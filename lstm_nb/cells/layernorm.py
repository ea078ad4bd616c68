"""Layer-normalised LSTM (Ba, Kiros & Hinton 2016), and its recurrent-dropout combinations.

    [i; f; g; o] = LN(W_h h_{t-1}; α1, β1) + LN(W_x x_t; α2, β2) + b
    c_t = σ(f) ⊙ c_{t-1} + σ(i) ⊙ tanh(g)
    h_t = σ(o) ⊙ tanh(LN(c_t; α3, β3))

Each projection is normalised on its own over its whole 4H vector (all gates jointly), and the cell
only on the path to h: the *raw* c_t is carried to the next step (Ba et al.'s `lnlstm_layer`).
Gains start at 1, biases at 0. `carry_normalized_cell=True` carries LN(c_t) instead — the variant of
PyTorch's custom_lstms.py and lstms.pth, labelled here because it is a different model.
`dropout_method` adds Gal, Moon or Semeniuta dropout (see `dropout.py`) with rate `recurrent_dropout`;
Gal's mask on x_t has rate `input_dropout` (by default the same rate).
"""

import torch
import torch.nn.functional as F
from torch import nn

from .. import gemm
from ..recurrence import lstm_activations_, lstm_backward_factors, recurrence
from .base import PointwiseLayers, lstm_gates
from .dropout import _check_p, gal_masks, sequence_mask, step_masks

METHODS = (None, "gal", "moon", "semeniuta")


def layer_norm_backward(d_out, x, mean, rstd, weight, bias, params=False):
    """Gradient of LN(x; weight, bias) over the last dimension w.r.t. x, or with `params` w.r.t. (weight,
    bias) summed over every leading dimension, from the mean and 1/std that `torch.native_layer_norm`
    returned: ATen's fused kernel, the one autograd calls."""
    d_x, d_weight, d_bias = torch.ops.aten.native_layer_norm_backward(
        d_out, x, x.shape[-1:], mean, rstd, weight, bias, [not params, params, params])
    return (d_weight, d_bias) if params else d_x


def _statistics(stats):
    """The (T, B, 4) saved statistics as mean_h, 1/std_h, mean_c, 1/std_c, each (T, B, 1) and contiguous,
    as ATen's LayerNorm backward reads them."""
    return [v.unsqueeze(-1).contiguous() for v in stats.unbind(-1)]


class LayerNormLSTM(PointwiseLayers):
    def __init__(self, *args, dropout_method=None, recurrent_dropout=0.25, input_dropout=None,
                 carry_normalized_cell=False, eps=1e-5, **kwargs):
        if dropout_method not in METHODS:
            raise ValueError(f"dropout_method must be one of {METHODS}, got {dropout_method!r}")
        if input_dropout is not None and dropout_method != "gal":
            raise ValueError("input_dropout is Gal's mask on x_t: it needs dropout_method='gal'")
        input_dropout = recurrent_dropout if input_dropout is None else input_dropout
        _check_p(recurrent_dropout=recurrent_dropout, input_dropout=input_dropout)
        self.dropout_method, self.recurrent_dropout, self.input_dropout = dropout_method, recurrent_dropout, input_dropout
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
        wx = gemm.linear(x, self.layer_param("weight_ih", k))
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
            c = (mask != 0) * c  # Moon: k ∈ {0, 1} on the carried memory, k / (1 − p) on h (dropout.MoonLSTM)
        c_norm = F.layer_norm(c, c.shape[-1:], c_w, c_b, self.eps)
        h = o * torch.tanh(c_norm)
        return (mask * h if self.dropout_method == "moon" and mask is not None else h), (
            c_norm if self.carry_normalized_cell else c)

    # The fused engine runs the same step with a hand-written backward (LayerNorm mixes units, so the
    # separable shortcut does not apply); `step` above is the reference the tests compare it with.
    def saved_widths(self, G, H):
        """Per step: the activations a, tanh(LN(c)), the four LayerNorm statistics (mean and 1/std of W_h h
        and of c), and with a normalised carry the raw c (the carried state is then LN(c))."""
        return [G, H, 4] + ([H] if self.carry_normalized_cell else [])

    def step_forward(self, xw, hw, c_prev, h, c, own, *masks_and_params):
        *masks, hh_w, hh_b, c_w, c_b = masks_and_params
        a, tc, stats, *raw = own
        # [i; f; g; o] = LN(W_h h) + (LN(W_x x) + b)
        ln_h, mean_h, rstd_h = torch.native_layer_norm(hw, hw.shape[-1:], hh_w, hh_b, self.eps)
        i, f, g, o = lstm_activations_(torch.add(ln_h, xw, out=a))
        c_raw = raw[0] if raw else c
        torch.mul(f, c_prev, out=c_raw)
        c_raw.addcmul_(i, masks[0] * g if self.dropout_method == "semeniuta" and masks else g)
        moon = self.dropout_method == "moon" and masks
        if moon:
            c_raw.mul_(masks[0] != 0)
        c_norm, mean_c, rstd_c = torch.native_layer_norm(c_raw, c.shape[-1:], c_w, c_b, self.eps)
        torch.tanh(c_norm, out=tc)
        torch.mul(o, tc, out=h)
        if moon:
            h.mul_(masks[0])
        torch.cat((mean_h, rstd_h, mean_c, rstd_c), 1, out=stats)
        if raw:
            c.copy_(c_norm)

    def backward_factors(self, saved, masks):
        """For all steps at once: the activations' derivatives, ∂h/∂LN(c) = o (1 − tanh²), ∂c/∂i and ∂c/∂g
        (g and i, times the Semeniuta mask), and the LayerNorm statistics as (mean, 1/std) pairs."""
        _, _, _, a, tc, stats, *_ = saved
        i, _, g, _ = a.chunk(4, -1)
        if self.dropout_method == "semeniuta" and masks:
            i, g = i * masks[0], g * masks[0]
        d_act, dh_dnorm = lstm_backward_factors(a, tc)
        if self.dropout_method == "moon" and masks:
            dh_dnorm = dh_dnorm * masks[0]  # h = k/(1 − p) ⊙ o ⊙ tanh(LN(c))
        return [d_act, dh_dnorm, g, i, *_statistics(stats)]

    def step_backward(self, dh, dc, saved, dz, *masks_and_params):
        *masks, hh_w, hh_b, c_w, c_b = masks_and_params
        hw, c_prev, c, a, tc, _, *raw, d_act, dh_dnorm, dc_di, dc_dg, mean_h, rstd_h, mean_c, rstd_c = saved
        d_norm = torch.addcmul(dc, dh, dh_dnorm) if raw else dh * dh_dnorm
        d_c = layer_norm_backward(d_norm, raw[0] if raw else c, mean_c, rstd_c, c_w, c_b)
        if not raw:
            d_c += dc
        moon = self.dropout_method == "moon" and masks
        if moon:
            d_c.mul_(masks[0] != 0)
        di, df, dg, do = dz.chunk(4, -1)
        torch.mul(d_c, dc_di, out=di)
        torch.mul(d_c, c_prev, out=df)
        torch.mul(d_c, dc_dg, out=dg)
        torch.mul(dh, tc, out=do)
        if moon:
            do.mul_(masks[0])
        dz.mul_(d_act)
        d_hw = layer_norm_backward(dz, hw, mean_h, rstd_h, hh_w, hh_b)
        return d_hw, d_c * a.chunk(4, -1)[1], (d_norm,)

    def params_backward(self, saved, kept, dz, hh_w, hh_b, c_w, c_b):
        """The LayerNorm gains' and biases' gradients, each one reduction over all T·B rows."""
        hw, _, c, _, _, stats, *raw = saved
        mean_h, rstd_h, mean_c, rstd_c = _statistics(stats)
        return [*layer_norm_backward(dz, hw, mean_h, rstd_h, hh_w, hh_b, params=True),
                *layer_norm_backward(kept[0], raw[0] if raw else c, mean_c, rstd_c, c_w, c_b, params=True)]

    def layer_forward(self, k, x, h0, c0):
        h_mask, masks, p = None, [], self.recurrent_dropout
        if self.dropout_method == "gal":
            x, h_mask = gal_masks(self, k, x, self.input_dropout, p)
        elif self.training and p and self.dropout_method in ("moon", "semeniuta"):
            masks = [(sequence_mask if self.dropout_method == "moon" else step_masks)(x, self.hidden_size, p)]
        return recurrence(self.step, self.input_projection(k, x), h0, c0, self.layer_param("weight_hh", k),
                          params=self.step_params(k), extras=masks, h_mask=h_mask, engine=self.engine, kernel=self)


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
