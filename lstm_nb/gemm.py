"""One matrix-product layer for the whole package: every recurrence (input projections, recurrent
products, their backward and the weight gradients over all T·B rows), the Mogrifier's maps and the
language model's decoder call `mm`, `addmm`, `linear` or `Reused` here. Only the `engine="autograd"`
reference paths, which the tests compare against, and ON-LSTM's tiny cumax product keep torch's own.

Why: on x86 CPUs, `torch.mm`, `addmm` and `F.linear` run Intel MKL, which takes slower code paths on
other vendors' processors (pytorch/builder#1245, intel/intel-extension-for-pytorch#475), while
`nn.LSTM` runs oneDNN, which does not. There our products can go to oneDNN too. The backend is chosen
by `LSTM_NB_GEMM`:

    torch    torch's own products everywhere (MKL on x86 CPUs, cuBLAS on CUDA)
    onednn   oneDNN's full-precision float32 linear for float32 CPU products of at least
             MIN_ONEDNN_PRODUCT multiply-adds; torch for everything else (float64, CUDA, autocast,
             small products, or a torch built without oneDNN)
    auto     (default) whichever of the two is faster on this machine, measured: both time the
             recurrences' typical products (`measure`), and the result is cached per CPU model, torch
             version and thread count (three CPU kinds gave three different rankings, so no vendor
             rule holds)

A run records the backend it used in its configuration file, and a resumed run uses the recorded one, whatever
`auto` would measure now, so it stays bit-identical. `describe()` names the choice and how it was
made; the benchmarks report it.

oneDNN's linear is reached through `torch.ops.mkldnn._linear_pointwise`, a private op that
torch.compile's CPU inductor uses. No public API routes float32 products to oneDNN at full precision
(`torch.backends.mkldnn.matmul.fp32_precision` only offers reduced-precision bf16/tf32 modes), so
this module checks the op exists and falls back to torch when it does not; the tests pin it equal to
`torch.mm`.
"""

import contextlib
import hashlib
import json
import os
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ENV = "LSTM_NB_GEMM"
BACKENDS = ("auto", "torch", "onednn")


def _cpuinfo(key):
    """The first value of `key` in /proc/cpuinfo (Linux), or "" where there is none."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.split(":", 1)[0].strip() == key:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def cpu_vendor():
    """The x86 vendor string ("GenuineIntel", "AuthenticAMD", ...), or "" when unknown or not x86."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return ""
    processor = platform.processor()  # Windows: "AMD64 Family 25 Model 33 Stepping 0, AuthenticAMD"
    return _cpuinfo("vendor_id") or next((v for v in ("GenuineIntel", "AuthenticAMD", "HygonGenuine")
                                          if v in processor), "")


def onednn_available():
    """Whether this torch build has oneDNN's CPU linear."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def resolve(requested=None):
    """The backend that `requested` (default: $LSTM_NB_GEMM, else "auto") means on this machine:
    "torch" or "onednn" (`auto`: the faster, measured once per machine). An unknown name is refused."""
    requested = (requested if requested is not None else os.environ.get(ENV, "auto")).strip().lower() or "auto"
    if requested not in BACKENDS:
        raise ValueError(f"{ENV}={requested!r} is not a backend; use one of {', '.join(BACKENDS)}")
    if not onednn_available():
        return "torch"
    if requested == "auto":
        return measured_choice()["backend"]
    return requested


# The products `auto` times: one step's recurrent product and one weight gradient over T·B = 700 rows, at
# the hidden sizes of the benchmarks (200, 650, 1150), forward as the recurrences call them.
MEASURED_SHAPES = [(20, 200, 800), (20, 650, 2600), (64, 1150, 4600), (800, 700, 200), (2600, 700, 650)]


def measure(repeats=5):
    """{backend: seconds}: the best of `repeats` interleaved rounds of every MEASURED_SHAPES product.
    The operands come from a generator of their own: the first run on a machine measures, and drawing
    them from the global stream would give that run other dropout masks than its re-runs."""
    generator = torch.Generator().manual_seed(0)
    operands = [(torch.randn(m, k, generator=generator), torch.randn(k, n, generator=generator))
                for m, k, n in MEASURED_SHAPES]
    best = {}
    for _ in range(repeats):
        for name in ("torch", "onednn"):
            with using(name):
                start = time.perf_counter()
                for a, b in operands:
                    for _ in range(3):
                        mm(a, b)
                best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
    return best


def _cache_file():
    key = f"{describe_cpu()}|{torch.__version__}|{torch.get_num_threads()}"
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "lstm_nb" / f"gemm-{hashlib.sha1(key.encode()).hexdigest()[:12]}.json", key


def measured_choice():
    """{"backend", "seconds", "key"}: `auto`'s choice on this machine, measured once, then read from the
    cache (a cache that cannot be written or read is measured again, never an error)."""
    path, key = _cache_file()
    try:
        cached = json.loads(path.read_text())
        if cached.get("key") == key and cached.get("backend") in ("torch", "onednn"):
            return cached
    except (OSError, ValueError):
        pass
    global _backend
    previous, _backend = _backend, "torch"  # `using` inside `measure` must not resolve `auto` again
    try:
        seconds = measure()
    finally:
        _backend = previous
    choice = {"backend": min(seconds, key=seconds.get), "seconds": seconds, "key": key}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(choice))
    except OSError:
        pass
    return choice


_backend = None  # resolved on first use: `auto` may measure, which no import should pay for


def backend():
    """The backend in use: "torch" or "onednn"."""
    global _backend
    if _backend is None:
        _backend = resolve()
    return _backend


def set_backend(requested):
    """Switch the backend for this process ("auto", "torch" or "onednn"); returns the previous one."""
    global _backend
    previous = backend()
    _backend = resolve(requested)
    return previous


@contextlib.contextmanager
def using(requested):
    """The backend `requested` inside the block (None: the current one), the previous one restored after it."""
    global _backend
    previous = set_backend(requested) if requested is not None else backend()
    try:
        yield
    finally:
        _backend = previous


def describe_cpu():
    return _cpuinfo("model name") or platform.processor()


def describe():
    """What the environment report and the benchmarks print: the backend, what asked for it (with
    `auto`, the measured seconds per backend), the CPU."""
    requested = os.environ.get(ENV, "auto")
    described = {"backend": backend(), "requested": requested, "cpu": describe_cpu(), "cpu_vendor": cpu_vendor()}
    if requested.strip().lower() in ("auto", "") and onednn_available():
        described["measured_seconds"] = measured_choice()["seconds"]
    return described


# Below this many multiply-adds a product stays on torch: oneDNN's fixed cost per call (~15 µs on the
# project's Intel Xeon) would exceed the product itself (the Mogrifier's low-rank maps, 20 × 195 × 18).
MIN_ONEDNN_PRODUCT = 1 << 20


def _onednn(rows, b, *others):
    """Whether a product of `rows` rows by b (K×N) goes to oneDNN: the backend says so, the operands (b
    and `others`) are float32 CPU tensors outside autocast (whose reduced precision belongs to torch's
    own ops), and the product has at least MIN_ONEDNN_PRODUCT multiply-adds."""
    return (backend() == "onednn" and all(t.device.type == "cpu" and t.dtype == torch.float32 for t in (b, *others))
            and not torch.is_autocast_enabled("cpu") and rows * b.numel() >= MIN_ONEDNN_PRODUCT)


_linear = torch.ops.mkldnn._linear_pointwise if onednn_available() else None


def _written(result, out):
    return result if out is None else out.copy_(result)


def _onednn_addmm(c, a, weight, out):
    """c + a weightᵀ by oneDNN, c a length-N bias or a full matrix, weight (N×K) plain or packed. A
    strided `a` (a weight gradient's dZᵀ), or a weight that is neither row- nor column-major (a slice of a
    wider buffer), is copied first: oneDNN reads such layouts up to 50× slower than it copies them."""
    a = a.contiguous()
    if not weight.is_mkldnn and not (weight.is_contiguous() or weight.t().is_contiguous()):
        weight = weight.contiguous()
    if c is None or c.dim() == 1:
        return _written(_linear(a, weight, c, "none", [], ""), out)
    return _written(_linear.binary(a, c.expand(a.shape[0], weight.shape[0]), weight, None, "add"), out)


def mm(a, b, out=None):
    """a @ b for 2-D a (M×K) and b (K×N); `out` as torch.mm's. No autograd: for hand-written backwards."""
    if not _onednn(a.shape[0], b, a):
        return torch.mm(a, b) if out is None else torch.mm(a, b, out=out)
    return _onednn_addmm(None, a, b.t(), out)


def addmm(c, a, b, out=None):
    """c + a @ b, with c a length-N bias or a full M×N matrix; `out` as torch.addmm's (it may be c).
    No autograd."""
    if not _onednn(a.shape[0], b, a, c):
        return torch.addmm(c, a, b) if out is None else torch.addmm(c, a, b, out=out)
    return _onednn_addmm(c, a, b.t(), out)


class Reused:
    """b (K×N) multiplied at every step of a loop, `reused.mm(a)` = a @ b for a of `rows` rows. oneDNN
    reorders a weight into its blocked layout at every call; here that is done once for the whole loop
    (on the project's Intel Xeon a 20 × 650 × 2600 product then takes 286 µs instead of 391 µs). For
    torch's products b is stored contiguous once: a loop's W_hhᵀ is a transposed view, and MKL's
    product with it was 1.3–2× slower at 20 rows on that Xeon (the same result bit for bit)."""

    def __init__(self, b, rows):
        self.b = b.contiguous()
        self.packed = (torch.ops.mkldnn._reorder_linear_weight(b.t().contiguous(), rows) if _onednn(rows, b)
                       else None)

    def mm(self, a, out=None):
        return mm(a, self.b, out) if self.packed is None else _onednn_addmm(None, a, self.packed, out)

    def addmm(self, c, a, out=None):
        return addmm(c, a, self.b, out) if self.packed is None else _onednn_addmm(c, a, self.packed, out)


class _Linear(torch.autograd.Function):
    """x Wᵀ + b through oneDNN, forward and backward: dx = dy W, dW = dyᵀ x over every row, db = Σ dy."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _linear(x, weight, bias, "none", [], "")

    @staticmethod
    def backward(ctx, dy):
        x, weight = ctx.saved_tensors
        rows, d_rows = x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1])
        dx = mm(d_rows, weight).view(x.shape) if ctx.needs_input_grad[0] else None
        dw = mm(d_rows.t(), rows) if ctx.needs_input_grad[1] else None
        db = d_rows.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return dx, dw, db


def linear(x, weight, bias=None):
    """F.linear(x, weight, bias) (x of any leading shape), differentiable, on the chosen backend."""
    if not _onednn(x.shape[:-1].numel(), weight, x, *(() if bias is None else (bias,))):
        return F.linear(x, weight, bias)
    return _Linear.apply(x, weight, bias)
