"""Mogrifier LSTM (Melis, Kočiský & Blunsom, ICLR 2020).

Before the usual LSTM update, x (dim m) and h_{t-1} (dim n) gate each other for r rounds, starting
from x^{-1} = x, h^0 = h_{t-1}:

    odd i :  x^i = 2σ(Q^i h^{i-1} + b^i) ⊙ x^{i-2}        Q^i ∈ R^{m×n}
    even i:  h^i = 2σ(R^i x^{i-1} + b^i) ⊙ h^{i-2}        R^i ∈ R^{n×m}

The LSTM then reads the last x and h in place of x_t and h_{t-1}; c is not modulated and the state
carried on is the LSTM's new h. r = 0 is the plain LSTM (run by the LSTM's own loop). The factor 2
keeps each round near the identity at initialisation (σ(0) = ½). As in the official code (deepmind/lamb): every round has its
own Q^i / R^i and a bias b^i (init 0); `rank=k` factorises each map as (k × in) then (out × k).

Speed: x^r depends on h_{t-1}, so W_ih x cannot be computed for all steps at once as in the LSTM.
`_MogrifierFunction` still keeps only the data-path GEMMs inside the loop; its hand-written backward
computes every weight gradient (W_ih, W_hh, each Q^i / R^i) as one GEMM over all T·B rows.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import gemm
from ..recurrence import (
    check_engine,
    lstm_backward_factors,
    lstm_recurrence,
    lstm_step_backward,
    lstm_step_forward,
    step_views,
)
from .base import RecurrentLayers, lstm_gates, set_forget_bias
from .dropout import dropout_mask


def _round_tensors(i, xs, hs):
    """(source, previous, new) sequences of round i: odd rounds gate x by h, even rounds h by x.
    xs = [x^{-1}, x^1, x^3, ...], hs = [h^0, h^2, h^4, ...], each (T, B, ·)."""
    j = i // 2
    return (hs[j], xs[j], xs[j + 1]) if i % 2 == 1 else (xs[j], hs[j - 1], hs[j])


class _MogrifierFunction(torch.autograd.Function):
    """One Mogrifier layer over a sequence. `maps[i]` = (weights, bias) of round i + 1, weights being
    (W,) or, low rank, (U, V) with a = (src Uᵀ) Vᵀ + b; `layout` tells how `flat` splits into them.

    The last x and the last h of the rounds are written side by side into one (T, B, I + H) buffer, so
    the gates are one GEMM with [W_ih | W_hh] per step, and so is their backward."""

    @staticmethod
    def forward(ctx, layout, cap_input_gate, x, h0, c0, h_mask, w_ih, w_hh, bias, *flat):
        maps = _unflatten(layout, flat)
        T, B, I = x.shape
        H, r = h0.shape[1], len(maps)
        nx, nh = 1 + (r + 1) // 2, 1 + r // 2
        xh = x.new_empty(T, B, I + H)  # [x^r, h^r] that the gates read
        xs = [x] + [x.new_empty(T, B, I) for _ in range(nx - 2)] + [xh[..., :I]] if nx > 1 else [xh[..., :I]]
        hm = [x.new_empty(T, B, H) for _ in range(nh - 1)] + [xh[..., I:]]
        if nx == 1:  # no x rounds: the gates read x itself
            xs[0].copy_(x)
        hs = x.new_empty(T + 1, B, H)  # h_t, the layer's outputs
        hs[0] = h0
        gates = [x.new_empty(T, B, I if i % 2 == 1 else H) for i in range(1, r + 1)]  # 2σ(a^i)
        mids = [x.new_empty(T, B, ws[0].shape[0]) if len(ws) == 2 else None for ws, _ in maps]
        acts = x.new_empty(T, B, 4 * H)
        cs, tcs = x.new_empty(T + 1, B, H), x.new_empty(T, B, H)
        cs[0] = c0
        w_cat = torch.cat([w_ih, w_hh], 1)
        maps_t = [(tuple(gemm.Reused(w.t(), B) for w in ws), b) for ws, b in maps]
        # Every per-step view is made once here (indexing inside the loop costs more than the small ops).
        rounds = [(*step_views(*_round_tensors(i, xs, hm), gates[i - 1], mids[i - 1]), ws_t, b)
                  for i, (ws_t, b) in enumerate(maps_t, start=1)]
        w_cat_t = gemm.Reused(w_cat.t(), B)
        steps = zip(*step_views(hs[:T], hm[0], xh, acts, cs[:T], cs[1:], tcs, hs[1:]))
        for t, (h_prev, h0_t, xh_t, a, c_prev, c, tc, h) in enumerate(steps):
            if h_mask is None:
                h0_t.copy_(h_prev)
            else:  # h^0 = h_{t-1} ⊙ the state-dropout mask
                torch.mul(h_prev, h_mask, out=h0_t)
            for src, prev, new, s, mid, ws_t, b in rounds:
                src = src[t] if mid is None else ws_t[0].mm(src[t], out=mid[t])
                _linear(src, ws_t[-1], b, out=s[t])
                s[t].sigmoid_().mul_(2)  # 2σ(a^i)
                torch.mul(s[t], prev[t], out=new[t])
            _linear(xh_t, w_cat_t, bias, out=a)
            lstm_step_forward(a, c_prev, c, tc, h, cap_input_gate)
        ctx.layout, ctx.cap_input_gate, ctx.counts = layout, cap_input_gate, (nx, nh)
        ctx.save_for_backward(acts, hs, cs, tcs, h_mask, w_cat, bias, xh, *xs, *hm, *gates,
                              *(m for m in mids if m is not None), *flat)
        return hs[1:], hs[T].clone(), cs[T].clone()

    @staticmethod
    def backward(ctx, d_out, d_hT, d_cT):
        acts, hs, cs, tcs, h_mask, w_cat, bias, xh, *rest = ctx.saved_tensors
        nx, nh = ctx.counts
        r = len(ctx.layout)
        xs, hm, gates, rest = rest[:nx], rest[nx:nx + nh], rest[nx + nh:nx + nh + r], rest[nx + nh + r:]
        n_mids = sum(n == 2 for n, _ in ctx.layout)
        mids_iter, flat = iter(rest[:n_mids]), rest[n_mids:]
        mids = [next(mids_iter) if n == 2 else None for n, _ in ctx.layout]
        maps = _unflatten(ctx.layout, flat)
        T, B, I = xs[0].shape
        dh = d_hT if d_hT is not None else torch.zeros_like(hs[0])
        dc = d_cT if d_cT is not None else torch.zeros_like(cs[0])
        dz, dx = torch.empty_like(acts), torch.empty(T, B, I, dtype=acts.dtype, device=acts.device)
        # new = s ⊙ prev with s = 2σ(a), so ∂new/∂a = prev ⊙ s (1 − s/2): known for every step before the
        # loop, which then only multiplies it by the incoming gradient (in place: d_gates becomes dL/da).
        d_gates = [torch.addcmul(s, s, s, value=-0.5).mul_(_round_tensors(i, xs, hm)[1])
                   for i, s in enumerate(gates, start=1)]
        rounds = [(i % 2 == 1, *step_views(gates[i - 1], d_gates[i - 1]), tuple(gemm.Reused(w, B) for w in maps[i - 1][0]))
                  for i in range(r, 0, -1)]
        w_cat_back = gemm.Reused(w_cat, B)
        d_out = d_out.unbind(0) if d_out is not None else None
        steps = zip(*step_views(acts, *lstm_backward_factors(acts, tcs), cs, tcs, dz, dx))
        for t, (a, d_act, dh_dc, c_prev, tc, dz_t, dx_t) in reversed(list(enumerate(steps))):
            if d_out is not None:
                dh = dh + d_out[t]
            dc = lstm_step_backward(a, d_act, dh_dc, c_prev, tc, dh, dc, dz_t, ctx.cap_input_gate)
            g_xh = w_cat_back.mm(dz_t)
            gx, gh = g_xh[:, :I], g_xh[:, I:]  # gradients of the last x and the last h
            for odd, s, da, ws in rounds:
                g_new, g_other = (gx, gh) if odd else (gh, gx)
                da = da[t].mul_(g_new)
                # the source's gradient gains da · map
                g_other = ws[0].addmm(g_other, da if len(ws) == 1 else ws[1].mm(da))
                g_new = g_new * s[t]
                gx, gh = (g_new, g_other) if odd else (g_other, g_new)
            dx_t.copy_(gx)
            dh = gh if h_mask is None else gh * h_mask
        rows = _time_batch_rows
        d_z = rows(dz)
        d_w_cat = gemm.mm(d_z.t(), rows(xh))
        grads = [d_w_cat[:, :I], d_w_cat[:, I:], None if bias is None else d_z.sum(0)]
        for i, ((ws, b), d_a) in enumerate(zip(maps, d_gates), start=1):
            d_a, src = rows(d_a), rows(_round_tensors(i, xs, hm)[0])
            if len(ws) == 1:
                grads.append(gemm.mm(d_a.t(), src))
            else:  # a = (src Uᵀ) Vᵀ: dU = (da V)ᵀ src, dV = daᵀ (src Uᵀ)
                grads += [gemm.mm(gemm.mm(d_a, ws[1]).t(), src), gemm.mm(d_a.t(), rows(mids[i - 1]))]
            if b is not None:
                grads.append(d_a.sum(0))
        return (None, None, dx, dh, dc, None, *grads)


def _time_batch_rows(v):
    """(T, B, F) → (T·B, F): every step's rows in one matrix, for the batched weight gradients."""
    return v.reshape(-1, v.shape[-1])


def _linear(src, weight_t, bias, out):
    """out = src Wᵀ + b, written in place, from Wᵀ (a `gemm.Reused`)."""
    if bias is None:
        return weight_t.mm(src, out=out)
    return weight_t.addmm(bias, src, out=out)


def _unflatten(layout, flat):
    """[(weights, bias)] per round from the flat tensor list; layout[i] = (number of weights, has bias)."""
    maps, it = [], iter(flat)
    for n, has_bias in layout:
        ws = tuple(next(it) for _ in range(n))
        maps.append((ws, next(it) if has_bias else None))
    return maps


class MogrifierLSTM(RecurrentLayers):
    """Mogrifier LSTM with `rounds` rounds, each with its own map (full rank, or `rank` k).

    Options of the official code: `cap_input_gate` (c_t = f ⊙ c_{t-1} + min(i, 1 − f) ⊙ g),
    `forget_bias` (the effective forget bias set to this value at initialisation) and `state_dropout`
    (one mask per sequence and example on h_{t-1}, applied before the rounds, Gal-style). All default
    off, so that rounds=0 is exactly nn.LSTM. Per-round parameters of layer k: `mog_w{i}_l{k}` (full
    rank) or `mog_u{i}_l{k}` (k × in) and `mog_v{i}_l{k}` (out × k), and `mog_b{i}_l{k}`.
    `engine="fused"` (default) runs the hand-written backward, `"autograd"` the reference loop.
    """

    def __init__(self, input_size, hidden_size, *args, rounds=5, rank=None, mogrifier_bias=True,
                 cap_input_gate=False, forget_bias=None, state_dropout=0.0, engine="fused", **kwargs):
        if rounds < 0:
            raise ValueError(f"rounds must be >= 0, got {rounds}")
        if rank is not None and not 0 < rank < min(input_size, hidden_size):
            raise ValueError(f"rank must be in (0, min(input_size, hidden_size)), got {rank}")
        if not 0.0 <= state_dropout < 1.0:
            raise ValueError(f"state_dropout must be in [0, 1), got {state_dropout}")
        check_engine(engine)
        self.rounds, self.rank, self.mogrifier_bias = rounds, rank, mogrifier_bias
        self.cap_input_gate, self.forget_bias = cap_input_gate, forget_bias
        self.state_dropout, self.engine = state_dropout, engine
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
        for k in self.layer_keys():
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

    def round_weights(self, k, i):
        """Round i's map of layer k: (weights, bias), weights (W,) or low rank (U, V)."""
        names = ("mog_w",) if self.rank is None else ("mog_u", "mog_v")
        return tuple(self.layer_param(f"{n}{i}", k) for n in names), self.layer_param(f"mog_b{i}", k)

    def layer_forward(self, k, x, h0, c0):
        w_ih, w_hh = self.layer_param("weight_ih", k), self.layer_param("weight_hh", k)
        bias = self.layer_param("bias_ih", k) + self.layer_param("bias_hh", k) if self.bias else None
        maps = [self.round_weights(k, i) for i in range(1, self.rounds + 1)]
        h_mask = None
        if self.training and self.state_dropout:
            h_mask = dropout_mask((x.shape[1], self.hidden_size), self.state_dropout, x)
        if self.engine == "fused" and not maps:
            # No rounds: the gates read x itself, so x W_ihᵀ is one product over all steps before the
            # loop, and the LSTM's own loop runs (with the cap and the state-dropout mask).
            xw = gemm.linear(x, w_ih, bias)
            return lstm_recurrence(xw, h0, c0, w_hh, "fused", h_mask, self.cap_input_gate)
        if self.engine == "fused":
            layout = tuple((len(ws), b is not None) for ws, b in maps)
            flat = [p for ws, b in maps for p in (*ws, *([] if b is None else [b]))]
            out, h, c = _MogrifierFunction.apply(layout, self.cap_input_gate, x, h0, c0, h_mask,
                                                 w_ih, w_hh, bias, *flat)
            return out, (h, c)
        h, c, outs = h0, c0, []
        for x_t in x.unbind(0):
            h_m = h if h_mask is None else h * h_mask
            for i, (ws, b) in enumerate(maps, start=1):
                src = h_m if i % 2 == 1 else x_t
                for w in ws[:-1]:
                    src = F.linear(src, w)
                gate = 2 * torch.sigmoid(F.linear(src, ws[-1], b))
                if i % 2 == 1:  # x^i = 2σ(Q^i h^{i-1} + b^i) ⊙ x^{i-2}
                    x_t = gate * x_t
                else:  # h^i = 2σ(R^i x^{i-1} + b^i) ⊙ h^{i-2}
                    h_m = gate * h_m
            i, f, g, o = lstm_gates(F.linear(x_t, w_ih, bias) + h_m @ w_hh.t())
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

    def round_weights(self, k, i):
        return (self.layer_param("mog_q" if i % 2 == 1 else "mog_r", k),), None
