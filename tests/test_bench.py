"""The benchmark runs and reports what it says (speed itself is measured, never asserted, in tests)."""

import json

from lstm_nb import bench


def test_benchmark_reports_every_cell_against_both_references(capsys):
    cells = ["layernorm_lstm", "on_lstm", "mogrifier_low_rank", "mogrifier_products_only"]
    bench.main(["--shapes", "2x3x10", "--repeats", "1", "--json", "--cells", *cells])
    rows = json.loads(capsys.readouterr().out)
    assert [r["cell"] for r in rows] == ["nn.LSTM", "lstm", *cells]
    by_cell = {r["cell"]: r for r in rows}
    assert by_cell["nn.LSTM"]["vs_nn.LSTM"] == 1.0 and by_cell["lstm"]["vs_lstm"] == 1.0
    for r in rows:
        assert r["ms"] > 0 and r["vs_lstm"] == r["ms"] / by_cell["lstm"]["ms"]
    assert by_cell["mogrifier_products_only"]["saved_MB"] == 0  # no autograd graph at all
    assert by_cell["layernorm_lstm"]["saved_MB"] > by_cell["lstm"]["saved_MB"]
