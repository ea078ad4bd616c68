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
            a = acts[t]
            h_in = hs[t] if h_mask is None else hs[t] * h_mask
            torch.addmm(xw_t, h_in, w_t, out=a)
            i, f, g, o = a.chunk(4, 1)
            a[:, :2 * H].sigmoid_()
            g.tanh_()
            o.sigmoid_()
            c = cs[t + 1]
            torch.mul(f, cs[t], out=c)
            c.addcmul_(i, g)
            torch.tanh(c, out=tcs[t])
            torch.mul(o, tcs[t], out=hs[t + 1])
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
            a = acts[t]
            i, f, g, o = a.chunk(4, 1)
            dh = dh + d_out[t]
            tc = tcs[t]
            dc = dc + dh * o * (1 - tc * tc)
            dzt = dz[t]
            di, df, dg, do = dzt.chunk(4, 1)
            torch.mul(dc, g, out=di)
            torch.mul(dc, cs[t], out=df)
            torch.mul(dc, i, out=dg)
            torch.mul(dh, tc, out=do)
            # σ' = a(1−a) for i, f, o; tanh' = 1 − g² for g.
            dzt.mul_(a - a * a)
            dg.copy_(dc * i * (1 - g * g))
            dc = dc * f
            dh = dzt @ w_hh if h_mask is None else (dzt @ w_hh) * h_mask
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
    _check_engine(engine)
    h, c, outs = h0, c0, []
    for xw_t in xw.unbind(0):
        h_in = h if h_mask is None else h * h_mask
        h, c = _lstm_pointwise(xw_t + h_in @ w_hh.t(), c)
        outs.append(h)
    return torch.stack(outs), (h, c)


def _check_engine(engine):
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


def recurrence(step, xw, h0, c0, w_hh, params=(), extras=(), h_mask=None, engine="fused"):
    """Run `step` over time: h_t, c_t = step(xw_t, h_{t-1}' W_hhᵀ, h_{t-1}, c_{t-1}, *extras[t], *params)
    with h_{t-1}' = h_{t-1} ⊙ h_mask when a mask is given.

    xw: (T, B, G) input projections; extras: tensors indexed by time step (random masks, sampled once
    per forward so the backward sees the same ones); params: tensors the step differentiates.
    """
    if engine == "fused":
        out, h, c = _StepFunction.apply(step, xw, h0, c0, w_hh, h_mask, tuple(extras), *params)
        return out, (h, c)
    _check_engine(engine)
    h, c, outs = h0, c0, []
    for t, xw_t in enumerate(xw.unbind(0)):
        hw = (h if h_mask is None else h * h_mask) @ w_hh.t()
        h, c = step(xw_t, hw, h, c, *_per_step(extras, t), *params)
        outs.append(h)
    return torch.stack(outs), (h, c)
