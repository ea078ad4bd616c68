"""Gating mechanisms of "Improving the Gating Mechanism of Recurrent Neural Networks"
(Gu, Gulcehre, Paine, Hoffman, Pascanu, ICML 2020) and the baselines it compares against.

Ablation names (first letter: the main gate's initialisation/activation; second: the auxiliary gate):
  lstm "––", forget_bias_lstm "––" with b_f = 1, chrono_lstm "C–", u_lstm "U–", r_lstm "–R",
  ur_lstm "UR", on_lstm "OM" (cumax activation with master gates, as ON-LSTM), master_gate_lstm "–M"
  (the master gates with a plain sigmoid); and ur_gru, the GRU with UGI and the refine gate.
"""

import torch
import torch.nn.functional as F

from ..recurrence import lstm_activations_, lstm_backward_factors, read_out_jacobian
from .base import PointwiseLayers, set_forget_bias
from .lstm import LSTM


def uniform_gate_bias(hidden_size):
    """UGI: u ~ U(1/d, 1 − 1/d), b_f = σ⁻¹(u) = log(u / (1 − u)), so that σ(b_f) is uniform on
    (1/d, 1 − 1/d) and the timescales 1/(1 − f) spread from ~1 to ~d."""
    d = hidden_size
    u = torch.empty(d).uniform_(1.0 / d, 1.0 - 1.0 / d)
    return torch.log(u / (1.0 - u))


def chrono_bias(hidden_size, t_max):
    """Chrono initialisation (Tallec & Ollivier 2018): b_f ~ log(U[1, T_max − 1]); the input gate gets −b_f."""
    if t_max < 3:
        raise ValueError(f"chrono initialisation needs t_max >= 3, got {t_max}")
    return torch.log(torch.empty(hidden_size).uniform_(1.0, t_max - 1.0))


class ForgetBiasLSTM(LSTM):
    """LSTM with a constant forget bias (Gers et al. 2000; Jozefowicz et al. 2015): b_f = forget_bias."""

    def __init__(self, *args, forget_bias=1.0, **kwargs):
        self.forget_bias = forget_bias
        super().__init__(*args, **kwargs)

    def reset_parameters(self):
        super().reset_parameters()
        for k in self.layer_keys():
            set_forget_bias(self, k, self.forget_bias)


class ULSTM(LSTM):
    """U-LSTM: a standard LSTM whose forget bias is drawn by uniform gate initialisation (UGI)."""

    def reset_parameters(self):
        super().reset_parameters()
        for k in self.layer_keys():
            set_forget_bias(self, k, uniform_gate_bias(self.hidden_size))


class ChronoLSTM(LSTM):
    """LSTM with chrono initialisation: b_f ~ log U[1, T_max − 1], b_i = −b_f (T_max: the longest
    dependency expected, typically the sequence length)."""

    def __init__(self, *args, t_max, **kwargs):
        self.t_max = t_max
        super().__init__(*args, **kwargs)

    def reset_parameters(self):
        super().reset_parameters()
        H = self.hidden_size
        for k in self.layer_keys():
            b_f = chrono_bias(H, self.t_max)
            set_forget_bias(self, k, b_f)
            with torch.no_grad():
                self.layer_param("bias_ih", k)[:H] = -b_f
                self.layer_param("bias_hh", k)[:H] = 0.0


class URLSTM(PointwiseLayers):
    """UR-LSTM: the refine gate r adjusts the forget gate f, and UGI initialises f.

        f_t = σ(z_f + b_f)        r_t = σ(z_r − b_f)        (b_f from UGI, one trainable vector)
        g_t = r_t (1 − (1 − f_t)²) + (1 − r_t) f_t²        (the effective forget gate)
        c_t = g_t ⊙ c_{t-1} + (1 − g_t) ⊙ tanh(z_u)        (input gate tied to 1 − g)
        h_t = σ(z_o) ⊙ tanh(c_t)

    z = x W_ihᵀ + b_ih + h W_hhᵀ + b_hh keeps nn.LSTM's 4H layout with the rows [r, f, u, o] in the
    places of [i, f, g, o], so the parameter count equals an LSTM's plus b_f (`ur_bias_l{k}`).
    With ugi=False this is the R-LSTM ablation: no b_f, and the forget slice of b_ih set to 1.
    """

    separable = True  # f, r, u and o of unit j only reach unit j

    def __init__(self, *args, ugi=True, **kwargs):
        self.ugi = ugi
        super().__init__(*args, **kwargs)

    def extra_parameters(self, k, layer_input):
        return {"ur_bias": (self.hidden_size,)} if self.ugi else {}

    def reset_parameters(self):
        super().reset_parameters()
        for k in self.layer_keys():
            if self.ugi:
                with torch.no_grad():
                    self.layer_param("ur_bias", k).copy_(uniform_gate_bias(self.hidden_size))
            else:
                set_forget_bias(self, k, 1.0)

    def input_projection(self, k, x):
        """x W_ihᵀ + b_ih + b_hh, plus UGI's ±b_f on the [r, f] rows: added here once for all steps."""
        xw = super().input_projection(k, x)
        if not self.ugi:
            return xw
        b_f = self.layer_param("ur_bias", k)
        return xw + torch.cat([-b_f, b_f, b_f.new_zeros(2 * self.hidden_size)])

    def step(self, xw, hw, h, c):
        z = xw + hw  # its r and f rows already hold −b_f and +b_f
        r, f = torch.sigmoid(z[..., :2 * self.hidden_size]).chunk(2, -1)
        _, _, z_u, z_o = z.chunk(4, -1)
        # g = r (1 − (1 − f)²) + (1 − r) f², rearranged to f (f + 2r(1 − f)): fewer operations
        g = f * torch.addcmul(f, r, 1 - f, value=2)
        c = torch.lerp(torch.tanh(z_u), c, g)  # g ⊙ c + (1 − g) ⊙ tanh(z_u)
        return torch.sigmoid(z_o) * torch.tanh(c), c

    def step_jacobian(self, z, c_prev):
        """`step`'s derivatives per unit, written out for the fused engine's backward (the two autograd
        passes over every row that they replace took half of the backward at (20, 35, 200)):

            ∂c/∂z_r = (c_prev − u) · 2f(1 − f) · σ'(z_r)          ∂c/∂z_u = (1 − g) · tanh'(z_u)
            ∂c/∂z_f = (c_prev − u) · (2f + 2r(1 − 2f)) · σ'(z_f)  ∂c/∂z_o = 0,  ∂c/∂c_prev = g
            ∂h/∂· = o (1 − tanh²(c)) ∂c/∂·, but ∂h/∂z_o = tanh(c) · σ'(z_o)
        """
        H = self.hidden_size
        a = torch.sigmoid(z)
        r, f, _, o = a.chunk(4, -1)
        u = torch.tanh(z[..., 2 * H:3 * H])
        one_minus_f = 1 - f
        g = f * torch.addcmul(f, r, one_minus_f, value=2)
        dc_dg = c_prev - u
        sigmoid_derivative = a - a.square()
        jc_z = torch.cat([dc_dg * 2 * f * one_minus_f, dc_dg * (2 * f + 2 * r * (1 - 2 * f)),
                          (1 - g) * (1 - u.square()), torch.zeros_like(u)], -1)
        jc_z[..., :2 * H] *= sigmoid_derivative[..., :2 * H]
        jh_z, jh_c = read_out_jacobian(jc_z, g, torch.lerp(u, c_prev, g), o, sigmoid_derivative[..., 3 * H:])
        return (jh_z, None, jh_c), (jc_z, None, g)


class RLSTM(URLSTM):
    """R-LSTM: the refine gate without UGI (forget bias 1)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, ugi=False, **kwargs)


def master_gated_memory(i, f, g, master_f, master_i, c):
    """ON-LSTM's memory update with master gates f̃ (forget) and ĩ (input) over the gates i, f and the
    candidate g:  ω = f̃ ⊙ ĩ;  f̂ = f ⊙ ω + (f̃ − ω);  î = i ⊙ ω + (ĩ − ω);  c_t = f̂ ⊙ c_{t-1} + î ⊙ g."""
    omega = master_f * master_i
    f_hat = f * omega + (master_f - omega)
    i_hat = i * omega + (master_i - omega)
    return f_hat * c + i_hat * g


def cumax(z):
    """cumsum(softmax(z)): a monotone gate rising from ~0 to 1 along the feature dimension."""
    return torch.cumsum(F.softmax(z, dim=-1), dim=-1)


class ONLSTM(PointwiseLayers):
    """Cumax activation with master gates, as ON-LSTM (Shen et al., ICLR 2019):

        f̃ = cumax(z_f̃)        ĩ = 1 − cumax(z_ĩ)          (master gates, one value per chunk)
        ω = f̃ ⊙ ĩ;  f̂ = f ⊙ ω + (f̃ − ω);  î = i ⊙ ω + (ĩ − ω)
        c_t = f̂ ⊙ c_{t-1} + î ⊙ tanh(z_g);  h_t = σ(z_o) ⊙ tanh(c_t)

    The master gates live at chunk resolution: H / chunk_size values, each repeated chunk_size times.
    Their 2·H/chunk_size pre-activation rows follow the usual [i, f, g, o] rows of W_ih, W_hh, b.
    """

    def __init__(self, input_size, hidden_size, *args, chunk_size=1, **kwargs):
        if hidden_size % chunk_size:
            raise ValueError(f"hidden_size {hidden_size} is not a multiple of chunk_size {chunk_size}")
        self.chunk_size = chunk_size
        super().__init__(input_size, hidden_size, *args, **kwargs)
        # For the fused engine, cumax with the chunk repeat as one product: cumsum(s)[chunk(h)] =
        # Σ_j s_j C[j, h] with C[j, h] = 1 where j ≤ chunk(h); its backward is the product with Cᵀ.
        n = hidden_size // chunk_size
        self.register_buffer("cumax_matrix", torch.ones(n, n).triu_().repeat_interleave(chunk_size, dim=1),
                             persistent=False)

    def gate_rows(self):
        return 4 * self.hidden_size + 2 * (self.hidden_size // self.chunk_size)

    def step(self, xw, hw, h, c):
        H, n = self.hidden_size, self.hidden_size // self.chunk_size
        z = xw + hw
        i, f, g, o = z[..., :4 * H].chunk(4, -1)
        master_f = cumax(z[..., 4 * H:4 * H + n]).repeat_interleave(self.chunk_size, -1)
        master_i = (1 - cumax(z[..., 4 * H + n:])).repeat_interleave(self.chunk_size, -1)
        c = master_gated_memory(torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), master_f, master_i, c)
        return torch.sigmoid(o) * torch.tanh(c), c

    # The fused engine runs the same step with a hand-written backward (cumax mixes units, so the
    # separable shortcut does not apply); `step` above is the reference the tests compare it with.
    def saved_widths(self, G, H):
        """Per step: the pre-activations, the LSTM part turned into its activations, and tanh(c)."""
        return [G, H]

    def softmax(self, a):
        """Both masters' softmax, (…, 2, n), from the pre-activations a (…, 4H + 2n)."""
        return F.softmax(a[..., 4 * self.hidden_size:].unflatten(-1, (2, -1)), dim=-1)

    def step_forward(self, xw, hw, c_prev, h, c, own):
        H = self.hidden_size
        a, tc = own
        i, f, g, o = lstm_activations_(torch.add(xw, hw, out=a)[:, :4 * H])
        *_, f_hat, i_hat = self.master_gates(self.softmax(a), i, f)
        torch.mul(f_hat, c_prev, out=c)
        c.addcmul_(i_hat, g)
        torch.tanh(c, out=tc)
        torch.mul(o, tc, out=h)

    def master_gates(self, s, i, f):
        """f̃, ĩ, ω, f̂, î from the masters' softmax s (…, 2, n) and the gates i, f."""
        cumaxes = s @ self.cumax_matrix
        master_f, master_i = cumaxes[..., 0, :], 1 - cumaxes[..., 1, :]
        omega = master_f * master_i
        f_hat, i_hat = torch.addcmul(master_f - omega, f, omega), torch.addcmul(master_i - omega, i, omega)
        return master_f, master_i, omega, f_hat, i_hat

    def backward_factors(self, saved, extras):
        """For all steps at once: the masters' softmax, the master gates, ω, f̂, î, the activations'
        derivatives, ∂h/∂c = o (1 − tanh²(c)), ∂f̂/∂ω = f − 1, ∂î/∂ω = i − 1, and the cumax matrix's transpose."""
        _, _, _, a, tc = saved
        lstm_part, s = a[..., :4 * self.hidden_size], self.softmax(a)
        i, f, _, _ = lstm_part.chunk(4, -1)
        return [s, *self.master_gates(s, i, f), *lstm_backward_factors(lstm_part, tc), f - 1, i - 1,
                self.cumax_matrix.t().expand(a.shape[0], -1, -1)]

    def step_backward(self, dh, dc, saved, dz):
        H = self.hidden_size
        _, c_prev, _, a, tc, s, master_f, master_i, omega, f_hat, i_hat, d_act, dh_dc, df_hat_domega, \
            di_hat_domega, cumax_t = saved
        dc = torch.addcmul(dc, dh, dh_dc)
        di, df, dg, do = dz[:, :4 * H].chunk(4, -1)
        torch.mul(dh, tc, out=do)
        torch.mul(dc, i_hat, out=dg)
        d_f_hat, d_i_hat = dc * c_prev, dc * a[:, 2 * H:3 * H]
        torch.mul(d_f_hat, omega, out=df)
        torch.mul(d_i_hat, omega, out=di)
        dz[:, :4 * H].mul_(d_act)
        # f̂ = f ω + f̃ − ω, î = i ω + ĩ − ω, ω = f̃ ĩ; ĩ = 1 − cumax
        d_omega = d_f_hat * df_hat_domega
        d_omega.addcmul_(d_i_hat, di_hat_domega)
        d_cumaxes = torch.stack((torch.addcmul(d_f_hat, d_omega, master_i),
                                 torch.addcmul(d_i_hat, d_omega, master_f).neg_()), 1)
        d_s = d_cumaxes @ cumax_t
        dz[:, 4 * H:] = torch.ops.aten._softmax_backward_data(d_s, s, -1, s.dtype).flatten(1)
        return dz, dc * f_hat, ()


class MasterGateLSTM(PointwiseLayers):
    """The "–M" ablation of Gu et al.: ON-LSTM's master gates with a plain sigmoid in place of cumax,
    one per unit (no ordering of the units):

        f̃ = σ(z_f̃)        ĩ = 1 − σ(z_ĩ)                (master gates)
        ω = f̃ ⊙ ĩ;  f̂ = f ⊙ ω + (f̃ − ω);  î = i ⊙ ω + (ĩ − ω)
        c_t = f̂ ⊙ c_{t-1} + î ⊙ tanh(z_g);  h_t = σ(z_o) ⊙ tanh(c_t)

    Its 6H pre-activation rows are [i, f, g, o, f̃, ĩ]: ON-LSTM's layout with chunk_size 1.
    """

    separable = True  # every gate of unit j is a sigmoid of its own row: unit j only reaches unit j

    def gate_rows(self):
        return 6 * self.hidden_size

    def step(self, xw, hw, h, c):
        i, f, g, o, master_f, master_i = (xw + hw).chunk(6, -1)
        c = master_gated_memory(torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(master_f),
                                1 - torch.sigmoid(master_i), c)
        return torch.sigmoid(o) * torch.tanh(c), c

    def step_jacobian(self, z, c_prev):
        """`step`'s derivatives per unit, written out for the fused engine's backward (as `URLSTM`'s):

            ∂c/∂z_i = g ω σ'(z_i)    ∂c/∂z_f = c_prev ω σ'(z_f)    ∂c/∂z_g = î tanh'(z_g)    ∂c/∂z_o = 0
            ∂c/∂f̃ = c_prev (1 − ĩ (1 − f)) − g ĩ (1 − i),  f̃ = σ(z_f̃)
            ∂c/∂ĩ = g (1 − f̃ (1 − i)) − c_prev f̃ (1 − f),  ĩ = 1 − σ(z_ĩ): ∂ĩ/∂z_ĩ = −σ'(z_ĩ)
            ∂c/∂c_prev = f̂;  ∂h/∂· = o (1 − tanh²(c)) ∂c/∂·, but ∂h/∂z_o = tanh(c) σ'(z_o)
        """
        H = self.hidden_size
        a = torch.sigmoid(z)
        i, f, _, o, master_f, s_i = a.chunk(6, -1)
        g = torch.tanh(z[..., 2 * H:3 * H])
        master_i = 1 - s_i
        omega = master_f * master_i
        f_hat, i_hat = torch.addcmul(master_f - omega, f, omega), torch.addcmul(master_i - omega, i, omega)
        sigmoid_derivative = a - a.square()
        jc_z = torch.cat([g * omega, c_prev * omega, i_hat * (1 - g.square()), torch.zeros_like(g),
                          c_prev * (1 - master_i * (1 - f)) - g * master_i * (1 - i),
                          c_prev * master_f * (1 - f) - g * (1 - master_f * (1 - i))], -1)
        jc_z[..., :2 * H] *= sigmoid_derivative[..., :2 * H]
        jc_z[..., 4 * H:] *= sigmoid_derivative[..., 4 * H:]
        jh_z, jh_c = read_out_jacobian(jc_z, f_hat, f_hat * c_prev + i_hat * g, o,
                                       sigmoid_derivative[..., 3 * H:4 * H])
        return (jh_z, None, jh_c), (jc_z, None, f_hat)


class URGRU(URLSTM):
    """UR-GRU: the GRU whose update gate is the UR-LSTM's forget gate, refined and UGI-initialised.

        f_t = σ(z_f + b_f)        r_t = σ(z_r − b_f)        (b_f from UGI, one trainable vector)
        g_t = r_t (1 − (1 − f_t)²) + (1 − r_t) f_t²        (the effective forget gate)
        s_t = σ(z_s)                                        (the GRU's reset gate)
        u_t = tanh(x_t W_uᵀ + b_u + s_t ⊙ (h_{t-1} U_uᵀ))   (the reset after the product, as nn.GRU)
        h_t = g_t ⊙ h_{t-1} + (1 − g_t) ⊙ u_t

    Gu et al. apply the two changes to any recurrence h_t = f_t ⊙ h_{t-1} + (1 − f_t) ⊙ u_t; their
    UR-GRU's own code is in no source we have, so where the reset gate sits is nn.GRU's choice, and
    b_u (b_ih + b_hh of the u rows) stays outside the reset, as `input_projection` adds both biases
    to every row. The rows are [r, f, u, s]: the UR-LSTM's layout with the reset gate in the output
    gate's place. A GRU has no separate memory: the state pair is (h, h), nn.LSTM's convention.
    """

    separable = False  # the reset gate multiplies h U_uᵀ alone, not the sum xw + hw
    step_jacobian = None  # the UR-LSTM's derivatives are not this step's

    def step(self, xw, hw, h, c):
        H = self.hidden_size
        r, f = torch.sigmoid(xw[..., :2 * H] + hw[..., :2 * H]).chunk(2, -1)  # r, f rows hold −b_f, +b_f
        g = f * torch.addcmul(f, r, 1 - f, value=2)  # r (1 − (1 − f)²) + (1 − r) f², as in URLSTM.step
        reset = torch.sigmoid(xw[..., 3 * H:] + hw[..., 3 * H:])
        u = torch.tanh(torch.addcmul(xw[..., 2 * H:3 * H], reset, hw[..., 2 * H:3 * H]))
        h = torch.lerp(u, h, g)  # g ⊙ h + (1 − g) ⊙ u
        return h, h
