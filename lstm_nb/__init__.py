"""lstm_nb: LSTM variants from the papers as nn.LSTM-compatible modules, and the loop that trains them.

One file per concern: `cells` (every recurrent layer, by name), `recurrence` (the time loop they run
on), `text` (the text corpora read into token ids), `data` (batching), `sequences` (the long-memory and pixel tasks), `objectives` (each
task's loss and metrics), `models` (the language and sequence models), `config` (a training
configuration and its validation), `train` (a run from its configuration, resumed or new), `loop`
(the epoch loop), `callbacks` (what plugs into it: schedules, early stopping, variable BPTT), `phases`
(AWD-LSTM's: AR/TAR, NT-ASGD, fine-tuning), `cli` (the training command line), `finished` (a finished
run read back), `records` (a run folder's bookkeeping: what an epoch writes, checked, resumed, repaired), `checkpoints` (a run folder's files and its lock),
`distributed` (torchrun / DDP), `errors` (messages that say what to do), `progress` (bars), `plots`,
`presets` (the notebooks' presets and their claims), `claims` (the one rule that judges a claim over
seeds), `results` (finished runs and claims read from run/), `workers` (independent runs in parallel
processes), `gemm` (the matrix-product backend), `budget` (projected time, GPU cost and disk),
`gpu_check` (what a lent GPU runs), `bench` (speed), `run` (the papermill runner), `colab` (the
notebooks' Colab install cell).
"""

__version__ = "0.1.0"

