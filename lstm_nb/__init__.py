"""lstm_nb: LSTM variants from the papers as nn.LSTM-compatible modules, and the loop that trains them.

One file per concern: `cells` (every recurrent layer, by name), `recurrence` (the time loop they run
on), `data` (corpora and batching), `models` (the language model), `config` (a training configuration
and its validation), `train` (the training loop and its command line), `runs` (a run folder's
bookkeeping: checked, resumed, repaired), `checkpoints` (a run folder's files and its lock),
`distributed` (torchrun / DDP), `errors` (messages that say what to do), `progress` (bars), `plots`,
`presets` (the notebooks' smoke / cpu / paper settings and their claims), `claims` (the one rule that
judges a claim over seeds), `results` (finished runs and claims read from run/), `workers` (independent
runs in parallel processes), `gemm` (the matrix-product backend), `budget` (projected time and GPU
cost), `gpu_check` (what a lent GPU runs), `bench` (speed), `run` (papermill), `colab` (the notebooks' Colab
install cell).
"""

__version__ = "0.1.0"

