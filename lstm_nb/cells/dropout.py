"""Recurrent dropout, as each paper defines it. Masks are inverted (kept units scaled by 1/(1 − p)),
drawn per example, and multiply inside autograd, so gradients are masked where values are; in eval
mode every cell is the deterministic LSTM (zoneout: its expectation).

- Gal & Ghahramani 2016 (`GalLSTM`): one mask on x_t and one on h_{t-1} where it feeds the gates,
  per example, fixed across the sequence (the "tied" variant: one mask for all four gates); with
  `untied=True`, each gate has its own pair of masks (Gal's "untied" variant).
- Moon et al. 2015, RNNDrop (`MoonLSTM`): c_t = k ⊙ (f ⊙ c_{t-1} + i ⊙ g), k ∈ {0, 1} per sequence, the
  1/(1 − p) on the read-out h_t (so the carried memory is never rescaled).
- Semeniuta et al. 2016 (`SemeniutaLSTM`): c_t = f ⊙ c_{t-1} + i ⊙ (m_t ⊙ g), m_t fresh each step.
- Zoneout, Krueger et al. 2017 (`ZoneoutLSTM`): c_t = d^c ⊙ c_{t-1} + (1 − d^c) ⊙ c̃_t and likewise h,
  d ~ Bernoulli(z) each step; at test time d is replaced by its mean z.
- Weight drop / DropConnect, Merity et al. 2018 (`WeightDropLSTM`): W_hh dropped element-wise once per
  forward (shared by every step and sequence); the gradient reaches the raw weight.
- `locked_dropout` (between layers) and `embedding_dropout` (whole word types), for the models.

A mask is drawn once per forward call: in a language model, once per BPTT window.
"""

import torch
import torch.nn.functional as F

from ..recurrence import lstm_memory_derivatives, lstm_pointwise, lstm_recurrence, read_out_jacobian, recurrence
from .base import PointwiseLayers, lstm_gates
from .lstm import LSTM


def bernoulli(shape, prob, like):
    """0/1 draws of probability `prob`, of `shape`, on `like`'s device and dtype. Drawn as U < prob, which
    on CPU is twice as fast as `bernoulli_` (it matters for Semeniuta's and zoneout's per-step masks and
    for weight drop's W_hh); compared in place, which saves a bool tensor and its conversion."""
    return like.new_empty(shape).uniform_().lt_(prob)


def dropout_mask(shape, p, like):
    """Bernoulli(1 − p) / (1 − p) of `shape`, on `like`'s device and dtype."""
    return bernoulli(shape, 1 - p, like).div_(1 - p)


def locked_dropout(x, p, training):
    """Variational dropout on a sequence x (T, B, F): one mask per example and feature, shared by all steps."""
    if not training or p == 0:
        return x
    return x * dropout_mask((1, *x.shape[1:]), p, x)


def embedding_dropout(weight, tokens, p, training):
    """Drop whole word types: rows of the embedding matrix, one mask per forward call."""
    if training and p:
        weight = weight * dropout_mask((weight.shape[0], 1), p, weight)
    return F.embedding(tokens, weight)


def _check_p(**rates):
    for name, p in rates.items():
        if not 0.0 <= p < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {p}")


def sequence_mask(x, hidden_size, p):
    """Moon: one (B, H) mask per sequence, as a (T, B, H) view (every step sees the same mask)."""
    return dropout_mask((x.shape[1], hidden_size), p, x).expand(x.shape[0], -1, -1)


def step_masks(x, hidden_size, p):
    """Semeniuta: a fresh (B, H) mask at every step, (T, B, H)."""
    return dropout_mask((x.shape[0], x.shape[1], hidden_size), p, x)


def gal_masks(layers, k, x, input_dropout, recurrent_dropout):
    """Gal's masks for layer k: x masked per example (fixed over time), and the (B, H) mask on h."""
    if not layers.training:
        return x, None
    if input_dropout:
        x = x * dropout_mask((1, x.shape[1], x.shape[2]), input_dropout, x)
    h_mask = dropout_mask((x.shape[1], layers.hidden_size), recurrent_dropout, x) if recurrent_dropout else None
    return x, h_mask


def unit_masks(steps, batch, units, p, zoneout=0.5, seed=0):
    """For pictures: each method's mask on `units` hidden units, as (units, batch, steps) of 1 (kept)
    and 0 (dropped), drawn by the functions the cells call. Zoneout's entry is 0 where the unit is
    frozen at its previous value (d = 1), 1 where it updates."""
    torch.manual_seed(seed)
    x = torch.zeros(steps, batch, units)
    gal_h = gal_masks(LSTM(units, units), 0, x, 0.0, p)[1]  # (B, H): the mask on h_{t-1} at every step
    kept = {
        "Gal (h and x)": gal_h.expand(steps, batch, units),
        "Moon (c)": sequence_mask(x, units, p),
        "Semeniuta (g)": step_masks(x, units, p),
        "zoneout (c)": 1 - bernoulli((steps, batch, units), zoneout, x),
        "lstms.pth (Gal, Moon)": dropout_mask((1, units), p, x).expand(steps, batch, units),  # one (1, H) mask
    }
    return {name: (mask.permute(2, 1, 0) > 0).int() for name, mask in kept.items()}


class GalLSTM(LSTM):
    """Variational LSTM (Gal & Ghahramani 2016): masks on x_t and on h_{t-1} feeding the gates, per
    example, fixed over the sequence.

    Tied (the default): one mask m^x for x and one m^h for h, shared by the four gates. Untied
    (`untied=True`, the variant of Gal's best PTB rows): gate j ∈ {i, f, g, o} has its own pair,

        z_j = (x_t ⊙ m^x_j) W_ih,jᵀ + (h_{t-1} ⊙ m^h_j) W_hh,jᵀ + b_ih,j + b_hh,j

    Per-gate masks on h_{t-1} break the one product h W_hhᵀ per step that the fused engine is built
    on, so the untied variant runs on autograd: one batched product over the four gates per step.
    The mask on h_{t-1} is not nn.LSTM's math, so there is no library engine.
    """

    library = False

    def __init__(self, *args, input_dropout=0.25, recurrent_dropout=0.25, untied=False, **kwargs):
        _check_p(input_dropout=input_dropout, recurrent_dropout=recurrent_dropout)
        self.input_dropout, self.recurrent_dropout, self.untied = input_dropout, recurrent_dropout, untied
        super().__init__(*args, **kwargs)

    def layer_forward(self, k, x, h0, c0):
        if self.untied and self.training and (self.input_dropout or self.recurrent_dropout):
            return self._untied_forward(k, x, h0, c0)
        x, h_mask = gal_masks(self, k, x, self.input_dropout, self.recurrent_dropout)
        return lstm_recurrence(self.input_projection(k, x), h0, c0, self.layer_param("weight_hh", k),
                               self.engine, h_mask=h_mask)

    def _untied_forward(self, k, x, h0, c0):
        T, B, I = x.shape
        H = self.hidden_size
        # (4, B, width): gate j's mask for each example, the same at every step
        x_gates = x.unsqueeze(1).expand(T, 4, B, I)
        if self.input_dropout:
            x_gates = x_gates * dropout_mask((4, B, I), self.input_dropout, x)
        m_h = dropout_mask((4, B, H), self.recurrent_dropout, x) if self.recurrent_dropout else None
        # (x_t ⊙ m^x_j) W_ih,jᵀ for every step and gate: one batched product over the gates
        xw = torch.einsum("tgbi,ghi->tbgh", x_gates, self.layer_param("weight_ih", k).view(4, H, I))
        xw = xw.reshape(T, B, 4 * H)
        if self.bias:
            xw = xw + self.layer_param("bias_ih", k) + self.layer_param("bias_hh", k)
        w_hh = self.layer_param("weight_hh", k)
        if m_h is None:
            return lstm_recurrence(xw, h0, c0, w_hh, self.engine)
        w_hh = w_hh.view(4, H, H)
        h, c, outs = h0, c0, []
        for xw_t in xw.unbind(0):
            hw = torch.bmm(h.unsqueeze(0) * m_h, w_hh.transpose(1, 2))  # (4, B, H): (h ⊙ m^h_j) W_hh,jᵀ
            h, c = lstm_pointwise(xw_t + hw.transpose(0, 1).reshape(B, 4 * H), c)
            outs.append(h)
        return torch.stack(outs), (h, c)


class WeightDropLSTM(LSTM):
    """LSTM with DropConnect on W_hh (AWD-LSTM's weight drop): one mask per forward call."""

    def __init__(self, *args, weight_drop=0.5, **kwargs):
        _check_p(weight_drop=weight_drop)
        self.weight_drop = weight_drop
        super().__init__(*args, **kwargs)

    def recurrent_weight(self, k):
        # salesforce/awd-lstm-lm's WeightDrop: one DropConnect mask on W_hh per forward, then the kernel.
        # The mask is drawn as U < 1 - p (`dropout_mask`): on CPU F.dropout's bernoulli_ took 25 ms for a
        # 2600 x 650 W_hh, a third of the whole layer's training step (BENCHMARKS.md).
        w_hh = self.layer_param("weight_hh", k)
        if not self.training or not self.weight_drop:
            return w_hh
        return w_hh * dropout_mask(w_hh.shape, self.weight_drop, w_hh)


class MaskedLSTM(PointwiseLayers):
    """An LSTM whose step takes random masks (`masks`); without masks (eval, p = 0) it is the LSTM."""

    separable = True  # every mask acts unit by unit

    def masks(self, k, x):
        raise NotImplementedError

    def layer_forward(self, k, x, h0, c0):
        xw, w_hh = self.input_projection(k, x), self.layer_param("weight_hh", k)
        masks = self.masks(k, x)
        if not masks:
            return lstm_recurrence(xw, h0, c0, w_hh, self.engine)
        return recurrence(self.step, xw, h0, c0, w_hh, extras=masks, engine=self.engine, separable=self.separable,
                          jacobian=self.step_jacobian)



class OneMaskLSTM(MaskedLSTM):
    """An LSTM with one recurrent mask of rate `recurrent_dropout`, drawn by `draw(x, H, p)`."""

    draw = None

    def __init__(self, *args, recurrent_dropout=0.25, **kwargs):
        _check_p(recurrent_dropout=recurrent_dropout)
        self.recurrent_dropout = recurrent_dropout
        super().__init__(*args, **kwargs)

    def masks(self, k, x):
        if not (self.training and self.recurrent_dropout):
            return []
        return [type(self).draw(x, self.hidden_size, self.recurrent_dropout)]


class MoonLSTM(OneMaskLSTM):
    """RNNDrop (Moon et al. 2015): one mask per sequence on the memory cell,

        c_t = k ⊙ (σ(f) ⊙ c_{t-1} + σ(i) ⊙ tanh(g)),    h_t = σ(o) ⊙ tanh(c_t) ⊙ k / (1 − p),    k ~ Bernoulli(1 − p)

    The carried memory is masked with 0/1, as the paper's dropout (of 2015: no rescaling in training)
    masks it, so a kept unit's memory is exactly the LSTM's and nothing compounds from step to step.
    The 1/(1 − p) that makes evaluation the plain LSTM sits on the memory's read-out, once per step.
    (Scaling the carried memory itself by 1/(1 − p) would multiply a kept unit by it at every step: where
    σ(f) > 1 − p its memory grows geometrically, and training diverges.)"""

    draw = staticmethod(sequence_mask)

    def step(self, xw, hw, h, c, mask):
        i, f, g, o = lstm_gates(xw + hw)
        c = (mask != 0) * (f * c + i * g)  # k ∈ {0, 1} on the carried memory
        return mask * o * torch.tanh(c), c  # k / (1 − p) on its read-out

    def step_jacobian(self, z, c_prev, mask):
        """`step`'s derivatives per unit for the fused backward: the LSTM's, times k (memory) and the
        mask (read-out)."""
        keep = (mask != 0).to(z.dtype)
        jc, f, c_new, o, d_o = lstm_memory_derivatives(z, c_prev)
        jc, jc_c = jc * keep.repeat(1, 4), keep * f
        jh, jh_c = read_out_jacobian(jc, jc_c, keep * c_new, o, d_o, mask)
        return (jh, None, jh_c), (jc, None, jc_c)


class SemeniutaLSTM(OneMaskLSTM):
    """Recurrent dropout without memory loss (Semeniuta et al. 2016): dropout on the candidate g only,
    a fresh mask every step, so stored memory is never erased."""

    draw = staticmethod(step_masks)

    def step(self, xw, hw, h, c, mask):
        i, f, g, o = lstm_gates(xw + hw)
        c = f * c + i * (mask * g)
        return o * torch.tanh(c), c

    def step_jacobian(self, z, c_prev, mask):
        """`step`'s derivatives per unit for the fused backward: the LSTM's, the candidate masked."""
        jc, f, c, o, d_o = lstm_memory_derivatives(z, c_prev, mask)
        jh, jh_c = read_out_jacobian(jc, f, c, o, d_o)
        return (jh, None, jh_c), (jc, None, f)


class ZoneoutLSTM(MaskedLSTM):
    """Zoneout (Krueger et al. 2017): each unit of c and h keeps its previous value with probability
    zoneout_cell / zoneout_hidden, per example and step; at test time the mixture is its mean."""

    def __init__(self, *args, zoneout_cell=0.5, zoneout_hidden=0.05, **kwargs):
        _check_p(zoneout_cell=zoneout_cell, zoneout_hidden=zoneout_hidden)
        self.zoneout_cell, self.zoneout_hidden = zoneout_cell, zoneout_hidden
        super().__init__(*args, **kwargs)

    def masks(self, k, x):
        if not (self.zoneout_cell or self.zoneout_hidden):
            return []
        shape = (x.shape[0], x.shape[1], self.hidden_size)
        if self.training:
            return [bernoulli(shape, z, x) for z in (self.zoneout_cell, self.zoneout_hidden)]
        return [x.new_full((1, 1, 1), z).expand(shape) for z in (self.zoneout_cell, self.zoneout_hidden)]

    def step(self, xw, hw, h, c, keep_c, keep_h):
        i, f, g, o = lstm_gates(xw + hw)
        c_new = f * c + i * g
        h_new = o * torch.tanh(c_new)
        # keep ⊙ previous + (1 − keep) ⊙ new, each as one lerp
        return torch.lerp(h_new, h, keep_h), torch.lerp(c_new, c, keep_c)

    def step_jacobian(self, z, c_prev, keep_c, keep_h):
        """`step`'s derivatives per unit for the fused backward: the LSTM's (h_new reads c_new), times
        1 − keep; the kept previous values add ∂c/∂c_prev += keep_c and ∂h/∂h_prev = keep_h."""
        jc_new, f, c_new, o, d_o = lstm_memory_derivatives(z, c_prev)
        jh, jh_c = read_out_jacobian(jc_new, f, c_new, o, d_o, 1 - keep_h)
        jc = jc_new * (1 - keep_c).repeat(1, 4)
        return (jh, keep_h, jh_c), (jc, None, torch.addcmul(keep_c, 1 - keep_c, f))
