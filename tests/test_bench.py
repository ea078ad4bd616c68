"""The benchmarks run and report what they say (speed itself is measured, never asserted, in tests)."""

import json

import pytest

from lstm_nb import bench, gemm


def test_benchmark_reports_every_cell_against_both_references(capsys):
    cells = ["layernorm_lstm", "on_lstm", "mogrifier_low_rank", "mogrifier_products_only"]
    bench.main(["--shapes", "2x3x10", "--repeats", "1", "--json", "--cells", *cells])
    report = json.loads(capsys.readouterr().out)
    rows = report["rows"]
    assert report["machine"]["backend"] == gemm.backend()
    assert [r["cell"] for r in rows] == ["nn.LSTM", "lstm", *cells]
    by_cell = {r["cell"]: r for r in rows}
    assert by_cell["nn.LSTM"]["vs_nn.LSTM"] == 1.0 and by_cell["lstm"]["vs_lstm"] == 1.0
    for r in rows:
        assert r["ms"] > 0 and r["vs_lstm"] == r["ms"] / by_cell["lstm"]["ms"]
    assert by_cell["mogrifier_products_only"]["saved_MB"] == 0  # no autograd graph at all
    assert by_cell["layernorm_lstm"]["saved_MB"] > by_cell["lstm"]["saved_MB"]


@pytest.mark.skipif(not gemm.onednn_available(), reason="this torch build has no oneDNN linear")
def test_each_backend_is_timed_and_compared_with_its_own_lstm(capsys):
    bench.main(["--shapes", "2x3x10", "--repeats", "1", "--json", "--cells", "ur_lstm", "--gemm", "torch", "onednn"])
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [(r["cell"], r["gemm"]) for r in rows] == [("nn.LSTM", "-"), ("lstm", "torch"), ("lstm", "onednn"),
                                                      ("ur_lstm", "torch"), ("ur_lstm", "onednn")]
    lstm = {r["gemm"]: r["ms"] for r in rows if r["cell"] == "lstm"}
    for r in rows[1:]:
        assert r["vs_lstm"] == r["ms"] / lstm[r["gemm"]]
    assert gemm.backend() == gemm.resolve()  # the benchmark put the process's backend back


def test_language_model_benchmark_times_ours_against_the_plain_model(capsys, data_root):
    bench.main(["--lm", "--sizes", "8", "200", "--fraction", "0.002", "--repeats", "1", "--json"])
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["model"] for r in rows if r["size"] == 8] == ["plain PyTorch LM", "LanguageModel(lstm)",
                                                            "LanguageModel(nn.LSTM)"]
    at_200 = {r["model"]: r for r in rows if r["size"] == 200}
    # the Mogrifier notebook's cpu PTB models are 2 x 200, so they join that size
    assert {"notebook cpu: lstm", "notebook cpu: mogrifier"} <= set(at_200)
    assert at_200["plain PyTorch LM"]["parameters"] == at_200["LanguageModel(lstm)"]["parameters"]
    for r in rows:
        plain = next(p for p in rows if p["size"] == r["size"] and p["model"] == "plain PyTorch LM")
        assert r["s_per_epoch"] > 0 and r["vs_plain"] == r["s_per_epoch"] / plain["s_per_epoch"]
        assert r["saved_MB"] > 0
