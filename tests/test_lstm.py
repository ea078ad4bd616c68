"""The from-scratch LSTM computes exactly what torch.nn.LSTM computes: outputs, states, gradients."""

import pytest
import torch
from torch import nn

from lstm_nb import cells
from lstm_nb.recurrence import _LSTMFunction

TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}


def _pair(dtype, num_layers, batch_first, engine, input_size=5, hidden_size=7):
    torch.manual_seed(0)
    ref = nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=batch_first).to(dtype)
    ours = cells.build("lstm", input_size, hidden_size, num_layers=num_layers, batch_first=batch_first,
                       engine=engine).to(dtype)
    ours.load_state_dict(ref.state_dict())  # same names and shapes as nn.LSTM
    return ref, ours


def _run(module, x, state, weights):
    out, (h, c) = module(x, state)
    loss = (out * weights[0]).sum() + (h * weights[1]).sum() + (c * weights[2]).sum()
    inputs = [x] + ([s for s in state] if state else []) + list(module.parameters())
    return (out, h, c), torch.autograd.grad(loss, inputs)


@pytest.mark.parametrize("engine", ["library", "fused", "autograd"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("num_layers,batch_first,with_state", [
    (1, False, False), (1, False, True), (3, False, True), (2, True, False), (2, True, True),
])
def test_matches_nn_lstm(engine, dtype, num_layers, batch_first, with_state):
    ref, ours = _pair(dtype, num_layers, batch_first, engine)
    T, B = 11, 4
    x = torch.randn((B, T, 5) if batch_first else (T, B, 5), dtype=dtype, requires_grad=True)
    state = None
    if with_state:
        state = tuple(torch.randn(num_layers, B, 7, dtype=dtype, requires_grad=True) for _ in range(2))
    out_shape = (B, T, 7) if batch_first else (T, B, 7)
    weights = [torch.randn(out_shape, dtype=dtype), torch.randn(num_layers, B, 7, dtype=dtype),
               torch.randn(num_layers, B, 7, dtype=dtype)]
    values_ref, grads_ref = _run(ref, x, state, weights)
    values, grads = _run(ours, x, state, weights)
    tol = TOLERANCE[dtype]
    for a, b in zip(values, values_ref):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=tol, rtol=0)
    assert len(grads) == len(grads_ref)
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b, atol=tol, rtol=0)


def test_parameter_names_and_shapes_are_nn_lstm_s():
    ref = nn.LSTM(3, 4, num_layers=2)
    ours = cells.build("lstm", 3, 4, num_layers=2)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, p.shape) for n, p in ref.named_parameters()]


def test_unbatched_input_like_nn_lstm():
    ref, ours = _pair(torch.float64, 2, False, "fused")
    x = torch.randn(6, 5, dtype=torch.float64)
    out_ref, (h_ref, _) = ref(x)
    out, (h, _) = ours(x)
    torch.testing.assert_close(out, out_ref)
    torch.testing.assert_close(h, h_ref)


def _bad_states():
    """(input, hx) pairs nn.LSTM(5, 7, num_layers=2) refuses: a lone tensor, wrong dimensions, wrong sizes."""
    x, x1 = torch.randn(6, 3, 5), torch.randn(6, 5)
    h, c = torch.zeros(2, 3, 7), torch.zeros(2, 3, 7)
    return [(x, h), (x, (h[0], c[0])), (x, (h, c[:1])), (x, (h[:, :2], c[:, :2])), (x, (h, torch.zeros(2, 3, 6))),
            (x1, (h, c)), (x1, (torch.zeros(2, 6), torch.zeros(2, 7)))]


@pytest.mark.parametrize("case", range(len(_bad_states())))
def test_a_bad_state_is_refused_as_nn_lstm_refuses_it(case):
    x, hx = _bad_states()[case]
    ref, ours = _pair(torch.float32, 2, False, "fused")
    with pytest.raises(RuntimeError) as expected:
        ref(x, hx)
    with pytest.raises(RuntimeError) as got:
        ours(x, hx)
    assert str(got.value) == str(expected.value)


def test_construction_takes_dtype_device_and_warns_like_nn_lstm():
    options = {"chrono_lstm": {"t_max": 10}, "mogrifier": {"rounds": 3, "rank": 2}, "on_lstm": {"chunk_size": 2}}
    for name in cells.available():
        layer = cells.build(name, 5, 8, num_layers=2, dtype=torch.float64, **options.get(name, {}))
        assert {p.dtype for p in layer.parameters()} == {torch.float64}, name
        on_meta = cells.build(name, 5, 8, num_layers=2, device="meta", **options.get(name, {}))
        assert {p.device.type for p in on_meta.parameters()} == {"meta"}, name
    with pytest.warns(UserWarning) as expected:
        nn.LSTM(5, 7, dropout=0.5)
    with pytest.warns(UserWarning) as got:
        cells.build("lstm", 5, 7, dropout=0.5)
    assert str(got[0].message) == str(expected[0].message)
    with pytest.raises(ValueError, match="has no projection: proj_size=3"):
        cells.build("ur_lstm", 5, 7, proj_size=3)


def _packed_batch():
    from torch.nn.utils.rnn import pack_sequence

    torch.manual_seed(3)
    sequences = [torch.randn(n, 5, dtype=torch.float64) for n in (4, 6, 2, 4, 1)]  # unsorted, a repeated length
    return sequences, pack_sequence(sequences, enforce_sorted=False)


@pytest.mark.parametrize("engine", ["library", "fused"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("packed", [False, True])
def test_bidirectional_and_packed_input_match_nn_lstm(engine, bidirectional, packed):
    torch.manual_seed(0)
    ref = nn.LSTM(5, 7, num_layers=2, bidirectional=bidirectional).double()
    ours = cells.build("lstm", 5, 7, num_layers=2, bidirectional=bidirectional, engine=engine).double()
    ours.load_state_dict(ref.state_dict())  # `_reverse` parameters named as nn.LSTM names them
    x = _packed_batch()[1]
    if not packed:
        x = torch.randn(6, 5, 5, dtype=torch.float64)
    states = 2 * (1 + bidirectional)
    hx = tuple(torch.randn(states, 5, 7, dtype=torch.float64, requires_grad=True) for _ in range(2))
    results = []
    for module in (ref, ours):
        out, (h, c) = module(x, hx)
        data = out.data if packed else out
        weights = torch.linspace(-1, 1, data.numel(), dtype=torch.float64).view_as(data)
        loss = (data * weights).sum() + 3 * h.sum() - 2 * c.sum()
        results.append((data, h, c, *torch.autograd.grad(loss, [*hx, *module.parameters()])))
        if packed:
            assert torch.equal(out.batch_sizes, x.batch_sizes) and torch.equal(out.unsorted_indices, x.unsorted_indices)
    for a, b in zip(*results):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", [n for n in cells.available() if not n.startswith("nn.")])
def test_every_cell_takes_packed_sequences_and_no_state_sees_padding(name):
    """Each sequence of a packed batch gets what it gets alone: outputs at its own steps, and its final
    state at its own last step (eval mode: no random masks), in both directions."""
    options = {"chrono_lstm": {"t_max": 10}, "mogrifier": {"rounds": 3, "rank": 2}, "on_lstm": {"chunk_size": 7}}
    torch.manual_seed(0)
    layer = cells.build(name, 5, 7, num_layers=2, bidirectional=True, **options.get(name, {})).double().eval()
    assert layer.weight_hh_l1_reverse.shape == layer.weight_hh_l1.shape
    assert layer.weight_ih_l1.shape[1] == 14  # the next layer reads both directions
    sequences, packed = _packed_batch()
    out, (h_n, c_n) = layer(packed)
    padded, lengths = torch.nn.utils.rnn.pad_packed_sequence(out)
    assert h_n.shape == c_n.shape == (4, 5, 7) and padded.shape == (6, 5, 14)
    for i, sequence in enumerate(sequences):
        alone, (h, c) = layer(sequence)  # unbatched
        torch.testing.assert_close(padded[:lengths[i], i], alone, rtol=0, atol=1e-12)
        torch.testing.assert_close(h_n[:, i], h, rtol=0, atol=1e-12)
        torch.testing.assert_close(c_n[:, i], c, rtol=0, atol=1e-12)


def test_fused_backward_passes_gradcheck():
    torch.manual_seed(0)
    T, B, H = 4, 2, 3
    args = (torch.randn(T, B, 4 * H), torch.randn(B, H), torch.randn(B, H), torch.randn(4 * H, H))
    args = tuple(a.double().requires_grad_() for a in args)
    assert torch.autograd.gradcheck(_LSTMFunction.apply, args)


def test_registry():
    assert {"lstm", "nn.LSTM"} <= set(cells.available())
    assert isinstance(cells.build("nn.LSTM", 3, 4, batch_first=True), nn.LSTM)
    with pytest.raises(ValueError, match="unknown cell 'nope'.*available"):
        cells.build("nope", 3, 4)
    with pytest.raises(ValueError, match="does not accept"):
        cells.build("lstm", 3, 4, rounds=5)


PLAIN_LSTM_CELLS = [("lstm", {}), ("forget_bias_lstm", {"forget_bias": 1.0}), ("chrono_lstm", {"t_max": 20}),
                    ("u_lstm", {}), ("weight_drop_lstm", {"weight_drop": 0.5})]


@pytest.mark.parametrize("name,options", PLAIN_LSTM_CELLS)
@pytest.mark.parametrize("training", [True, False])
def test_library_engine_equals_the_scratch_engine(name, options, training):
    """The cells whose recurrence is nn.LSTM's default to the library kernel; in float64 its outputs and
    every gradient (for weight drop, the raw W_hh's through the one mask per forward) equal the
    from-scratch engine's, from the same weights and the same random stream."""
    torch.manual_seed(0)
    library = cells.build(name, 5, 7, num_layers=2, dropout=0.3, **options).double()
    scratch = cells.build(name, 5, 7, num_layers=2, dropout=0.3, engine="fused", **options).double()
    assert library.engine == "library"
    scratch.load_state_dict(library.state_dict())
    library.train(training)
    scratch.train(training)
    x = torch.randn(9, 4, 5, dtype=torch.float64, requires_grad=True)
    state = tuple(torch.randn(2, 4, 7, dtype=torch.float64, requires_grad=True) for _ in range(2))
    weights = [torch.randn(9, 4, 7, dtype=torch.float64), torch.randn(2, 4, 7, dtype=torch.float64),
               torch.randn(2, 4, 7, dtype=torch.float64)]
    results = []
    for layer in (library, scratch):
        torch.manual_seed(1)  # the same weight-drop and between-layer dropout masks
        results.append(_run(layer, x, state, weights))
    (values, grads), (values_ref, grads_ref) = results
    for a, b in zip(values + grads, values_ref + grads_ref):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)
    if name == "weight_drop_lstm" and training:  # the mask reached W_hh's gradient: some entries are 0
        assert (grads[-3] == 0).any() and not (grads_ref[-3] == 0).all()


def test_library_engine_gradients_in_eval_mode():
    """Dynamic evaluation takes gradients of a model in eval mode; the library engine gives them."""
    layer = cells.build("lstm", 3, 4).eval()
    out, _ = layer(torch.randn(5, 2, 3))
    out.sum().backward()
    assert layer.weight_hh_l0.grad is not None and layer.weight_hh_l0.grad.abs().sum() > 0


def test_cells_off_nn_lstm_math_refuse_the_library_engine():
    with pytest.raises(ValueError, match="unknown engine 'library'"):
        cells.build("gal_lstm", 3, 4, engine="library")
    assert cells.build("gal_lstm", 3, 4).engine == "fused"


def test_weight_drop_masks_w_hh_as_dropconnect():
    """One Bernoulli(1 − p) mask on W_hh per forward, kept entries scaled by 1 / (1 − p); none in eval."""
    torch.manual_seed(0)
    layer = cells.build("weight_drop_lstm", 20, 30, weight_drop=0.4)
    raw = layer.weight_hh_l0.detach()
    dropped = layer.recurrent_weight(0).detach()
    kept = dropped != 0
    torch.testing.assert_close(dropped[kept], raw[kept] / 0.6)
    assert abs((~kept).float().mean().item() - 0.4) < 0.03
    assert torch.equal(layer.eval().recurrent_weight(0), layer.weight_hh_l0)
