"""Every variant against its paper's defining equation, plus what every registered cell must do."""

import math

import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from torch import nn

from lstm_nb import cells
from lstm_nb.cells.base import lstm_gates
from lstm_nb.cells.dropout import embedding_dropout, locked_dropout
from lstm_nb.recurrence import recurrence

OPTIONS = {"chrono_lstm": {"t_max": 10}, "mogrifier": {"rounds": 3, "rank": 1}, "on_lstm": {"chunk_size": 2}}
DOUBLE = {"dtype": torch.float64}


def draws(*shape, keep):
    """0/1 draws of probability `keep`, drawn as the cells draw their masks (U < keep, cells.dropout.bernoulli):
    torch's `bernoulli_` draws the same numbers on some versions only."""
    return (torch.empty(*shape, **DOUBLE).uniform_() < keep).to(DOUBLE["dtype"])


def build(name, input_size=5, hidden_size=4, **options):
    return cells.build(name, input_size, hidden_size, **{**OPTIONS.get(name, {}), **options}).double()


def lstm_step(x, h, c, w_ih, w_hh, b):
    """One step of the LSTM equations, written out."""
    i, f, g, o = lstm_gates(x @ w_ih.t() + h @ w_hh.t() + b)
    c = f * c + i * g
    return o * torch.tanh(c), c


# --- every registered cell ------------------------------------------------------------------------

CUSTOM = [n for n in cells.available() if not n.startswith("nn.")]


@pytest.mark.parametrize("name", CUSTOM)
def test_gradcheck_float64(name):
    torch.manual_seed(0)
    layer = build(name, 3, 2, num_layers=2)
    x = torch.randn(4, 2, 3, **DOUBLE, requires_grad=True)
    h0 = torch.randn(2, 2, 2, **DOUBLE, requires_grad=True)
    c0 = torch.randn(2, 2, 2, **DOUBLE, requires_grad=True)

    def run(x, h0, c0, *weights):  # a fixed seed gives every call the same dropout masks
        torch.manual_seed(1)
        out, (h, c) = torch.func.functional_call(layer, dict(zip(names, weights)), (x, (h0, c0)))
        return out, h, c

    names = [n for n, _ in layer.named_parameters()]
    weights = [p.detach().clone().requires_grad_() for _, p in layer.named_parameters()]
    assert torch.autograd.gradcheck(run, (x, h0, c0, *weights))


@pytest.mark.parametrize("name", cells.available())
def test_state_dict_round_trip_layouts_and_layers(name):
    torch.manual_seed(0)
    a = build(name, num_layers=2, batch_first=True)
    torch.manual_seed(1)
    b = build(name, num_layers=2, batch_first=True)
    b.load_state_dict(a.state_dict())
    a.eval(), b.eval()
    x = torch.randn(3, 7, 5, **DOUBLE)  # (B, T, I)
    out_a, _ = a(x)
    out_b, state = b(x)
    assert out_a.shape == (3, 7, 4)
    torch.testing.assert_close(out_a, out_b, rtol=0, atol=0)
    h_n = state[0] if isinstance(state, tuple) else state
    assert h_n.shape == (2, 3, 4)
    # batch_first is a transpose, nothing else
    c = build(name, num_layers=2).eval()
    c.load_state_dict(a.state_dict())
    torch.testing.assert_close(c(x.transpose(0, 1))[0].transpose(0, 1), out_a)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU on this machine")
@pytest.mark.parametrize("name", cells.available())
def test_runs_on_cuda_like_on_cpu(name):
    layer = build(name, num_layers=2).eval()
    x = torch.randn(6, 3, 5, **DOUBLE)
    torch.testing.assert_close(layer.cuda()(x.cuda())[0].cpu(), layer.cpu()(x)[0])


# --- Mogrifier -------------------------------------------------------------------------------------


def test_mogrifier_with_zero_rounds_is_the_lstm():
    torch.manual_seed(0)
    ref = nn.LSTM(5, 4, num_layers=2).double()
    mog = build("mogrifier", rounds=0, rank=None, num_layers=2)
    mog.load_state_dict(ref.state_dict())
    x = torch.randn(6, 3, 5, **DOUBLE)
    torch.testing.assert_close(mog(x)[0], ref(x)[0], rtol=0, atol=1e-12)


def mogrifier_by_hand(P, x, h, c, r, rank, h_mask=None):
    """The Mogrifier equations (Melis, Kočiský & Blunsom 2020) with capped input gate, written out from the parameters."""

    def Q(i, v):  # round i's map
        W = P[f"mog_w{i}_l0"] if rank is None else P[f"mog_v{i}_l0"] @ P[f"mog_u{i}_l0"]
        return v @ W.t() + P[f"mog_b{i}_l0"]

    outs = []
    for t in range(x.shape[0]):
        xs, hs = {-1: x[t]}, {0: h if h_mask is None else h * h_mask}
        for i in range(1, r + 1):
            if i % 2:
                xs[i] = 2 * torch.sigmoid(Q(i, hs[i - 1])) * xs[i - 2]
            else:
                hs[i] = 2 * torch.sigmoid(Q(i, xs[i - 1])) * hs[i - 2]
        x_r, h_r = xs[max(k for k in xs)], hs[max(k for k in hs)]
        z = x_r @ P["weight_ih_l0"].t() + h_r @ P["weight_hh_l0"].t() + P["bias_ih_l0"] + P["bias_hh_l0"]
        i_, f, g, o = lstm_gates(z)
        c = f * c + torch.minimum(i_, 1 - f) * g
        h = o * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs)


@pytest.mark.parametrize("r,rank", [(5, None), (5, 2), (0, None)])  # 0 rounds: the LSTM's own loop, capped
def test_mogrifier_equals_a_direct_loop_over_the_equations(r, rank):
    torch.manual_seed(0)
    mog = build("mogrifier", rounds=r, rank=rank, cap_input_gate=True)
    for p in mog.parameters():  # non-trivial values everywhere, biases included
        nn.init.normal_(p, std=0.5)
    x, h, c = torch.randn(4, 3, 5, **DOUBLE), torch.zeros(3, 4, **DOUBLE), torch.zeros(3, 4, **DOUBLE)
    expected = mogrifier_by_hand(dict(mog.named_parameters()), x, h, c, r, rank)
    torch.testing.assert_close(mog(x)[0], expected, rtol=0, atol=1e-12)


def test_mogrifier_state_dropout_is_one_mask_per_sequence_on_h_before_the_rounds():
    torch.manual_seed(0)
    p, B = 0.5, 6
    mog = build("mogrifier", rounds=4, rank=None, cap_input_gate=True, state_dropout=p)
    x, h, c = torch.randn(7, B, 5, **DOUBLE), torch.randn(B, 4, **DOUBLE), torch.zeros(B, 4, **DOUBLE)
    torch.manual_seed(1)
    out = mog(x, (h[None], c[None]))[0]
    torch.manual_seed(1)
    mask = draws(B, 4, keep=1 - p) / (1 - p)
    assert len({tuple(row.tolist()) for row in mask}) > 1  # the mask differs across examples
    torch.testing.assert_close(out, mogrifier_by_hand(dict(mog.named_parameters()), x, h, c, 4, None, mask),
                               rtol=0, atol=1e-12)
    mog.eval()
    torch.testing.assert_close(mog(x, (h[None], c[None]))[0],
                               mogrifier_by_hand(dict(mog.named_parameters()), x, h, c, 4, None), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name,options", [
    ("mogrifier", {"rounds": 5, "rank": None}),
    ("mogrifier", {"rounds": 5, "rank": 2, "cap_input_gate": True, "state_dropout": 0.3}),
    ("mogrifier", {"rounds": 4, "rank": 2, "mogrifier_bias": False, "bias": False}),
    ("mogrifier", {"rounds": 1, "rank": None, "forget_bias": 1.0}),
    ("mogrifier", {"rounds": 0, "rank": None, "cap_input_gate": True}),
    ("mogrifier", {"rounds": 0, "rank": None, "cap_input_gate": True, "state_dropout": 0.3}),
    ("mogrifier_shared_qr", {"rounds": 5}),
])
def test_mogrifier_hand_written_backward_matches_autograd(name, options):
    torch.manual_seed(0)
    fused = build(name, engine="fused", num_layers=2, **options)
    plain = build(name, engine="autograd", num_layers=2, **options)
    plain.load_state_dict(fused.state_dict())
    for p in fused.parameters():
        nn.init.normal_(p, std=0.5)  # biases too, so every gradient term is exercised
    plain.load_state_dict(fused.state_dict())
    x = torch.randn(6, 3, 5, **DOUBLE, requires_grad=True)
    hx = tuple(torch.randn(2, 3, 4, **DOUBLE, requires_grad=True) for _ in range(2))
    grads = []
    for layer in (fused, plain):
        torch.manual_seed(1)
        out, (h, c) = layer(x, hx)
        loss = (out * torch.linspace(-1, 1, 4, **DOUBLE)).sum() + h.sum() + 2 * c.sum()
        grads.append(torch.autograd.grad(loss, [x, *hx, *layer.parameters()]))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-11)


def test_mogrifier_rounds_have_distinct_parameters_and_low_rank_counts():
    m, n, k, r = 6, 8, 3, 5
    mog = cells.build("mogrifier", m, n, rounds=r, rank=k)
    names = [name for name, _ in mog.named_parameters() if name.startswith("mog_")]
    assert len(names) == 3 * r  # u, v and b per round
    tensors = [p for name, p in mog.named_parameters() if name.startswith("mog_u")]
    assert len({p.data_ptr() for p in tensors}) == r
    assert not torch.equal(mog.mog_u1_l0, mog.mog_u3_l0)
    for i in range(1, r + 1):
        assert mog.layer_param(f"mog_u{i}", 0).numel() + mog.layer_param(f"mog_v{i}", 0).numel() == k * (m + n)
    full = sum(p.numel() for n_, p in mog.named_parameters() if n_.startswith("mog_"))
    assert full == math.ceil(r / 2) * (k * (m + n) + m) + (r // 2) * (k * (m + n) + n)  # odd rounds map n -> m, even rounds m -> n


def test_shared_qr_variant_uses_one_q_and_one_r_for_every_round():
    mog = cells.build("mogrifier_shared_qr", 6, 8, rounds=5)
    assert sorted(n for n, _ in mog.named_parameters() if n.startswith("mog_")) == ["mog_q_l0", "mog_r_l0"]
    assert mog.mog_q_l0.shape == (6, 8) and mog.mog_r_l0.shape == (8, 6)


# --- gating: UGI, chrono, refine, cumax ------------------------------------------------------------


def _forget_activation(layer, k=0):
    H = layer.hidden_size
    return torch.sigmoid(layer.layer_param("bias_ih", k)[H:2 * H] + layer.layer_param("bias_hh", k)[H:2 * H])


def test_ugi_forget_activations_are_uniform_on_1_over_d_to_1_minus_1_over_d():
    torch.manual_seed(0)
    d = 4000
    f = _forget_activation(cells.build("u_lstm", 3, d)).detach().numpy()
    assert stats.kstest(f, stats.uniform(loc=1 / d, scale=1 - 2 / d).cdf).pvalue > 0.01
    assert stats.kstest(f, stats.uniform(loc=0.1, scale=0.8).cdf).pvalue < 1e-6  # the test can fail
    # zero input and state: the layer's forget gates at t = 1 are exactly these activations
    ur = cells.build("ur_lstm", 3, d)
    assert stats.kstest(torch.sigmoid(ur.ur_bias_l0).detach().numpy(),
                        stats.uniform(loc=1 / d, scale=1 - 2 / d).cdf).pvalue > 0.01


def test_chrono_biases_are_log_uniform_and_input_bias_is_minus_forget():
    torch.manual_seed(0)
    t_max, H = 50, 4000
    layer = cells.build("chrono_lstm", 3, H, t_max=t_max)
    b_f = layer.bias_ih_l0[H:2 * H] + layer.bias_hh_l0[H:2 * H]
    b_i = layer.bias_ih_l0[:H] + layer.bias_hh_l0[:H]
    assert stats.kstest(b_f.exp().detach().numpy(), stats.uniform(loc=1, scale=t_max - 2).cdf).pvalue > 0.01
    torch.testing.assert_close(b_i, -b_f)


def test_constant_forget_bias_is_exactly_one():
    layer = cells.build("forget_bias_lstm", 3, 8, num_layers=2)
    for k in range(2):
        torch.testing.assert_close(_forget_activation(layer, k), torch.full((8,), torch.sigmoid(torch.tensor(1.0)).item()))


def test_ur_gate_equals_a_hand_computation():
    torch.manual_seed(0)
    layer = build("ur_lstm")
    x, h, c = torch.randn(1, 2, 5, **DOUBLE), torch.randn(1, 2, 4, **DOUBLE), torch.randn(1, 2, 4, **DOUBLE)
    P = dict(layer.named_parameters())
    z = x[0] @ P["weight_ih_l0"].t() + P["bias_ih_l0"] + h[0] @ P["weight_hh_l0"].t() + P["bias_hh_l0"]
    z_r, z_f, z_u, z_o = z.chunk(4, -1)
    f = torch.sigmoid(z_f + P["ur_bias_l0"])
    r = torch.sigmoid(z_r - P["ur_bias_l0"])
    g = f**2 + 2 * r * f * (1 - f)  # Gu et al. 2020's r(1 - (1 - f)^2) + (1 - r) f^2, rearranged
    assert bool(((g >= f**2) & (g <= 2 * f - f**2)).all())
    c_new = g * c[0] + (1 - g) * torch.tanh(z_u)
    out, (_h_n, c_n) = layer(x, (h, c))
    torch.testing.assert_close(c_n[0], c_new, rtol=0, atol=1e-12)
    torch.testing.assert_close(out[0], torch.sigmoid(z_o) * torch.tanh(c_new), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name,masks", [
    ("ur_lstm", 0), ("r_lstm", 0), ("master_gate_lstm", 0),
    ("moon_lstm", 1), ("semeniuta_lstm", 1), ("zoneout_lstm", 2),  # masks: 0 or 1/(1 − p); zoneout's keeps 0 or 1
])
def test_step_jacobian_equals_autograds_per_unit_derivatives(name, masks):
    """The derivatives the fused backward reads from `step_jacobian` against autograd through `step`:
    unit j of (h, c) depends on unit j of each gate block only, so a backward of ones gives each one."""
    torch.manual_seed(0)
    layer = build(name, hidden_size=6)
    z, h_prev, c_prev = 2 * torch.randn(7, layer.gate_rows(), **DOUBLE), torch.randn(7, 6, **DOUBLE), torch.randn(7, 6, **DOUBLE)
    extras = [draws(7, 6, keep=0.5) * (1 if name == "zoneout_lstm" else 2) for _ in range(masks)]
    inputs = [v.clone().requires_grad_() for v in (z, h_prev, c_prev)]
    h, c = layer.step(inputs[0], torch.zeros_like(z), inputs[1], inputs[2], *extras)  # hw = 0: the step reads z = xw
    for own, out in zip(layer.step_jacobian(z, c_prev, *extras), (h, c)):
        expected = torch.autograd.grad(out, inputs, torch.ones_like(out), retain_graph=True, allow_unused=True)
        for j, e in zip(own, expected):
            if e is None:  # the step does not read it
                assert j is None
            else:
                torch.testing.assert_close(torch.zeros_like(e) if j is None else j, e, rtol=0, atol=1e-12)


def test_a_step_jacobian_is_refused_where_the_backward_could_not_use_it():
    layer = build("ur_lstm")
    xw, state = torch.randn(3, 2, 16, **DOUBLE), torch.zeros(2, 4, **DOUBLE)
    with pytest.raises(ValueError, match="needs a separable step"):
        recurrence(layer.step, xw, state, state, layer.weight_hh_l0, jacobian=layer.step_jacobian)


def test_r_lstm_has_no_ugi_vector_and_forget_bias_one():
    layer = cells.build("r_lstm", 3, 4)
    assert not any("ur_bias" in n for n, _ in layer.named_parameters())
    torch.testing.assert_close(layer.bias_ih_l0[4:8], torch.ones(4))


def test_on_lstm_master_gates_are_monotone_cumax():
    from lstm_nb.cells.gating import cumax

    v = cumax(torch.randn(5, 9))
    assert bool((v.diff(dim=-1) >= 0).all()) and torch.allclose(v[:, -1], torch.ones(5))
    layer = cells.build("on_lstm", 3, 8, chunk_size=4)
    assert layer.weight_hh_l0.shape == (4 * 8 + 2 * 2, 8)


def test_master_gate_lstm_equals_on_lstms_equations_with_a_sigmoid_in_place_of_cumax():
    torch.manual_seed(0)
    layer = build("master_gate_lstm")
    assert layer.weight_hh_l0.shape == (6 * 4, 4)
    x, h, c = torch.randn(1, 2, 5, **DOUBLE), torch.randn(1, 2, 4, **DOUBLE), torch.randn(1, 2, 4, **DOUBLE)
    P = dict(layer.named_parameters())
    z = x[0] @ P["weight_ih_l0"].t() + P["bias_ih_l0"] + h[0] @ P["weight_hh_l0"].t() + P["bias_hh_l0"]
    z_i, z_f, z_g, z_o, z_mf, z_mi = z.chunk(6, -1)
    master_f, master_i = torch.sigmoid(z_mf), 1 - torch.sigmoid(z_mi)
    omega = master_f * master_i
    f_hat = torch.sigmoid(z_f) * omega + master_f - omega
    i_hat = torch.sigmoid(z_i) * omega + master_i - omega
    c_new = f_hat * c[0] + i_hat * torch.tanh(z_g)
    out, (_, c_n) = layer(x, (h, c))
    torch.testing.assert_close(c_n[0], c_new, rtol=0, atol=1e-12)
    torch.testing.assert_close(out[0], torch.sigmoid(z_o) * torch.tanh(c_new), rtol=0, atol=1e-12)


def test_ur_gru_equals_a_hand_computation_of_its_equations():
    torch.manual_seed(0)
    layer = build("ur_gru")
    x, h = torch.randn(1, 2, 5, **DOUBLE), torch.randn(1, 2, 4, **DOUBLE)
    P = dict(layer.named_parameters())
    xw = x[0] @ P["weight_ih_l0"].t() + P["bias_ih_l0"] + P["bias_hh_l0"]
    hw = h[0] @ P["weight_hh_l0"].t()
    (x_r, x_f, x_u, x_s), (h_r, h_f, h_u, h_s) = xw.chunk(4, -1), hw.chunk(4, -1)
    b_f = P["ur_bias_l0"]
    f, r = torch.sigmoid(x_f + h_f + b_f), torch.sigmoid(x_r + h_r - b_f)
    g = r * (1 - (1 - f) ** 2) + (1 - r) * f**2  # Gu et al.'s effective gate, as written in the paper
    u = torch.tanh(x_u + torch.sigmoid(x_s + h_s) * h_u)
    h_new = g * h[0] + (1 - g) * u
    out, (h_n, c_n) = layer(x, (h, torch.randn_like(h)))  # a GRU reads no separate memory
    torch.testing.assert_close(out[0], h_new, rtol=0, atol=1e-12)
    torch.testing.assert_close(h_n[0], h_new, rtol=0, atol=1e-12)
    torch.testing.assert_close(c_n, h_n, rtol=0, atol=0)
    # UGI: the forget gates at rest are uniform on (1/d, 1 − 1/d), as the UR-LSTM's
    wide = cells.build("ur_gru", 3, 4000)
    rest = torch.sigmoid(wide.ur_bias_l0.detach())
    assert 1 / 4000 <= rest.min() and rest.max() <= 1 - 1 / 4000
    assert stats.kstest(rest.numpy(), stats.uniform(1 / 4000, 1 - 2 / 4000).cdf).pvalue > 0.01


# --- recurrent dropout -----------------------------------------------------------------------------


def _grad_of_input(layer, x, state=None):
    x = x.clone().requires_grad_()
    out, _ = layer(x, state)
    out.sum().backward()
    return out, x.grad


def test_gal_masks_per_example_fixed_over_time_and_masking_the_gradient():
    torch.manual_seed(0)
    layer = build("gal_lstm", 6, 5, input_dropout=0.5, recurrent_dropout=0.0)
    x = torch.randn(7, 4, 6, **DOUBLE)
    _, grad = _grad_of_input(layer, x)
    dropped = grad == 0  # an input unit dropped for an example gets no gradient at any step
    assert dropped.any()
    assert bool((dropped == dropped[:1]).all())  # the same units at every step (fixed over time)
    assert not bool((dropped == dropped[:, :1]).all())  # but different units for different examples
    # the recurrent mask multiplies h_{t-1} where it feeds the gates: check against the equations
    layer = build("gal_lstm", 6, 5, input_dropout=0.0, recurrent_dropout=0.5)
    torch.manual_seed(3)
    out, _ = layer(x)
    torch.manual_seed(3)
    h_mask = draws(4, 5, keep=0.5) / 0.5
    h, c = torch.zeros(4, 5, **DOUBLE), torch.zeros(4, 5, **DOUBLE)
    P = dict(layer.named_parameters())
    for t in range(7):
        h, c = lstm_step(x[t], h * h_mask, c, P["weight_ih_l0"], P["weight_hh_l0"], P["bias_ih_l0"] + P["bias_hh_l0"])
    torch.testing.assert_close(out[-1], h)


def test_layernorm_gal_input_rate_is_its_own_and_defaults_to_the_recurrent_rate():
    x = torch.randn(7, 4, 6, **DOUBLE)
    for input_dropout, recurrent_dropout, x_masked in ((0.5, 0.0, True), (0.0, 0.5, False), (None, 0.5, True)):
        layer = build("layernorm_gal_lstm", 6, 5, input_dropout=input_dropout, recurrent_dropout=recurrent_dropout)
        _, grad = _grad_of_input(layer, x)
        assert bool((grad == 0).any()) == x_masked  # a dropped input unit gets no gradient
    with pytest.raises(ValueError, match="input_dropout is Gal's mask"):
        build("layernorm_moon_lstm", input_dropout=0.5)


def test_untied_gal_has_its_own_masks_per_gate_fixed_over_time_and_equals_a_hand_computation():
    """z_j = (x_t ⊙ m^x_j) W_ih,jᵀ + (h_{t-1} ⊙ m^h_j) W_hh,jᵀ + b_j, gate j ∈ {i, f, g, o}, masks per example."""
    layer = build("gal_lstm", 6, 5, num_layers=2, input_dropout=0.5, recurrent_dropout=0.5, untied=True).double()
    x = torch.randn(7, 3, 6, **DOUBLE)
    torch.manual_seed(4)
    out, (h_n, c_n) = layer(x)
    torch.manual_seed(4)  # the same draws, in the layer's order: layer 0's x and h masks, then layer 1's
    P = dict(layer.named_parameters())
    seq = x
    for k in range(2):
        m_x = torch.empty(4, 3, seq.shape[-1], **DOUBLE).uniform_().lt(0.5).double() / 0.5
        m_h = torch.empty(4, 3, 5, **DOUBLE).uniform_().lt(0.5).double() / 0.5
        assert not any(torch.equal(m_h[a], m_h[b]) for a in range(4) for b in range(a))  # one mask per gate
        W_ih, W_hh = P[f"weight_ih_l{k}"].view(4, 5, -1), P[f"weight_hh_l{k}"].view(4, 5, 5)
        b = (P[f"bias_ih_l{k}"] + P[f"bias_hh_l{k}"]).view(4, 5)
        h, c, hs = torch.zeros(3, 5, **DOUBLE), torch.zeros(3, 5, **DOUBLE), []
        for t in range(7):  # every step reads the same masks
            z = [(seq[t] * m_x[j]) @ W_ih[j].t() + (h * m_h[j]) @ W_hh[j].t() + b[j] for j in range(4)]
            i, f, g, o = torch.sigmoid(z[0]), torch.sigmoid(z[1]), torch.tanh(z[2]), torch.sigmoid(z[3])
            c = f * c + i * g
            h = o * torch.tanh(c)
            hs.append(h)
        seq = torch.stack(hs)
        torch.testing.assert_close(h_n[k], h, rtol=0, atol=1e-12)
        torch.testing.assert_close(c_n[k], c, rtol=0, atol=1e-12)
    torch.testing.assert_close(out, seq, rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(lambda v: build_untied_double(layer)(v)[0], x[:3, :2].clone().requires_grad_())
    layer.eval()  # off in eval: the deterministic LSTM, like the tied variant
    tied = build("gal_lstm", 6, 5, num_layers=2).double().eval()
    tied.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer(x)[0], tied(x)[0], rtol=0, atol=0)


def build_untied_double(layer):
    """The layer with its masks redrawn from one fixed seed at each call (gradcheck calls it many times)."""
    def run(v):
        torch.manual_seed(9)
        return layer(v)
    return run


@pytest.mark.parametrize("name", ["gal_lstm", "moon_lstm", "semeniuta_lstm", "weight_drop_lstm", "zoneout_lstm",
                                  "layernorm_gal_lstm", "layernorm_moon_lstm", "layernorm_semeniuta_lstm"])
def test_dropout_is_random_in_training_and_off_in_eval(name):
    torch.manual_seed(0)
    layer = build(name)
    x = torch.randn(6, 3, 5, **DOUBLE)
    assert not torch.equal(layer(x)[0], layer(x)[0])  # fresh masks every forward
    layer.eval()
    assert torch.equal(layer(x)[0], layer(x)[0])
    if name == "zoneout_lstm":
        return  # its eval is the expectation, checked below
    plain = build(name.replace("gal_", "").replace("moon_", "").replace("semeniuta_", "")
                  .replace("weight_drop_", "") or "lstm").eval()
    plain.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer(x)[0], plain(x)[0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["moon_lstm", "layernorm_moon_lstm"])
def test_moon_masks_the_carried_cell_with_zero_one_per_sequence_and_scales_the_read_out(name):
    torch.manual_seed(0)
    layer = build(name, recurrent_dropout=0.5)
    x = torch.randn(8, 3, 5, **DOUBLE)
    torch.manual_seed(1)
    out, (_h_n, c_n) = layer(x)
    torch.manual_seed(1)
    m = draws(3, 4, keep=0.5) / 0.5  # k / (1 − p), drawn as the cell draws it
    keep = (m > 0).double()
    h, c = torch.zeros(3, 4, **DOUBLE), torch.zeros(3, 4, **DOUBLE)
    P = dict(layer.named_parameters())
    ln = name.startswith("layernorm")
    for t in range(8):
        xw, hw = x[t] @ P["weight_ih_l0"].t(), h @ P["weight_hh_l0"].t()
        if ln:
            xw = F.layer_norm(xw, (16,), P["ln_ih_weight_l0"], P["ln_ih_bias_l0"], layer.eps)
            hw = F.layer_norm(hw, (16,), P["ln_hh_weight_l0"], P["ln_hh_bias_l0"], layer.eps)
        i, f, g, o = lstm_gates(xw + hw + P["bias_ih_l0"] + P["bias_hh_l0"])
        c = keep * (f * c + i * g)  # c_t = k ⊙ (f ⊙ c_{t-1} + i ⊙ g), k ∈ {0, 1}
        read = F.layer_norm(c, (4,), P["ln_c_weight_l0"], P["ln_c_bias_l0"], layer.eps) if ln else c
        h = m * o * torch.tanh(read)  # h_t = k/(1 − p) ⊙ o ⊙ tanh(c_t)
        torch.testing.assert_close(out[t], h)
    torch.testing.assert_close(c_n[0], c)
    assert bool(((c_n[0] == 0) == (m == 0)).all())  # dropped cells stay zero for the whole sequence
    assert not bool((m == m[:1]).all())  # per example


def test_moon_never_rescales_the_carried_memory():
    """A kept unit that holds its memory (forget gate ≈ 1, input gate ≈ 0) keeps it exactly, however long
    the sequence: scaling the carried cell by 1/(1 − p) at every step would grow it as (1/(1 − p))^t."""
    layer = build("moon_lstm", input_size=1, hidden_size=2, recurrent_dropout=0.5)
    with torch.no_grad():
        for p in layer.parameters():
            p.zero_()
        layer.bias_ih_l0[0:2] = -30.0  # input gate shut
        layer.bias_ih_l0[2:4] = 30.0  # forget gate open
    c0 = torch.full((1, 64, 2), 0.7, **DOUBLE)
    torch.manual_seed(0)
    _, (_h, c) = layer(torch.zeros(200, 64, 1, **DOUBLE), (torch.zeros(1, 64, 2, **DOUBLE), c0))
    kept = c[0] != 0
    assert 0 < int(kept.sum()) < kept.numel()  # some units kept, some dropped
    torch.testing.assert_close(c[0][kept], torch.full_like(c[0][kept], 0.7))  # unchanged after 200 steps


def test_semeniuta_masks_only_the_candidate_fresh_each_step():
    torch.manual_seed(0)
    layer = build("semeniuta_lstm", recurrent_dropout=0.5)
    x = torch.randn(5, 3, 5, **DOUBLE)
    torch.manual_seed(1)
    out, _ = layer(x)
    torch.manual_seed(1)
    masks = draws(5, 3, 4, keep=0.5) / 0.5
    assert not torch.equal(masks[0], masks[1])
    h, c = torch.zeros(3, 4, **DOUBLE), torch.zeros(3, 4, **DOUBLE)
    P = dict(layer.named_parameters())
    for t in range(5):
        i, f, g, o = lstm_gates(x[t] @ P["weight_ih_l0"].t() + h @ P["weight_hh_l0"].t() + P["bias_ih_l0"]
                                + P["bias_hh_l0"])
        c = f * c + i * (masks[t] * g)
        h = o * torch.tanh(c)
    torch.testing.assert_close(out[-1], h)


def test_zoneout_keeps_previous_values_and_uses_the_expectation_in_eval():
    torch.manual_seed(0)
    layer = build("zoneout_lstm", zoneout_cell=0.999999, zoneout_hidden=0.999999)
    x = torch.randn(5, 3, 5, **DOUBLE)
    h0, c0 = torch.randn(1, 3, 4, **DOUBLE), torch.randn(1, 3, 4, **DOUBLE)
    _out, (_h_n, c_n) = layer(x, (h0, c0))
    torch.testing.assert_close(c_n, c0)  # every unit zoned out: the state is kept
    layer = build("zoneout_lstm", zoneout_cell=0.5, zoneout_hidden=0.25).eval()
    _, (h1, c1) = layer(x[:1], (h0, c0))
    P = dict(layer.named_parameters())
    h_new, c_new = lstm_step(x[0], h0[0], c0[0], P["weight_ih_l0"], P["weight_hh_l0"],
                             P["bias_ih_l0"] + P["bias_hh_l0"])
    torch.testing.assert_close(c1[0], 0.5 * c0[0] + 0.5 * c_new)
    torch.testing.assert_close(h1[0], 0.25 * h0[0] + 0.75 * h_new)


def test_weight_drop_changes_its_mask_every_forward_and_trains_the_raw_weight():
    torch.manual_seed(0)
    layer = build("weight_drop_lstm", weight_drop=0.5)
    x = torch.randn(4, 3, 5, **DOUBLE)
    seen = []
    for _ in range(2):
        layer.zero_grad()
        layer(x)[0].sum().backward()
        seen.append(layer.weight_hh_l0.grad.clone())
    assert all(g.abs().sum() > 0 for g in seen)
    assert not torch.equal(seen[0] == 0, seen[1] == 0)  # different dropped entries each time
    assert bool((seen[0] == 0).float().mean() > 0.3)  # dropped weights get no gradient
    assert "weight_hh_l0" in dict(layer.named_parameters())  # the raw weight is the parameter


def test_locked_and_embedding_dropout_semantics():
    torch.manual_seed(0)
    x = torch.ones(6, 4, 8)
    y = locked_dropout(x, 0.5, training=True)
    assert bool((y == y[:1]).all()) and not bool((y == y[:, :1]).all())
    assert set(y.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(locked_dropout(x, 0.5, training=False), x)
    weight = torch.randn(20, 3)
    tokens = torch.tensor([[1, 1, 2, 3, 1, 4, 5, 6, 7, 8]])
    e = embedding_dropout(weight, tokens, 0.5, training=True)
    dropped = (e == 0).all(-1)[0]
    assert dropped.any() and not dropped.all()
    assert len({bool(dropped[i]) for i in (0, 1, 4)}) == 1  # a word type is dropped everywhere or nowhere


# --- LayerNorm ---------------------------------------------------------------------------------------


def test_layernorm_initial_gains_one_biases_zero():
    layer = cells.build("layernorm_lstm", 3, 4, num_layers=2)
    for name, p in layer.named_parameters():
        if name.startswith("ln_"):
            assert torch.equal(p, torch.ones_like(p) if "_weight_" in name else torch.zeros_like(p)), name


@pytest.mark.parametrize("carry_normalized", [False, True])
def test_layernorm_equals_a_hand_computation_and_carries_the_raw_cell(carry_normalized):
    torch.manual_seed(0)
    layer = build("layernorm_lstm", carry_normalized_cell=carry_normalized)
    for name, p in layer.named_parameters():
        if name.startswith("ln_"):
            nn.init.normal_(p)
    x = torch.randn(3, 2, 5, **DOUBLE)
    P = dict(layer.named_parameters())

    def ln(v, name):  # LN(z; α, β) = α (z − μ) / √(var + ε) + β, population variance
        mu, var = v.mean(-1, keepdim=True), v.var(-1, unbiased=False, keepdim=True)
        return P[f"{name}_weight_l0"] * (v - mu) / torch.sqrt(var + 1e-5) + P[f"{name}_bias_l0"]

    h, c = torch.zeros(2, 4, **DOUBLE), torch.zeros(2, 4, **DOUBLE)
    for t in range(3):
        i, f, g, o = lstm_gates(ln(h @ P["weight_hh_l0"].t(), "ln_hh") + ln(x[t] @ P["weight_ih_l0"].t(), "ln_ih")
                                + P["bias_ih_l0"] + P["bias_hh_l0"])
        c = f * c + i * g
        h = o * torch.tanh(ln(c, "ln_c"))
        if carry_normalized:
            c = ln(c, "ln_c")
    out, (_h_n, c_n) = layer(x)
    torch.testing.assert_close(out[-1], h, rtol=0, atol=1e-12)
    torch.testing.assert_close(c_n[0], c, rtol=0, atol=1e-12)  # raw c carried, or LN(c) when asked


@pytest.mark.parametrize("name, options", [
    ("ur_lstm", {}), ("r_lstm", {}), ("moon_lstm", {}), ("semeniuta_lstm", {}), ("zoneout_lstm", {}),  # separable
    ("layernorm_lstm", {}), ("layernorm_lstm", {"carry_normalized_cell": True}), ("layernorm_gal_lstm", {}),
    ("layernorm_moon_lstm", {}), ("layernorm_semeniuta_lstm", {}),  # hand-written LayerNorm step
    ("on_lstm", {}), ("on_lstm", {"chunk_size": 1}),  # hand-written cumax step
    ("master_gate_lstm", {}),  # separable
    ("ur_gru", {}),  # the per-step autograd backward
])
def test_fused_engine_matches_its_autograd_reference(name, options):
    torch.manual_seed(0)
    fused, plain = build(name, engine="fused", **options), build(name, engine="autograd", **options)
    for p in fused.parameters():
        nn.init.normal_(p, std=0.5)  # LayerNorm gains and biases too, so every gradient term is exercised
    plain.load_state_dict(fused.state_dict())
    x = torch.randn(5, 3, 5, **DOUBLE, requires_grad=True)
    hx = tuple(torch.randn(1, 3, 4, **DOUBLE, requires_grad=True) for _ in range(2))
    weights = torch.randn(5, 3, 4, **DOUBLE)  # a different gradient reaching every output
    grads = []
    for layer in (fused, plain):
        torch.manual_seed(1)
        out, (h, c) = layer(x, hx)
        loss = (out * weights).sum() + 3 * h.sum() - 2 * c.sum()
        # (a GRU's c_0 reaches nothing: its gradient is zero)
        grads.append(torch.autograd.grad(loss, [x, *hx, *layer.parameters()], allow_unused=True, materialize_grads=True))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["ur_lstm", "layernorm_lstm", "on_lstm"])
def test_per_step_autograd_engine_matches_its_reference(name):
    """The engine a new step runs on before it has a faster backward (`recurrence` with neither
    `separable` nor `kernel`), on existing steps, with a recurrent mask."""
    torch.manual_seed(0)
    layer = build(name)
    for p in layer.parameters():
        nn.init.normal_(p, std=0.5)
    xw = torch.randn(5, 3, layer.gate_rows(), **DOUBLE, requires_grad=True)
    h0, c0, w_hh = (torch.randn(*shape, **DOUBLE, requires_grad=True) for shape in ((3, 4), (3, 4), (layer.gate_rows(), 4)))
    params = [p.detach().requires_grad_() for p in layer.step_params(0)]
    h_mask = torch.rand(3, 4, **DOUBLE)
    weights = torch.randn(5, 3, 4, **DOUBLE)
    grads = []
    for engine in ("fused", "autograd"):
        out, (h, c) = recurrence(layer.step, xw, h0, c0, w_hh, params=params, h_mask=h_mask, engine=engine)
        loss = (out * weights).sum() + 3 * h.sum() - 2 * c.sum()
        grads.append(torch.autograd.grad(loss, [xw, h0, c0, w_hh, *params]))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_unknown_options_are_refused():
    with pytest.raises(ValueError, match="dropout_method"):
        cells.build("layernorm_lstm", 3, 4, dropout_method="zaremba")
    with pytest.raises(ValueError, match="rank"):
        cells.build("mogrifier", 3, 4, rank=10)
    with pytest.raises(ValueError, match="does not accept"):
        cells.build("chrono_lstm", 3, 4)  # t_max is required
    with pytest.raises(ValueError, match="separable step takes no params"):
        zeros = torch.zeros(2, 1, 4)
        recurrence(lambda *a: a, torch.zeros(2, 1, 16), zeros[0], zeros[0], torch.zeros(16, 4), params=[zeros],
                   separable=True)

