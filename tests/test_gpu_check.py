"""The GPU check runs its checks on the CPU too, and says plainly when there is no GPU."""

import torch

from lstm_nb import gpu_check


def test_without_a_gpu_it_says_so_and_exits_zero(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == 0
    assert "no GPU" in capsys.readouterr().out


def test_its_checks_pass_on_the_cpu_and_end_in_one_table(capsys):
    assert gpu_check.main(["--device", "cpu", "--cells", "lstm", "lstm_library", "ur_lstm", "mogrifier_low_rank",
                           "--skip", "smoke", "bench"]) == 0
    out = capsys.readouterr().out
    assert "| cell vs float64 CPU | ur_lstm |" in out and "| bfloat16 vs float32 |" in out
    assert "5 passed, 0 failed" in out


def test_a_wrong_cell_fails_the_check(monkeypatch):
    real, built = gpu_check.cells.build, []

    def broken(name, *args, **kwargs):
        layer = real(name, *args, **kwargs)
        built.append(layer)
        if len(built) == 2:  # the device's layer (the first is the float64 reference): outputs 1 % off
            original = layer.forward

            def off(*a, **k):
                out, state = original(*a, **k)
                return out * 1.01, state

            layer.forward = off
        return layer

    monkeypatch.setattr(gpu_check.cells, "build", broken)
    error, ok = gpu_check.check_cell("lstm", torch.device("cpu"))
    assert not ok and error > 1e-3
