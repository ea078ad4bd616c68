"""The time loop every recurrent layer runs on.

A layer's input projection ``x_t W_ihᵀ + b`` does not depend on the state, so it is computed for all
time steps in one GEMM before the loop (``xw``, shape ``(T, B, G)``). Inside the loop only the recurrent
projection ``h_{t-1} W_hhᵀ`` and a *pointwise step* remain. The backward pass mirrors that: only
``dZ_t W_hh`` is sequential, and the weight gradient ``dW_hh = Σ_t dZ_tᵀ h_{t-1}`` is one GEMM over all
``T·B`` rows once the loop is done (the trick that makes a Python loop competitive with oneDNN/cuDNN).

Two engines implement that contract:

* :func:`lstm_recurrence` — the standard LSTM step with a hand-written backward (fast path).
* :func:`recurrence` — any pointwise step ``step(xw_t, hw_t, h, c, *extras_t, *params) -> (h, c)``;
  its backward recomputes the step under autograd locally, one time step at a time, while the GEMMs
  stay batched. Variants (UR-LSTM, LayerNorm, recurrent dropout, ...) only write the step. Two faster
  backwards: a *separable* step (unit j depends only on unit j) gets all its derivatives from two
  batched autograd calls; a step that mixes units (LayerNorm, cumax) may bring its own hand-written
  `step_forward` / `step_backward`.

Both have a plain-autograd twin (``engine="autograd"``) that the tests use as the reference.
"""

import torch

from . import gemm


def lstm_pointwise(z, c_prev, cap_input_gate=False):
    """nn.LSTM's gate math on pre-activations z = [i, f, g, o] (B×4H); the input gate capped at 1 − f
    with `cap_input_gate`."""
    i, f, g, o = z.chunk(4, 1)
    i, f = torch.sigmoid(i), torch.sigmoid(f)
    if cap_input_gate:
        i = torch.minimum(i, 1 - f)
    c = f * c_prev + i * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


def lstm_activations_(a):
    """σ, σ, tanh, σ in place on the [i, f, g, o] blocks of pre-activations a (B×4H); returns the four views."""
    H = a.shape[1] // 4
    a[:, :2 * H].sigmoid_()
    a[:, 2 * H:3 * H].tanh_()
    a[:, 3 * H:].sigmoid_()
    return a.chunk(4, 1)


def lstm_activation_derivatives(a):
    """[σ'(i), σ'(f), tanh'(g), σ'(o)] from the activations a = [σ(i), σ(f), tanh(g), σ(o)] (…×4H):
    σ' = a(1 − a), tanh' = 1 − g². No incoming gradient needed, so a backward computes them for every
    step at once before its loop."""
    H = a.shape[-1] // 4
    d = a - a.square()
    d[..., 2 * H:3 * H] = 1 - a[..., 2 * H:3 * H].square()
    return d


def lstm_step_forward(a, c_prev, c, tc, h, cap_input_gate=False):
    """One LSTM step in place. a: pre-activations [i, f, g, o] (B×4H), overwritten by σ(i), σ(f), tanh(g),
    σ(o); writes c = f ⊙ c_prev + i ⊙ g (i → min(i, 1 − f) with `cap_input_gate`), tc = tanh(c), h = o ⊙ tc."""
    i, f, g, o = lstm_activations_(a)
    if cap_input_gate:
        i = torch.minimum(i, 1 - f)
    torch.mul(f, c_prev, out=c)
    c.addcmul_(i, g)
    torch.tanh(c, out=tc)
    torch.mul(o, tc, out=h)


def lstm_step_backward(a, d_act, dh_dc, c_prev, tc, dh, dc, dz, cap_input_gate=False):
    """Backward of `lstm_step_forward` from its saved activations a, c_prev and tc = tanh(c), the
    activations' derivatives d_act and ∂h/∂c = o (1 − tc²) (see `lstm_backward_factors`): writes the
    pre-activation gradient into dz (B×4H) and returns dc_prev."""
    i, f, g, _ = a.chunk(4, 1)
    di, df, dg, do = dz.chunk(4, 1)
    dc = torch.addcmul(dc, dh, dh_dc)
    torch.mul(dh, tc, out=do)
    torch.mul(dc, c_prev, out=df)
    if cap_input_gate:  # i_eff = min(i, 1 − f): where capped, its gradient goes to f with a minus sign
        capped = i > 1 - f
        d_ieff = dc * g
        df.sub_(d_ieff * capped)
        torch.mul(d_ieff, ~capped, out=di)
        i = torch.minimum(i, 1 - f)
    else:
        torch.mul(dc, g, out=di)
    torch.mul(dc, i, out=dg)
    dz.mul_(d_act)
    return dc * f


def lstm_memory_derivatives(z, c_prev, g_mask=None):
    """For the separable LSTM family's `step_jacobian`, from pre-activations z = [i, f, g, o] (…×4H):
    the memory c̃ = σ(f) ⊙ c_prev + σ(i) ⊙ (m ⊙ tanh(g)) (m = g_mask, or 1) and its derivatives per unit:
    ∂c̃/∂z = [m g σ'(z_i), c_prev σ'(z_f), σ(i) m tanh'(z_g), 0] (…×4H), ∂c̃/∂c_prev = σ(f); and σ(o),
    σ'(z_o) for the read-out. Returns (∂c̃/∂z, σ(f), c̃, σ(o), σ'(z_o))."""
    H = z.shape[-1] // 4
    a = torch.sigmoid(z)  # the g block's σ is not used
    i, f, _, o = a.chunk(4, -1)
    d = a - a.square()  # σ'
    g = torch.tanh(z[..., 2 * H:3 * H])
    d_g = 1 - g.square()
    if g_mask is not None:
        g, d_g = g * g_mask, d_g * g_mask
    jc = torch.cat([g, c_prev, i * d_g, torch.zeros_like(g)], -1)
    jc[..., :2 * H] *= d[..., :2 * H]
    return jc, f, torch.addcmul(f * c_prev, i, g), o, d[..., 3 * H:]


def read_out_jacobian(jc, jc_c, c, o, d_o, scale=None):
    """For a separable step's `step_jacobian`: ∂h/∂z and ∂h/∂c_prev of h = s ⊙ σ(o) ⊙ tanh(c) (s = scale,
    or 1), from c's own derivatives jc (…×n·H, its o block, the 4th, 0) and jc_c = ∂c/∂c_prev:
    ∂h/∂· = s σ(o) (1 − tanh²(c)) ∂c/∂·, and ∂h/∂z_o = s tanh(c) σ'(z_o)."""
    H = c.shape[-1]
    tc = torch.tanh(c)
    dh_dc = o * (1 - tc.square())
    jh_o = tc * d_o
    if scale is not None:
        dh_dc, jh_o = dh_dc * scale, jh_o * scale
    jh = jc * dh_dc.repeat(1, jc.shape[-1] // H)
    jh[..., 3 * H:4 * H] = jh_o
    return jh, dh_dc * jc_c


def lstm_backward_factors(acts, tcs):
    """For every step at once (T, B, ·): the activations' derivatives and ∂h_t/∂c_t = o (1 − tanh²(c))."""
    H = tcs.shape[-1]
    return lstm_activation_derivatives(acts), acts[..., 3 * H:] * (1 - tcs.square())


class _LSTMFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xw, h0, c0, w_hh, h_mask=None, cap_input_gate=False):
        T, B, G = xw.shape
        H = G // 4
        w_t = gemm.Reused(w_hh.t(), B)
        acts = xw.new_empty(T, B, G)  # σ(i), σ(f), tanh(g), σ(o)
        hs = xw.new_empty(T + 1, B, H)
        cs = xw.new_empty(T + 1, B, H)
        tcs = xw.new_empty(T, B, H)  # tanh(c_t), reused by the backward
        hs[0] = h0
        cs[0] = c0
        for xw_t, a, h_prev, h, c_prev, c, tc in zip(*step_views(xw, acts, hs[:T], hs[1:], cs[:T], cs[1:], tcs)):
            w_t.addmm(xw_t, h_prev if h_mask is None else h_prev * h_mask, out=a)
            lstm_step_forward(a, c_prev, c, tc, h, cap_input_gate)
        ctx.cap_input_gate = cap_input_gate
        ctx.save_for_backward(acts, hs, cs, tcs, w_hh, h_mask)
        return hs[1:], hs[T].clone(), cs[T].clone()

    @staticmethod
    def backward(ctx, d_out, d_hT, d_cT):
        acts, hs, cs, tcs, w_hh, h_mask = ctx.saved_tensors
        T = acts.shape[0]
        d_out = d_out if d_out is not None else torch.zeros_like(hs[1:])
        dh = d_hT if d_hT is not None else torch.zeros_like(hs[0])
        dc = d_cT if d_cT is not None else torch.zeros_like(cs[0])
        dz = torch.empty_like(acts)
        w = gemm.Reused(w_hh, dh.shape[0])
        steps = zip(*step_views(d_out, acts, *lstm_backward_factors(acts, tcs), cs, tcs, dz))
        for d_out_t, a, d_act, dh_dc, c_prev, tc, dz_t in reversed(list(steps)):
            dc = lstm_step_backward(a, d_act, dh_dc, c_prev, tc, dh + d_out_t, dc, dz_t, ctx.cap_input_gate)
            dh = w.mm(dz_t) if h_mask is None else w.mm(dz_t) * h_mask
        h_in = hs[:T] if h_mask is None else hs[:T] * h_mask
        d_w_hh = weight_gradient(dz, h_in)
        return dz, dh, dc, d_w_hh, None, None


def lstm_recurrence(xw, h0, c0, w_hh, engine="fused", h_mask=None, cap_input_gate=False):
    """Run the standard LSTM over precomputed input projections.

    xw: (T, B, 4H) = x W_ihᵀ + b_ih + b_hh; h0, c0: (B, H); w_hh: (4H, H); h_mask: optional (B, H)
    multiplying h_{t-1} where it feeds the gates (Gal & Ghahramani's recurrent dropout mask);
    `cap_input_gate`: c_t = f ⊙ c_{t-1} + min(i, 1 − f) ⊙ g (Melis et al.'s LSTM, the Mogrifier's
    baseline). Returns outputs (T, B, H) and the final (h, c).
    """
    if engine == "fused":
        out, h, c = _LSTMFunction.apply(xw, h0, c0, w_hh, h_mask, cap_input_gate)
        return out, (h, c)
    check_engine(engine)
    h, c, outs = h0, c0, []
    for xw_t in xw.unbind(0):
        h_in = h if h_mask is None else h * h_mask
        h, c = lstm_pointwise(xw_t + h_in @ w_hh.t(), c, cap_input_gate)
        outs.append(h)
    return torch.stack(outs), (h, c)


def weight_gradient(d_out, inputs):
    """Σ_t d_out_tᵀ inputs_t: a weight's gradient as one product over all T·B rows of (T, B, ·) tensors."""
    return gemm.mm(d_out.reshape(-1, d_out.shape[-1]).t(), inputs.reshape(-1, inputs.shape[-1]))


def step_views(*sequences):
    """Each (T, …) tensor as its T per-step views, made once (indexing inside a loop costs more than the
    small per-step ops); None stays None."""
    return [None if v is None else v.unbind(0) for v in sequences]


def check_engine(engine, allowed=("fused", "autograd")):
    """Refuse an engine name outside `allowed`: "fused" (hand-written backward), "autograd" (the
    reference) and, for cells whose math is exactly nn.LSTM's, "library" (`library_lstm`)."""
    if engine not in allowed:
        raise ValueError(f"unknown engine {engine!r}; use {' or '.join(repr(e) for e in allowed)}")


def library_lstm(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM layer on the library's fused kernel (oneDNN or ATen on CPU, cuDNN on CUDA), reached
    through nn.LSTM's functional path, with the weights given: a weight-dropped W_hh runs here too.

    x: (T, B, I); h0, c0: (B, H). Returns outputs (T, B, H) and the final (h, c). cuDNN keeps what its
    backward needs only in training mode, so the kernel is told to train whenever gradients are on
    (dynamic evaluation takes gradients of a model in eval mode); with no dropout inside the kernel
    that flag changes nothing else.
    """
    weights = [w_ih, w_hh] if b_ih is None else [w_ih, w_hh, b_ih, b_hh]
    if x.is_cuda:  # one contiguous chunk, as nn.LSTM's flatten_parameters gives cuDNN
        weights = _contiguous_chunk(weights)
    out, h, c = torch._VF.lstm(x, (h0.unsqueeze(0), c0.unsqueeze(0)), weights, b_ih is not None, 1, 0.0,
                               torch.is_grad_enabled(), False, False)
    return out, (h[0], c[0])


def _contiguous_chunk(weights):
    """The weights as views of one buffer (differentiable: the copy's gradient flows back to each)."""
    flat = torch.cat([w.reshape(-1) for w in weights])
    views, start = [], 0
    for w in weights:
        views.append(flat[start:start + w.numel()].view_as(w))
        start += w.numel()
    return views


def _per_step(extras, t):
    return [e[t] for e in extras]


class _StepFunction(torch.autograd.Function):
    """Any pointwise step; backward = local autograd per step + one batched GEMM for dW_hh."""

    @staticmethod
    def forward(ctx, step, xw, h0, c0, w_hh, h_mask, extras, jacobian, *params):
        w_t = gemm.Reused(w_hh.t(), h0.shape[0])
        h, c, hs, cs, hws = h0, c0, [h0], [c0], torch.empty_like(xw)
        for t, (xw_t, hw) in enumerate(zip(*step_views(xw, hws))):
            w_t.mm(h if h_mask is None else h * h_mask, out=hw)
            h, c = step(xw_t, hw, h, c, *_per_step(extras, t), *params)
            hs.append(h)
            cs.append(c)
        hs, cs = torch.stack(hs), torch.stack(cs)
        ctx.step, ctx.extras, ctx.jacobian = step, extras, jacobian
        ctx.save_for_backward(xw, hs, cs, hws, w_hh, h_mask, *params)
        return hs[1:], h.clone(), c.clone()

    @staticmethod
    def backward(ctx, d_out, d_hT, d_cT):
        xw, hs, cs, hws, w_hh, h_mask, *params = ctx.saved_tensors
        T = xw.shape[0]
        dh = d_hT if d_hT is not None else torch.zeros_like(hs[0])
        dc = d_cT if d_cT is not None else torch.zeros_like(cs[0])
        d_xw, d_hw = torch.empty_like(xw), torch.empty_like(hws)
        d_params = [torch.zeros_like(p) for p in params]
        local_params = [p.detach().requires_grad_() for p in params]
        w = gemm.Reused(w_hh, dh.shape[0])
        for t in range(T - 1, -1, -1):
            if d_out is not None:
                dh = dh + d_out[t]
            inputs = [v.detach().requires_grad_() for v in (xw[t], hws[t], hs[t], cs[t])]
            with torch.enable_grad():
                h, c = ctx.step(*inputs, *_per_step(ctx.extras, t), *local_params)
                grads = torch.autograd.grad((h, c), inputs + local_params, (dh, dc), allow_unused=True)
            g_xw, g_hw, g_h, g_c, *g_params = (torch.zeros_like(v) if g is None else g
                                               for g, v in zip(grads, inputs + local_params))
            d_xw[t], d_hw[t] = g_xw, g_hw
            for acc, g in zip(d_params, g_params):
                acc += g
            back = w.mm(g_hw)
            dh = g_h + (back if h_mask is None else back * h_mask)
            dc = g_c
        h_in = hs[:T] if h_mask is None else hs[:T] * h_mask
        d_w_hh = weight_gradient(d_hw, h_in)
        return (None, d_xw, dh, dc, d_w_hh, None, None, None, *d_params)


class _SeparableStepFunction(_StepFunction):
    """A step that reads xw and hw only through their sum z = xw + hw, and whose every input element of
    unit j (in any gate block) influences only unit j of (h, c): the LSTM family's gates, masks and
    zoneout; not LayerNorm or cumax. Its Jacobian is then diagonal per unit, so two autograd calls over
    all T·B rows at once give every ∂h_j/∂· and ∂c_j/∂·, and the loop backward is a few elementwise
    products plus dZ_t W_hh. A cell may give those derivatives itself (`jacobian`, see `recurrence`)."""

    @staticmethod
    def backward(ctx, d_out, d_hT, d_cT):
        xw, hs, cs, hws, w_hh, h_mask = ctx.saved_tensors
        T, B, G = xw.shape
        H = hs.shape[-1]
        rows = [v.reshape(T * B, v.shape[-1]).detach().requires_grad_() for v in (hws, hs[:T], cs[:T])]
        extras = [e.reshape(T * B, e.shape[-1]) for e in ctx.extras]
        if ctx.jacobian is not None:  # the cell's own derivatives: no autograd graph over all rows
            jh, jc = ctx.jacobian((xw + hws).reshape(T * B, G), rows[2], *extras)
        else:
            with torch.enable_grad():
                h, c = ctx.step(xw.reshape(T * B, G), *rows, *extras)
                jh = torch.autograd.grad(h, rows, torch.ones_like(h), retain_graph=True, allow_unused=True)
                jc = torch.autograd.grad(c, rows, torch.ones_like(c), allow_unused=True)

        def per_unit(j, v):  # (T·B, n·H) → (T, B, n, H); unused inputs get zeros
            return (torch.zeros_like(v) if j is None else j).reshape(T, B, -1, H)

        uses_h = jh[1] is not None or jc[1] is not None  # zoneout keeps h_{t-1}
        (jh_z, jh_h, jh_c), (jc_z, jc_h, jc_c) = ([per_unit(j, v) for j, v in zip(js, rows)] for js in (jh, jc))
        # dh[t], dc[t]: the gradients reaching h_t, c_t (t = 0 … T), filled from the end.
        dh, dc = hs.new_zeros(T + 1, B, H), cs.new_zeros(T + 1, B, H)
        if d_hT is not None:
            dh[T] = d_hT
        if d_cT is not None:
            dc[T] = d_cT
        if d_out is not None:
            dh[1:] += d_out
        d_z = torch.empty_like(hws)  # = d_xw = d_hw
        w = gemm.Reused(w_hh, B)
        views = step_views(dh, dh[:, :, None], dc[:, :, None], d_z, d_z.view(T, B, -1, H), jh_z, jc_z, jh_c, jc_c,
                           jh_h, jc_h)
        dh_v, dh3, dc3, d_z_v, d_z4, jh_z, jc_z, jh_c, jc_c, jh_h, jc_h = views
        for s in range(T - 1, -1, -1):
            g_h, g_c = dh3[s + 1], dc3[s + 1]
            torch.mul(jh_z[s], g_h, out=d_z4[s]).addcmul_(jc_z[s], g_c)
            torch.mul(jh_c[s], g_h, out=dc3[s]).addcmul_(jc_c[s], g_c)
            if h_mask is None:
                w.addmm(dh_v[s], d_z_v[s], out=dh_v[s])
            else:
                dh_v[s].addcmul_(w.mm(d_z_v[s]), h_mask)
            if uses_h:
                dh3[s].addcmul_(jh_h[s], g_h).addcmul_(jc_h[s], g_c)
        h_in = hs[:T] if h_mask is None else hs[:T] * h_mask
        d_w_hh = weight_gradient(d_z, h_in)
        return (None, d_z, dh[0], dc[0], d_w_hh, None, None, None)


class _HandWrittenStepFunction(torch.autograd.Function):
    """A step with its own backward, `kernel.step_forward` / `kernel.step_backward`: no autograd at all
    inside the loop, and the per-step results written in place into (T, B, ·) buffers (stacking them
    afterwards would cost a copy each). For steps that mix units (LayerNorm statistics, cumax), where
    neither the per-step autograd of `_StepFunction` nor the separable shortcut applies."""

    @staticmethod
    def forward(ctx, kernel, xw, h0, c0, w_hh, h_mask, extras, jacobian, *params):
        T, B, G = xw.shape
        H = h0.shape[-1]
        hs, cs, hws = xw.new_empty(T + 1, B, H), xw.new_empty(T + 1, B, H), xw.new_empty(T, B, G)
        own = [xw.new_empty(T, B, width) for width in kernel.saved_widths(G, H)]
        hs[0], cs[0] = h0, c0
        w_t = gemm.Reused(w_hh.t(), B)
        steps = zip(*step_views(xw, hws, hs[:T], hs[1:], cs[:T], cs[1:], *own))
        for t, (xw_t, hw, h_prev, h, c_prev, c, *own_t) in enumerate(steps):
            w_t.mm(h_prev if h_mask is None else h_prev * h_mask, out=hw)
            kernel.step_forward(xw_t, hw, c_prev, h, c, own_t, *_per_step(extras, t), *params)
        ctx.kernel, ctx.extras, ctx.n_own = kernel, extras, len(own)
        ctx.save_for_backward(hs, cs, hws, w_hh, h_mask, *own, *params)
        return hs[1:], hs[T].clone(), cs[T].clone()

    @staticmethod
    def backward(ctx, d_out, d_hT, d_cT):
        hs, cs, hws, w_hh, h_mask, *rest = ctx.saved_tensors
        own, params = rest[:ctx.n_own], rest[ctx.n_own:]
        T = hws.shape[0]
        saved = [hws, cs[:T], cs[1:], *own]
        dh = d_hT if d_hT is not None else torch.zeros_like(hs[0])
        dc = d_cT if d_cT is not None else torch.zeros_like(cs[0])
        d_xw, d_hw, kept = torch.empty_like(hws), [], []
        w = gemm.Reused(w_hh, dh.shape[0])
        steps = list(zip(*step_views(d_xw, *saved, *ctx.kernel.backward_factors(saved, ctx.extras))))
        for t in range(T - 1, -1, -1):
            if d_out is not None:
                dh = dh + d_out[t]
            d_xw_t, *saved_t = steps[t]
            g_hw, dc, k = ctx.kernel.step_backward(dh, dc, saved_t, d_xw_t, *_per_step(ctx.extras, t), *params)
            back = w.mm(g_hw)
            dh = back if h_mask is None else back * h_mask
            d_hw.append(g_hw)
            kept.append(k)
        # A step whose recurrent projection enters like the input one (no LayerNorm) returns d_xw_t itself.
        d_hw = d_xw if d_hw[-1] is steps[0][0] else torch.stack(d_hw[::-1])
        kept = [torch.stack(v[::-1]) for v in zip(*kept)]
        d_params = ctx.kernel.params_backward(saved, kept, d_xw, *params) if params else []
        h_in = hs[:T] if h_mask is None else hs[:T] * h_mask
        d_w_hh = weight_gradient(d_hw, h_in)
        return (None, d_xw, dh, dc, d_w_hh, None, None, None, *d_params)


def recurrence(step, xw, h0, c0, w_hh, params=(), extras=(), h_mask=None, engine="fused", separable=False,
               kernel=None, jacobian=None):
    """Run `step` over time: h_t, c_t = step(xw_t, h_{t-1}' W_hhᵀ, h_{t-1}, c_{t-1}, *extras[t], *params)
    with h_{t-1}' = h_{t-1} ⊙ h_mask when a mask is given.

    xw: (T, B, G) input projections; extras: tensors indexed by time step (random masks, sampled once
    per forward so the backward sees the same ones); params: tensors the step differentiates.
    `separable=True` declares that the step reads xw and hw only through xw + hw and that unit j of
    (h, c) depends only on unit j of every input (G = n·H gate blocks; no params: fold per-unit ones
    into xw, as `URLSTM.input_projection` does): the backward then needs no autograd inside its loop.
    `kernel`: an object computing the same step by hand (a step that does not read h_{t-1} itself), with
    per-step buffers (T, B, w) for what it saves, w from `saved_widths(G, H)`:
    `step_forward(xw_t, hw_t, c_{t-1}, h_t, c_t, own_t, *extras[t], *params)` writes h_t, c_t and own_t in
    place; `backward_factors(saved, extras)`, with saved = [hw, c_{t-1}, c_t, *own] over all steps,
    returns the backward's terms that need no incoming gradient, for all steps at once;
    `step_backward(dh_t, dc_t, (*saved_t, *factors_t), d_xw_t, *extras[t], *params) -> (d_hw_t,
    dc_{t-1}, kept_t)` writes d_xw_t in place (and returns it as d_hw_t when hw enters like xw); with
    params, `params_backward(saved, kept, d_xw, *params) -> d_params` runs once over all steps.
    The fused engine then uses it; `step` stays the autograd engine's reference.
    `jacobian` (a separable step): `jacobian(z, c_{t-1}, *extras) -> ((∂h/∂z, ∂h/∂h_{t-1}, ∂h/∂c_{t-1}),
    (∂c/∂z, ∂c/∂h_{t-1}, ∂c/∂c_{t-1}))` per unit (None where a step does not read h_{t-1}), over all T·B
    rows at once, with z = xw + hw: what the separable backward otherwise gets from two autograd passes.
    """
    if separable and params:
        raise ValueError("a separable step takes no params: add per-unit parameters to xw before the loop")
    if jacobian is not None and not separable:
        raise ValueError("a step's own jacobian needs a separable step")
    if engine == "fused":
        if kernel is not None:
            function, step = _HandWrittenStepFunction, kernel
        else:
            function = _SeparableStepFunction if separable else _StepFunction
        out, h, c = function.apply(step, xw, h0, c0, w_hh, h_mask, tuple(extras), jacobian, *params)
        return out, (h, c)
    check_engine(engine)
    h, c, outs = h0, c0, []
    for t, xw_t in enumerate(xw.unbind(0)):
        hw = (h if h_mask is None else h * h_mask) @ w_hh.t()
        h, c = step(xw_t, hw, h, c, *_per_step(extras, t), *params)
        outs.append(h)
    return torch.stack(outs), (h, c)
