"""lstm_nb: LSTM variants from the papers as nn.LSTM-compatible modules, and the loop that trains them.

One file per concern: `cells` (every recurrent layer, by name), `recurrence` (the time loop they run
on), `data` (corpora and batching), `models` (the language model), `train` (training, checkpoints,
metrics in run/), `plots`, `presets` (the notebooks' smoke / cpu / paper settings), `run` (papermill).
"""

__version__ = "0.1.0"
