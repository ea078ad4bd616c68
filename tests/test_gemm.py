"""The matrix-product layer (lstm_nb.gemm): which backend it picks, and that every product it computes,
on either backend, equals torch's (float32 to 1e-5 of the result's scale, float64 to 1e-10), values and
gradients, down to whole cells and language models."""

import pytest
import torch
import torch.nn.functional as F

from lstm_nb import cells, gemm, models

needs_onednn = pytest.mark.skipif(not gemm.onednn_available(), reason="this torch build has no oneDNN linear")
BACKENDS = ["torch", pytest.param("onednn", marks=needs_onednn)]


@pytest.fixture(params=BACKENDS)
def backend(request, every_product):
    with gemm.using(request.param):
        yield request.param


@pytest.fixture
def every_product(monkeypatch):
    """oneDNN for every product, however small, so that the tests' small shapes go through it too."""
    monkeypatch.setattr(gemm, "MIN_ONEDNN_PRODUCT", 0)


def assert_same_product(got, want):
    scale = want.abs().max().item() or 1.0
    tol = 1e-5 if want.dtype == torch.float32 else 1e-10
    assert got.shape == want.shape and got.dtype == want.dtype
    assert (got - want).abs().max().item() <= tol * scale


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty per-machine cache of `auto`'s measurement."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(gemm.ENV, raising=False)
    return tmp_path


@pytest.mark.parametrize("faster", ["torch", "onednn"])
def test_auto_picks_the_measured_faster_backend_once_per_machine(cache, monkeypatch, faster):
    monkeypatch.setattr(gemm, "onednn_available", lambda: True)
    calls = []

    def measure():
        calls.append(1)
        return {"torch": 1.0, "onednn": 2.0} if faster == "torch" else {"torch": 2.0, "onednn": 1.0}

    monkeypatch.setattr(gemm, "measure", measure)
    assert gemm.resolve() == faster and gemm.resolve("auto") == faster
    assert len(calls) == 1  # the second call read the cache
    assert gemm.resolve("torch") == "torch" and gemm.resolve(" ONEDNN ") == "onednn"  # overridable
    monkeypatch.setattr(gemm, "onednn_available", lambda: False)
    assert gemm.resolve("auto") == "torch" and gemm.resolve("onednn") == "torch"  # missing op: torch


def test_the_measurement_times_both_backends_and_a_broken_cache_is_measured_again(cache):
    seconds = gemm.measure(repeats=1)
    assert set(seconds) == {"torch", "onednn"} and all(s > 0 for s in seconds.values())
    path, _ = gemm._cache_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    assert gemm.measured_choice()["backend"] in ("torch", "onednn")
    assert gemm.measured_choice() == __import__("json").loads(path.read_text())  # rewritten, then read


def test_the_environment_variable_chooses_and_a_bad_name_is_refused(monkeypatch):
    monkeypatch.setenv(gemm.ENV, "torch")
    assert gemm.resolve() == "torch"
    monkeypatch.setenv(gemm.ENV, "mkl")
    with pytest.raises(ValueError, match="LSTM_NB_GEMM='mkl' is not a backend; use one of auto, torch, onednn"):
        gemm.resolve()


def test_the_backend_is_reported(backend):
    assert gemm.backend() == backend
    assert gemm.describe()["backend"] == backend


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mm_and_addmm_equal_torch_on_every_layout(backend, dtype):
    torch.manual_seed(0)
    a, b = torch.randn(20, 650, dtype=dtype), torch.randn(650, 260, dtype=dtype)
    at, bt = torch.randn(650, 20, dtype=dtype).t(), torch.randn(260, 650, dtype=dtype).t()  # transposed views
    bias, full = torch.randn(260, dtype=dtype), torch.randn(20, 260, dtype=dtype)
    for x, w in ((a, b), (at, b), (a, bt), (at, bt)):
        reused = gemm.Reused(w, rows=20)  # packed once by oneDNN, for a loop's many products
        for got in (gemm.mm(x, w), reused.mm(x)):
            assert_same_product(got, torch.mm(x, w))
        for c in (bias, full):
            for got in (gemm.addmm(c, x, w), reused.addmm(c, x)):
                assert_same_product(got, torch.addmm(c, x, w))
    out = torch.empty(20, 260, dtype=dtype)
    assert gemm.mm(a, b, out=out) is out
    assert_same_product(out, a @ b)
    want = full + a @ b
    assert gemm.addmm(full, a, b, out=full) is full  # accumulating in place, as the backwards do
    assert_same_product(full, want)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_equals_f_linear_with_its_gradients(backend, dtype, with_bias):
    torch.manual_seed(1)
    x = torch.randn(35, 20, 200, dtype=dtype, requires_grad=True)  # (T, B, I): every leading dimension
    w = torch.randn(1000, 200, dtype=dtype, requires_grad=True)
    b = torch.randn(1000, dtype=dtype, requires_grad=True) if with_bias else None
    leaves = [x, w] + ([b] if with_bias else [])
    d_y = torch.randn(35, 20, 1000, dtype=dtype)
    ours = gemm.linear(x, w, b)
    want = F.linear(x, w, b)
    assert_same_product(ours, want)
    for got, expected in zip(torch.autograd.grad(ours, leaves, d_y), torch.autograd.grad(want, leaves, d_y)):
        assert_same_product(got, expected)


@needs_onednn
def test_onednn_computes_large_float32_products_and_leaves_the_rest_to_torch(monkeypatch):
    calls = []
    real = gemm._linear

    class Spy:
        def __call__(self, *args):
            calls.append("linear")
            return real(*args)

        def binary(self, *args):
            calls.append("binary")
            return real.binary(*args)

    monkeypatch.setattr(gemm, "_linear", Spy())
    with gemm.using("onednn"):
        a, b = torch.randn(64, 128), torch.randn(128, 128)  # 64 · 128 · 128 = MIN_ONEDNN_PRODUCT multiply-adds
        gemm.mm(a, b)
        gemm.addmm(torch.randn(64, 128), a, b)
        gemm.Reused(b, rows=64).mm(a)
        assert calls == ["linear", "binary", "linear"]
        gemm.mm(a[:63], b)  # one row fewer: oneDNN's fixed cost per call would exceed the product
        gemm.Reused(b, rows=63).mm(a[:63])
        gemm.mm(a.double(), b.double())  # oneDNN has no float64 linear
        with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast's precision is torch's business
            assert gemm.linear(a, b.t()).dtype == torch.bfloat16
        assert calls == ["linear", "binary", "linear"]


def _training_step(module, inputs):
    torch.manual_seed(2)
    out = module(inputs)[0]
    grads = torch.autograd.grad(out.square().sum(), [inputs, *module.parameters()])
    return [out, *grads]


@needs_onednn
@pytest.mark.usefixtures("every_product")
@pytest.mark.parametrize("name, options", [("lstm", {}), ("gal_lstm", {"dropout": 0.3}), ("ur_lstm", {}),
                                           ("layernorm_lstm", {}), ("on_lstm", {"chunk_size": 4}),
                                           ("mogrifier", {"rounds": 5, "rank": 6})])
def test_a_cell_trains_the_same_on_both_backends(name, options):
    """Forward and every gradient of a whole layer (input projection, recurrence, hand-written backward)
    under oneDNN equal torch's; and oneDNN is deterministic: the same step twice is bit-identical."""
    torch.manual_seed(0)
    layer = cells.build(name, 16, 24, num_layers=2, **options)
    x = torch.randn(7, 5, 16, requires_grad=True)
    with gemm.using("torch"):
        want = _training_step(layer, x)
    with gemm.using("onednn"):
        got, again = _training_step(layer, x), _training_step(layer, x)
    for g, w, a in zip(got, want, again):
        assert_same_product(g, w)
        assert torch.equal(g, a)


@needs_onednn
@pytest.mark.usefixtures("every_product")
def test_the_language_model_decoder_trains_the_same_on_both_backends():
    torch.manual_seed(0)
    model = models.LanguageModel(50, 12, 12, num_layers=2, tie_weights=True)
    tokens = torch.randint(50, (9, 4))
    results = {}
    for name in ("torch", "onednn"):
        with gemm.using(name):
            logits, _ = model(tokens)
            results[name] = [logits, *torch.autograd.grad(logits.logsumexp(-1).sum(), list(model.parameters()))]
    for got, want in zip(results["onednn"], results["torch"]):
        assert_same_product(got, want)


def test_measuring_the_backends_leaves_the_global_random_stream_alone():
    # a run's first use of `auto` measures, after its seed is set: its masks must not depend on the cache
    torch.manual_seed(3)
    expected = torch.rand(5)
    torch.manual_seed(3)
    gemm.measure(repeats=1)
    assert torch.equal(torch.rand(5), expected)
