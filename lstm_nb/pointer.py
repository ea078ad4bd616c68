"""The neural cache pointer (Grave, Joulin & Usunier, ICLR 2017, "Improving Neural Language Models
with a Continuous Cache"), evaluated over a trained run as AWD-LSTM does (salesforce/awd-lstm-lm,
pointer.py of the PyTorch==0.1.12 tag).

The text is read as one stream (batch size 1) with the state carried. The cache holds the last
`window` pairs (h_i, w_{i+1}): the last layer's output at step i and the word that followed it. At
step t the next word's probability mixes the model's softmax with attention over the cache:

    p(w) = (1 − λ) · p_vocab(w | h_t) + λ · Σ_{i in cache, w_{i+1} = w} softmax_i(θ · h_t · h_i)

and, as in pointer.py, the cache is used only once more than `window` steps have been read (before,
p = p_vocab). Only the target's probability is needed, so no vocabulary-sized cache distribution
is built. The mean is over the predicted tokens (pointer.py divides the summed loss by the number of
tokens in the split, one more than the predictions).

    lstm_nb.pointer.evaluate_run("run/awd_lstm-ptb-cpu/awd_lstm", theta=1.0, lambdah=0.1, window=500)
"""

import torch
import torch.nn.functional as F

from .finished import load_run
from .objectives import loss_metrics
from .records import cached


@torch.no_grad()
def cache_loss(model, tokens, device, theta, lambdah, window, segment_length=70):
    """Mean NLL per predicted token of the 1-D token stream `tokens` under the cache pointer."""
    model.eval()
    stream = tokens.view(-1, 1)
    history_h = history_w = None  # the cache: at most `window` (h_i, w_{i+1}) pairs, oldest first
    seen, total, state = 0, 0.0, None  # seen: (h, next word) pairs read so far
    for i in range(0, stream.shape[0] - 1, segment_length):
        x = stream[i:i + segment_length].to(device)
        y = stream[i + 1:i + 1 + segment_length].to(device)[:, 0]
        x = x[:len(y)]
        logits, state, raw, _ = model(x, state, return_outputs=True)
        h, p_vocab = raw[:, 0].float(), F.softmax(logits[:, 0].float(), -1).gather(1, y[:, None])[:, 0]
        keys = h if history_h is None else torch.cat([history_h, h])
        next_words = y if history_w is None else torch.cat([history_w, y])
        first = seen - (len(keys) - len(y))  # the global index of keys[0]
        step = seen + torch.arange(len(y), device=h.device)[:, None]  # global index of each prediction
        position = first + torch.arange(len(keys), device=h.device)[None, :]
        in_window = (position < step) & (position >= step - window)
        scores = (theta * h @ keys.T).masked_fill(~in_window, float("-inf"))
        uses_cache = step[:, 0] > window
        attention = torch.softmax(scores[uses_cache], -1)
        p_cache = (attention * (next_words[None, :] == y[uses_cache, None])).sum(-1)
        p = p_vocab.clone()
        p[uses_cache] = lambdah * p_cache + (1 - lambdah) * p_vocab[uses_cache]
        total += -torch.log(p).double().sum().item()
        seen += len(y)
        history_h, history_w = keys[-window:], next_words[-window:]
    return total / seen


def evaluate_run(folder, split="test", theta=1.0, lambdah=0.1, window=500, segment_length=None, device="auto",
                 loaded=None):
    """The cache pointer over a finished run's best model on `split`, kept in the run's `pointer` evaluation file
    with its options and read back from there when asked again. `loaded`: as for `finished.load_run`."""
    options = {"split": split, "theta": theta, "lambdah": lambdah, "window": window}

    def compute(_saved):
        data, model, on = load_run(folder, device, loaded)
        loss = cache_loss(model, data.tokens[split], on, theta, lambdah, window, segment_length or data.bptt)
        return loss_metrics("pointer", loss, data.unit)

    return cached(folder, "pointer", options, compute)
