"""The effective forget gate read off each cell (`lstm_nb.gates`) against its equation."""


import pytest
import torch

from lstm_nb import cells, gates


@pytest.mark.parametrize("cell", ["lstm", "nn.LSTM", "u_lstm", "chrono_lstm"])
def test_the_effective_forget_gate_of_an_lstm_is_sigma_of_its_forget_preactivation(cell):
    torch.manual_seed(0)
    layer = cells.build(cell, 3, 5, **({"t_max": 40} if cell == "chrono_lstm" else {}))
    x = torch.randn(4, 2, 3)
    h, _ = layer(x)
    previous = torch.cat([torch.zeros(1, 2, 5), h[:-1]])
    z = x @ layer.weight_ih_l0.T + layer.bias_ih_l0 + previous @ layer.weight_hh_l0.T + layer.bias_hh_l0
    expected = torch.sigmoid(z[..., 5:10]).reshape(-1, 5)
    assert torch.allclose(gates.effective_forget_gates(layer, x), expected, atol=1e-6)
    at_rest = gates.effective_forget_gates(layer, batch=3)
    assert torch.allclose(at_rest, torch.sigmoid(layer.bias_ih_l0 + layer.bias_hh_l0)[5:10].expand(3, 5), atol=1e-6)


def test_the_effective_forget_gate_of_a_ur_lstm_is_the_refined_gate():
    torch.manual_seed(0)
    layer = cells.build("ur_lstm", 3, 5)
    x = torch.randn(4, 2, 3)
    h, _ = layer(x)
    previous = torch.cat([torch.zeros(1, 2, 5), h[:-1]])
    z = x @ layer.weight_ih_l0.T + layer.bias_ih_l0 + previous @ layer.weight_hh_l0.T + layer.bias_hh_l0
    b_f = layer.ur_bias_l0
    r, f = torch.sigmoid(z[..., :5] - b_f), torch.sigmoid(z[..., 5:10] + b_f)
    g = r * (1 - (1 - f) ** 2) + (1 - r) * f ** 2  # Gu et al. (2020), eq. of the refine gate
    assert torch.allclose(gates.effective_forget_gates(layer, x), g.reshape(-1, 5), atol=1e-6)
    assert torch.allclose(gates.timescales(torch.tensor([0.0, 0.5, 0.99])), torch.tensor([1.0, 2.0, 100.0]))
