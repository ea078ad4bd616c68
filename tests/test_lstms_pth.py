"""The seed's benchmarks re-run with our cells, and the measurements of its four bugs: each number
is checked against what the bug (or its absence) must give."""

import pytest
import torch

from lstm_nb import lstms_pth
from lstm_nb.cells.dropout import unit_masks


def test_layernorm_makes_the_output_invariant_to_the_input_projection_scale():
    change = lstms_pth.layernorm_missing(size=16, scale=10.0)
    assert change["layernorm_lstm"] < 1e-3
    assert change["lstm"] > 0.1


def test_a_mask_shared_by_the_batch_leaves_a_fraction_p_of_weights_without_gradient():
    measured = lstms_pth.shared_batch_mask(size=16, batch=16, p=0.5, draws=100)
    assert measured["per_example"]["weights_without_gradient"] < 0.01  # p**batch
    assert measured["shared"]["weights_without_gradient"] == pytest.approx(0.5, abs=0.08)
    assert measured["shared"]["gradient_noise"] > measured["per_example"]["gradient_noise"]


def test_a_mask_outside_autograd_gives_a_wrong_gradient():
    assert lstms_pth.mask_outside_autograd(size=16, batch=8, p=0.5) > 0.1


def test_only_the_raw_cell_carry_keeps_the_memory_when_the_gates_say_keep():
    moved = lstms_pth.normalized_cell_carried(size=16, steps=5)
    assert moved["raw_c"] < 1e-6 and moved["normalized_c"] > 1.0


def test_capacity_floor_is_the_clamped_target_and_no_model_beats_it():
    floor = lstms_pth.capacity_floor(dataset_size=20, length=10, size=8)
    torch.manual_seed(1234)
    y = torch.rand(10, 20, 8).sum(0)
    assert floor == pytest.approx(torch.nn.functional.smooth_l1_loss(torch.ones_like(y), y).item())  # y > 1 always here
    assert lstms_pth.capacity("lstm", dataset_size=20, size=8, epochs=2) >= floor


def test_inference_timings_time_nn_lstm_once_per_size_as_the_reference():
    rows = lstms_pth.inference_timings(["lstm", "gal_lstm"], sizes=[8, 16], steps=3)
    assert [(r["size"], r["cell"]) for r in rows] == [(s, c) for s in (8, 16) for c in ("nn.LSTM", "lstm", "gal_lstm")]
    assert all(r["speedup"] == 1.0 for r in rows if r["cell"] == "nn.LSTM")


def test_pictured_masks_have_each_methods_structure():
    masks = unit_masks(steps=12, batch=16, units=6, p=0.5)  # (units, batch, steps)
    for name in ("Gal (h and x)", "Moon (c)"):  # per example, fixed over time
        m = masks[name]
        assert bool((m == m[..., :1]).all()) and not bool((m == m[:, :1]).all())
    for name in ("Semeniuta (g)", "zoneout (c)"):  # fresh every step
        assert not bool((masks[name] == masks[name][..., :1]).all())
    seed = masks["lstms.pth (Gal, Moon)"]  # one (1, H) mask: the same for every example and step
    assert bool((seed == seed[:, :1, :1]).all()) and 0 < seed[:, 0, 0].sum() < 6
