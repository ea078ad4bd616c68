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
  stay batched. Variants (UR-LSTM, LayerNorm, recurrent dropout, ...) only write the step.

Both have a plain-autograd twin (``engine="autograd"``) that the tests use as the reference.
"""

import torch


def _lstm_pointwise(z, c_prev):
    """nn.LSTM's gate math on pre-activations z = [i, f, g, o] (B×4H)."""
    i, f, g, o = z.chunk(4, 1)
    c = torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


def lstm_step_forward(a, c_prev, c, tc, h, cap_input_gate=False):
    """One LSTM step in place. a: pre-activations [i, f, g, o] (B×4H), overwritten by σ(i), σ(f), tanh(g),
    σ(o); writes c = f ⊙ c_prev + i ⊙ g (i → min(i, 1 − f) with `cap_input_gate`), tc = tanh(c), h = o ⊙ tc."""
    H = a.shape[1] // 4
    a[:, :2 * H].sigmoid_()
    a[:, 2 * H:3 * H].tanh_()
    a[:, 3 * H:].sigmoid_()
    i, f, g, o = a.chunk(4, 1)
    if cap_input_gate:
        i = torch.minimum(i, 1 - f)
    torch.mul(f, c_prev, out=c)
    c.addcmul_(i, g)
    torch.tanh(c, out=tc)
    torch.mul(o, tc, out=h)


def lstm_step_backward(a, c_prev, tc, dh, dc, dz, cap_input_gate=False):
    """Backward of `lstm_step_forward` from its saved activations a, c_prev and tc = tanh(c): writes the
    pre-activation gradient into dz (B×4H) and returns dc_prev."""
    H = a.shape[1] // 4
    i, f, g, o = a.chunk(4, 1)
    di, df, dg, do = dz.chunk(4, 1)
    dc = dc + dh * o * (1 - tc * tc)
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
    # σ' = a(1 − a) for i, f, o; tanh' = 1 − g² for g.
    dz[:, :2 * H].mul_(a[:, :2 * H] - a[:, :2 * H].square())
    do.mul_(o - o * o)
    dg.mul_(1 - g * g)
    return dc * f


class _LSTMFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xw, h0, c0, w_hh, h_mask=None):
        T, B, G = xw.shape
        H = G // 4
        w_t = w_hh.t()
        acts = xw.new_empty(T, B, G)  # σ(i), σ(f), tanh(g), σ(o)
        hs = xw.new_empty(T + 1, B, H)
        cs = xw.new_empty(T + 1, B, H)
        tcs = xw.new_empty(T, B, H)  # tanh(c_t), reused by the backward
        hs[0] = h0
        cs[0] = c0
        for t, xw_t in enumerate(xw.unbind(0)):
            h_in = hs[t] if h_mask is None else hs[t] * h_mask
            torch.addmm(xw_t, h_in, w_t, out=acts[t])
            lstm_step_forward(acts[t], cs[t], cs[t + 1], tcs[t], hs[t + 1])
        ctx.save_for_backward(acts, hs, cs, tcs, w_hh, h_mask)
        return hs[1:], hs[T].clone(), cs[T].clone()

    @staticmethod
    def backward(ctx, d_out, d_hT, d_cT):
        acts, hs, cs, tcs, w_hh, h_mask = ctx.saved_tensors
        T, B, G = acts.shape
        H = G // 4
        d_out = d_out if d_out is not None else torch.zeros_like(hs[1:])
        dh = d_hT if d_hT is not None else torch.zeros_like(hs[0])
        dc = d_cT if d_cT is not None else torch.zeros_like(cs[0])
        dz = torch.empty_like(acts)
        for t in range(T - 1, -1, -1):
            dh = dh + d_out[t]
            dc = lstm_step_backward(acts[t], cs[t], tcs[t], dh, dc, dz[t])
            dh = dz[t] @ w_hh if h_mask is None else (dz[t] @ w_hh) * h_mask
        h_in = hs[:T] if h_mask is None else hs[:T] * h_mask
        d_w_hh = dz.reshape(T * B, G).t() @ h_in.reshape(T * B, H)
        return dz, dh, dc, d_w_hh, None


def lstm_recurrence(xw, h0, c0, w_hh, engine="fused", h_mask=None):
    """Run the standard LSTM over precomputed input projections.

    xw: (T, B, 4H) = x W_ihᵀ + b_ih + b_hh; h0, c0: (B, H); w_hh: (4H, H); h_mask: optional (B, H)
    multiplying h_{t-1} where it feeds the gates (Gal & Ghahramani's recurrent dropout mask).
    Returns outputs (T, B, H) and the final (h, c).
    """
    if engine == "fused":
        out, h, c = _LSTMFunction.apply(xw, h0, c0, w_hh, h_mask)
        return out, (h, c)
    check_engine(engine)
    h, c, outs = h0, c0, []
    for xw_t in xw.unbind(0):
        h_in = h if h_mask is None else h * h_mask
        h, c = _lstm_pointwise(xw_t + h_in @ w_hh.t(), c)
        outs.append(h)
    return torch.stack(outs), (h, c)


def check_engine(engine):
    """Refuse an engine name other than "fused" (hand-written backward) or "autograd" (the reference)."""
    if engine not in ("fused", "autograd"):
        raise ValueError(f"unknown engine {engine!r}; use 'fused' or 'autograd'")


def _per_step(extras, t):
    return [e[t] for e in extras]


class _StepFunction(torch.autograd.Function):
    """Any pointwise step; backward = local autograd per step + one batched GEMM for dW_hh."""

    @staticmethod
    def forward(ctx, step, xw, h0, c0, w_hh, h_mask, extras, *params):
        w_t = w_hh.t()
        h, c, hs, cs, hws = h0, c0, [h0], [c0], []
        for t, xw_t in enumerate(xw.unbind(0)):
            hw = (h if h_mask is None else h * h_mask) @ w_t
            h, c = step(xw_t, hw, h, c, *_per_step(extras, t), *params)
            hs.append(h)
            cs.append(c)
            hws.append(hw)
        hs, cs = torch.stack(hs), torch.stack(cs)
        ctx.step, ctx.extras = step, extras
        ctx.save_for_backward(xw, hs, cs, torch.stack(hws), w_hh, h_mask, *params)
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
            back = g_hw @ w_hh
            dh = g_h + (back if h_mask is None else back * h_mask)
            dc = g_c
        h_in = hs[:T] if h_mask is None else hs[:T] * h_mask
        d_w_hh = d_hw.reshape(-1, d_hw.shape[-1]).t() @ h_in.reshape(-1, h_in.shape[-1])
        return (None, d_xw, dh, dc, d_w_hh, None, None, *d_params)


class _SeparableStepFunction(_StepFunction):
    """A step whose every input element of unit j (in any gate block, and every per-unit parameter)
    influences only unit j of (h, c): the LSTM family's gates, masks and zoneout; not LayerNorm or
    cumax. Its Jacobian is then diagonal per unit, so two autograd calls over all T·B rows at once give
    every ∂h_j/∂· and ∂c_j/∂·, and the loop backward is a few elementwise products plus dZ_t W_hh."""

    @staticmethod
    def backward(ctx, d_out, d_hT, d_cT):
        xw, hs, cs, hws, w_hh, h_mask, *params = ctx.saved_tensors
        T, B, G = xw.shape
        H = hs.shape[-1]
        rows = [v.reshape(T * B, v.shape[-1]).detach().requires_grad_() for v in (xw, hws, hs[:T], cs[:T])]
        rows += [p.detach().expand(T * B, *p.shape).requires_grad_() for p in params]
        extras = [e.reshape(T * B, e.shape[-1]) for e in ctx.extras]
        with torch.enable_grad():
            h, c = ctx.step(*rows[:4], *extras, *rows[4:])
            jh = torch.autograd.grad(h, rows, torch.ones_like(h), retain_graph=True, allow_unused=True)
            jc = torch.autograd.grad(c, rows, torch.ones_like(c), allow_unused=True)

        def per_unit(j, v):  # (T·B, n·H) → (T, B, n, H); unused inputs get zeros
            return (torch.zeros_like(v) if j is None else j).reshape(T, B, -1, H)

        (jh_xw, jh_hw, jh_h, jh_c, *jh_p), (jc_xw, jc_hw, jc_h, jc_c, *jc_p) = (
            [per_unit(j, v) for j, v in zip(js, rows)] for js in (jh, jc))
        uses_h = jh[2] is not None or jc[2] is not None  # zoneout keeps h_{t-1}
        # dh[t], dc[t]: the gradients reaching h_t, c_t (t = 0 … T), filled from the end.
        dh, dc = hs.new_zeros(T + 1, B, H), cs.new_zeros(T + 1, B, H)
        if d_hT is not None:
            dh[T] = d_hT
        if d_cT is not None:
            dc[T] = d_cT
        if d_out is not None:
            dh[1:] += d_out
        d_hw = torch.empty_like(hws)
        for t in range(T, 0, -1):
            s, g_h, g_c = t - 1, dh[t][:, None], dc[t][:, None]
            g_hw = d_hw[s].view(B, -1, H)
            torch.mul(jh_hw[s], g_h, out=g_hw).addcmul_(jc_hw[s], g_c)
            torch.mul(jh_c[s], g_h, out=dc[s][:, None]).addcmul_(jc_c[s], g_c)
            back = d_hw[s] @ w_hh
            dh[s] += back if h_mask is None else back * h_mask
            if uses_h:
                dh[s][:, None].addcmul_(jh_h[s], g_h).addcmul_(jc_h[s], g_c)
        g_h, g_c = dh[1:, :, None], dc[1:, :, None]
        same = torch.equal(jh_xw, jh_hw) and torch.equal(jc_xw, jc_hw)  # z = xw + hw: both alike
        d_xw = d_hw.clone() if same else (jh_xw * g_h + jc_xw * g_c).reshape(T, B, G)
        d_params = [(a * g_h + b * g_c).sum((0, 1)).reshape(p.shape) for a, b, p in zip(jh_p, jc_p, params)]
        h_in = hs[:T] if h_mask is None else hs[:T] * h_mask
        d_w_hh = d_hw.reshape(-1, G).t() @ h_in.reshape(-1, H)
        return (None, d_xw, dh[0], dc[0], d_w_hh, None, None, *d_params)


def recurrence(step, xw, h0, c0, w_hh, params=(), extras=(), h_mask=None, engine="fused", separable=False):
    """Run `step` over time: h_t, c_t = step(xw_t, h_{t-1}' W_hhᵀ, h_{t-1}, c_{t-1}, *extras[t], *params)
    with h_{t-1}' = h_{t-1} ⊙ h_mask when a mask is given.

    xw: (T, B, G) input projections; extras: tensors indexed by time step (random masks, sampled once
    per forward so the backward sees the same ones); params: tensors the step differentiates.
    `separable=True` declares that unit j of (h, c) depends only on unit j of every input (G = n·H
    gate blocks, per-unit params): the backward then needs no autograd inside its loop.
    """
    if engine == "fused":
        function = _SeparableStepFunction if separable else _StepFunction
        out, h, c = function.apply(step, xw, h0, c0, w_hh, h_mask, tuple(extras), *params)
        return out, (h, c)
    check_engine(engine)
    h, c, outs = h0, c0, []
    for t, xw_t in enumerate(xw.unbind(0)):
        hw = (h if h_mask is None else h * h_mask) @ w_hh.t()
        h, c = step(xw_t, hw, h, c, *_per_step(extras, t), *params)
        outs.append(h)
    return torch.stack(outs), (h, c)
