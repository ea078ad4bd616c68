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
    def forward(ctx, xw, h0, c0, w_hh):
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
            torch.addmm(xw_t, hs[t], w_t, out=a)
            i, f, g, o = a.chunk(4, 1)
            a[:, :2 * H].sigmoid_()
            g.tanh_()
            o.sigmoid_()
            c = cs[t + 1]
            torch.mul(f, cs[t], out=c)
            c.addcmul_(i, g)
            torch.tanh(c, out=tcs[t])
            torch.mul(o, tcs[t], out=hs[t + 1])
        ctx.save_for_backward(acts, hs, cs, tcs, w_hh)
        return hs[1:], hs[T].clone(), cs[T].clone()

    @staticmethod
    def backward(ctx, d_out, d_hT, d_cT):
        acts, hs, cs, tcs, w_hh = ctx.saved_tensors
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
            dh = dzt @ w_hh
        d_w_hh = dz.reshape(T * B, G).t() @ hs[:T].reshape(T * B, H)
        return dz, dh, dc, d_w_hh


def lstm_recurrence(xw, h0, c0, w_hh, engine="fused"):
    """Run the standard LSTM over precomputed input projections.

    xw: (T, B, 4H) = x W_ihᵀ + b_ih + b_hh; h0, c0: (B, H); w_hh: (4H, H).
    Returns outputs (T, B, H) and the final (h, c).
    """
    if engine == "fused":
        out, h, c = _LSTMFunction.apply(xw, h0, c0, w_hh)
        return out, (h, c)
    if engine != "autograd":
        raise ValueError(f"unknown engine {engine!r}; use 'fused' or 'autograd'")
    h, c, outs = h0, c0, []
    for xw_t in xw.unbind(0):
        h, c = _lstm_pointwise(xw_t + h @ w_hh.t(), c)
        outs.append(h)
    return torch.stack(outs), (h, c)
