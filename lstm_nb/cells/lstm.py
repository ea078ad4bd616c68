"""The standard LSTM, written from scratch with exactly `torch.nn.LSTM`'s math.

    z   = x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh,   [i, f, g, o] = split(z)
    c_t = σ(f) ⊙ c_{t-1} + σ(i) ⊙ tanh(g)
    h_t = σ(o) ⊙ tanh(c_t)

An `nn.LSTM` state dict loads into it unchanged (same parameter names and shapes).
"""

from ..recurrence import check_engine, library_lstm, lstm_recurrence
from .base import RecurrentLayers


class LSTM(RecurrentLayers):
    """Multi-layer LSTM with nn.LSTM's math, on one of three engines:

    - `engine="library"` (the default): the library's fused kernel (`recurrence.library_lstm`: oneDNN
      or ATen on CPU, cuDNN on CUDA), the fastest, for training and evaluation;
    - `engine="fused"`: the from-scratch loop with its hand-written backward, the code this repository
      teaches and times against nn.LSTM;
    - `engine="autograd"`: the plain autograd loop the tests use as the reference.

    Subclasses that change only the initialisation (forget bias, UGI, chrono) or the W_hh passed in
    (weight drop) keep all three; a subclass whose step is not nn.LSTM's sets `library = False`.
    """

    library = True

    def __init__(self, *args, engine=None, **kwargs):
        engine = engine or ("library" if self.library else "fused")
        check_engine(engine, ("library", "fused", "autograd") if self.library else ("fused", "autograd"))
        self.engine = engine
        super().__init__(*args, **kwargs)

    def recurrent_weight(self, k):
        """W_hh of layer k as this forward uses it (weight drop masks it)."""
        return self.layer_param("weight_hh", k)

    def layer_forward(self, k, x, h0, c0):
        w_hh = self.recurrent_weight(k)
        if self.engine == "library":
            b_ih, b_hh = self.layer_param("bias_ih", k), self.layer_param("bias_hh", k)
            return library_lstm(x, h0, c0, self.layer_param("weight_ih", k), w_hh, b_ih, b_hh)
        return lstm_recurrence(self.input_projection(k, x), h0, c0, w_hh, self.engine)
