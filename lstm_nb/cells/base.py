"""`RecurrentLayers`: nn.LSTM's interface, parameter names and initialisation for any cell.

A subclass says how one layer runs (`layer_forward`) and, if it needs them, which extra per-layer
parameters it owns (`extra_parameters`) and how they are initialised (`reset_parameters`).
Everything else — layouts, initial states, stacking, dropout between layers — lives here once.
"""

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from .. import gemm
from ..recurrence import check_engine, recurrence


class Reverse(int):
    """Layer k's reverse direction: the int k wherever a layer index is used, its parameters named
    `<name>_l{k}_reverse`, as nn.LSTM names them."""

    def __repr__(self):
        return f"Reverse({int(self)})"


class RecurrentLayers(nn.Module):
    """Multi-layer recurrent module with `torch.nn.LSTM`'s call convention.

    forward(input, hx=None) -> output, (h_n, c_n) with input (T, B, I), or (B, T, I) when
    batch_first, or unbatched (T, I), or a PackedSequence; hx = (h_0, c_0), each
    (D·num_layers, B, H), D = 2 when bidirectional, else 1.
    Per layer k the module owns `weight_ih_l{k}` (G·H × I_k), `weight_hh_l{k}` (G·H × H) and, with
    bias, `bias_ih_l{k}`, `bias_hh_l{k}` (G·H), exactly as nn.LSTM names them (G = `gate_count`), and
    the same names ending in `_reverse` for the reverse direction (`Reverse(k)`).

    Padding: a padded tensor's every step is read, as nn.LSTM reads it. A PackedSequence never lets
    padding in: the batch runs as one call per distinct length, so each sequence's state stops at its
    own last step (and random masks drawn per sequence stay per sequence; weight drop's one mask per
    call is then one per length). A batch of many distinct lengths is correspondingly slower.
    """

    gate_count = 4

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if proj_size:
            raise ValueError(f"{type(self).__name__} has no projection: proj_size={proj_size} is an nn.LSTM option "
                             "lstm_nb's cells do not have (h would no longer be the memory's read-out every cell's "
                             "equations use)")
        if dropout and num_layers == 1:  # nn.LSTM's warning, word for word
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                          f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                          stacklevel=2)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, dropout
        self.bidirectional, self.num_directions = bool(bidirectional), 2 if bidirectional else 1
        factory = {"device": device, "dtype": dtype}
        rows = self.gate_rows()
        for k in self.layer_keys():
            layer_input, name_of = self.layer_input_size(k), self.parameter_name
            self.register_parameter(name_of("weight_ih", k), nn.Parameter(torch.empty(rows, layer_input, **factory)))
            self.register_parameter(name_of("weight_hh", k), nn.Parameter(torch.empty(rows, hidden_size, **factory)))
            if bias:
                self.register_parameter(name_of("bias_ih", k), nn.Parameter(torch.empty(rows, **factory)))
                self.register_parameter(name_of("bias_hh", k), nn.Parameter(torch.empty(rows, **factory)))
            for name, shape in self.extra_parameters(k, layer_input).items():
                self.register_parameter(name_of(name, k), nn.Parameter(torch.empty(shape, **factory)))
        with torch.no_grad():  # initialised where they live (a meta device stays without values)
            self.reset_parameters()

    def gate_rows(self):
        """Rows of W_ih, W_hh and the biases: G·H for a cell with G gate blocks."""
        return self.gate_count * self.hidden_size

    def extra_parameters(self, k, layer_input):
        """Shapes of a subclass's own per-layer parameters, registered as `<name>_l{k}`."""
        return {}

    def reset_parameters(self):
        # nn.LSTM's default: every tensor ~ U(−1/√H, 1/√H).
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def layer_keys(self):
        """Every layer and direction: 0, 1, … and, when bidirectional, Reverse(k) after each k."""
        return [key for k in range(self.num_layers) for key in ((k, Reverse(k)) if self.bidirectional else (k,))]

    def layer_input_size(self, k):
        return self.input_size if k == 0 else self.hidden_size * self.num_directions

    @staticmethod
    def parameter_name(name, k):
        return f"{name}_l{int(k)}{'_reverse' if isinstance(k, Reverse) else ''}"

    def layer_param(self, name, k):
        return getattr(self, self.parameter_name(name, k), None)

    def input_projection(self, k, x):
        """x W_ihᵀ + b_ih + b_hh for all time steps at once: one GEMM over T·B rows."""
        bias = self.layer_param("bias_ih", k) + self.layer_param("bias_hh", k) if self.bias else None
        return gemm.linear(x, self.layer_param("weight_ih", k), bias)

    def layer_forward(self, k, x, h0, c0):
        """Run layer k over x (T, B, I_k) from (h0, c0); return output (T, B, H) and (h_T, c_T)."""
        raise NotImplementedError

    def forward(self, input, hx=None):
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        unbatched = input.dim() == 2
        if hx is not None and (hx[0].dim() != 3 - unbatched or hx[1].dim() != 3 - unbatched):
            # nn.LSTM's check and message (a lone state tensor, unpacked along its first dimension, fails it too)
            raise RuntimeError(f"For {'unbatched 2-D' if unbatched else 'batched 3-D'} input, hx and cx should also "
                               f"be {3 - unbatched}-D but got ({hx[0].dim()}-D, {hx[1].dim()}-D) tensors")
        if unbatched:
            input = input.unsqueeze(1)
            hx = None if hx is None else tuple(s.unsqueeze(1) for s in hx)
        elif self.batch_first:
            input = input.transpose(0, 1)
        x, (h_n, c_n) = self._forward_time_major(input, hx)
        if unbatched:
            return x.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
        if self.batch_first:
            x = x.transpose(0, 1)
        return x, (h_n, c_n)

    def _forward_time_major(self, input, hx):
        """input (T, B, I), hx None or (D·L, B, H) each: every layer, each direction, then dropout between."""
        if input.dim() != 3 or input.shape[-1] != self.input_size:
            raise ValueError(f"expected input (T, B, {self.input_size}), got {tuple(input.shape)}")
        batch = input.shape[1]
        expected = (self.num_directions * self.num_layers, batch, self.hidden_size)
        if hx is None:
            zeros = input.new_zeros(expected)
            hx = (zeros, zeros)
        else:  # nn.LSTM's check and message
            for i, state in enumerate(hx):
                if tuple(state.shape) != expected:
                    raise RuntimeError(f"Expected hidden[{i}] size {expected}, got {list(state.shape)}")
        h0, c0 = hx
        x, h_n, c_n = input, [], []
        for k in range(self.num_layers):
            outputs = []
            for d, key in enumerate(self.layer_keys()[k * self.num_directions:(k + 1) * self.num_directions]):
                i = k * self.num_directions + d
                if isinstance(key, Reverse):  # the reverse direction reads the sequence from its end
                    out, (h, c) = self.layer_forward(key, x.flip(0), h0[i], c0[i])
                    out = out.flip(0)
                else:
                    out, (h, c) = self.layer_forward(key, x, h0[i], c0[i])
                outputs.append(out)
                h_n.append(h)
                c_n.append(c)
            x = outputs[0] if len(outputs) == 1 else torch.cat(outputs, -1)
            if self.dropout and self.training and k < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        return x, (torch.stack(h_n), torch.stack(c_n))

    def _forward_packed(self, packed, hx):
        """A PackedSequence, as nn.LSTM takes it (hx in the batch's original order): one call per
        distinct length, so no sequence's state ever sees padding; returns a PackedSequence with the
        input's batch sizes and order, and the final states in the original order."""
        padded, lengths = pad_packed_sequence(packed)  # (T, B, I), the original order
        batch = padded.shape[1]
        expected = (self.num_directions * self.num_layers, batch, self.hidden_size)
        if hx is not None:
            for i, state in enumerate(hx):
                if tuple(state.shape) != expected:
                    raise RuntimeError(f"Expected hidden[{i}] size {expected}, got {list(state.shape)}")
        out = padded.new_zeros(padded.shape[0], batch, self.num_directions * self.hidden_size)
        h_n, c_n = padded.new_zeros(expected), padded.new_zeros(expected)
        for length in lengths.unique().tolist():
            rows = (lengths == length).nonzero().squeeze(1).to(padded.device)
            state = None if hx is None else (hx[0][:, rows], hx[1][:, rows])
            part, (h, c) = self._forward_time_major(padded[:length, rows], state)
            out[:length, rows], h_n[:, rows], c_n[:, rows] = part, h, c
        order = packed.sorted_indices
        sorted_out = out if order is None else out[:, order.to(out.device)]
        data = pack_padded_sequence(sorted_out, lengths if order is None else lengths[order.cpu()]).data
        return PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices), (h_n, c_n)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        if self.batch_first:
            s += ", batch_first=True"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        return s


class PointwiseLayers(RecurrentLayers):
    """Layers whose step is pointwise over the two projections; they run on `recurrence`.

    A subclass writes `step(xw_t, hw_t, h_{t-1}, c_{t-1}, *extras_t, *params) -> (h_t, c_t)` and, when it
    needs them, `step_params(k)` (tensors the step differentiates). Cells with random masks pass them to
    `recurrence` from their own `layer_forward`. `separable = True` declares that the step reads xw and
    hw only as their sum and that unit j of (h, c) depends only on unit j of each input (no LayerNorm,
    no cumax, no step params): the faster backward, faster still with the step's per-unit derivatives
    written out (`step_jacobian`, see `recurrence`). A step that mixes units may add a hand-written twin
    (`saved_widths`, `step_forward`, `backward_factors`, `step_backward` and, with step params,
    `params_backward`), which the fused engine then runs instead (see `recurrence`'s `kernel`).
    """

    separable = False
    step_backward = None
    step_jacobian = None

    def __init__(self, *args, engine="fused", **kwargs):
        check_engine(engine)
        self.engine = engine
        super().__init__(*args, **kwargs)

    def step(self, xw, hw, h, c, *extras_and_params):
        raise NotImplementedError

    def step_params(self, k):
        return []

    def layer_forward(self, k, x, h0, c0):
        return recurrence(self.step, self.input_projection(k, x), h0, c0, self.layer_param("weight_hh", k),
                          params=self.step_params(k), engine=self.engine, separable=self.separable,
                          kernel=self if self.step_backward else None, jacobian=self.step_jacobian)


def lstm_gates(z):
    """nn.LSTM's gate activations on pre-activations z = [i, f, g, o]: σ(i), σ(f), tanh(g), σ(o)."""
    i, f, _, o = torch.sigmoid(z).chunk(4, -1)  # one call for the three σ (σ(g) is not used)
    return i, f, torch.tanh(z.chunk(4, -1)[2]), o


def set_forget_bias(layers, k, values):
    """Make layer k's effective forget bias exactly `values`: the b_ih slice holds it, the b_hh slice 0
    (nn.LSTM adds both vectors, so setting both would double it)."""
    if not layers.bias:
        raise ValueError("a forget-gate initialisation needs bias=True")
    H = layers.hidden_size
    with torch.no_grad():
        layers.layer_param("bias_ih", k)[H:2 * H] = values
        layers.layer_param("bias_hh", k)[H:2 * H] = 0.0
