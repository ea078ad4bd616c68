"""The Mogrifier notebook's presets: Brown characters (the original public notebook) and word-level
PTB / WikiText-2 (the official deepmind/lamb configurations), scaled down for `smoke` and `cpu`."""

from ..config import override

# The original Mogrifier notebook (RMichaelSwan/MogrifierLSTM): Brown characters, 500-character
# instances, embedding 50, hidden 125, batch 32, Adam at its default rate, no gradient clipping,
# AllenNLP Trainer with patience 7 and at most 210 epochs.
_BROWN_PAPER = {
    "data": {"corpus": "brown", "batch_size": 32, "instance_length": 500, "fraction": 1.0},
    "model": {"embedding_size": 50, "hidden_size": 125, "num_layers": 1},
    "optimizer": {"name": "Adam", "lr": 1e-3},
    "clip": None,
    "epochs": 210,
    "patience": 7,
    "seed": 1,
}


# The official Mogrifier PTB 24M configurations (deepmind/lamb, lamb/experiment/mogrifier/config/
# 786252db3825+_tune_ptb_24m_lstm_{fm_}d2_arms/trial_*/config): the Mogrifier (trial_483) and its
# separately tuned LSTM baseline (trial_833), which is the same code with 0 rounds. Adam with
# β1 = 0 is lamb's "rmsprop"; lamb's L2 (l2 · ½Σw² added to the loss) is Adam's coupled weight_decay.
# 1000 turns × 200 steps ≈ 965 epochs of PTB. Test evaluation with one stream (lamb: batch 1).
_PTB_MOGRIFIER_PAPER = {
    "data": {"corpus": "ptb", "batch_size": 64, "bptt": 70, "eval_batch_size": 1, "fraction": 1.0},
    "model": {
        "cell": "mogrifier", "num_layers": 2, "tie_weights": True, "sum_layer_outputs": True,
        "parameter_budget": 24_000_000,
        "input_dropout": 0.729, "inter_layer_dropout": 0.291, "dropout": 0.716,
        "cell_options": {"rounds": 5, "rank": 84, "cap_input_gate": True, "forget_bias": 1.0, "state_dropout": 0.387},
    },
    "optimizer": {"name": "Adam", "lr": 2.30e-3, "betas": [0.0, 0.999], "eps": 1e-8, "weight_decay": 2.52e-4},
    "clip": 10.0,
    "epochs": 965,
    "patience": None,
    "seed": 1,
}
_PTB_LSTM_PAPER = override(_PTB_MOGRIFIER_PAPER, {
    "model": {"input_dropout": 0.628, "inter_layer_dropout": 0.307, "dropout": 0.690,
              "cell_options": {"rounds": 0, "cap_input_gate": True, "forget_bias": 1.0, "state_dropout": 0.369}},
    "optimizer": {"lr": 3.04e-3, "weight_decay": 2.49e-4},
})
# WikiText-2: the official 35M budget and the Mogrifier's tuned rounds / rank (6 / 48), with PTB's
# dropouts and learning rates (the WT2 trials also use a 2-component mixture of softmaxes, not built here).
_WT2 = {"data": {"corpus": "wikitext-2"}, "model": {"parameter_budget": 35_000_000}}


def _word_section(mogrifier, lstm, wt2_rounds=None):
    """{corpus: {"lstm": config, "mogrifier": config}} for PTB and WikiText-2."""
    wt2_mogrifier = override(mogrifier, _WT2)
    if wt2_rounds:
        wt2_mogrifier["model"]["cell_options"] = {**wt2_mogrifier["model"]["cell_options"], **wt2_rounds}
    return {"ptb": {"lstm": lstm, "mogrifier": mogrifier},
            "wikitext-2": {"lstm": override(lstm, _WT2), "mogrifier": wt2_mogrifier}}


# A recipe made for short runs, the same for both models: pytorch/examples' word_language_model (SGD at
# learning rate 20, divided by 4 after every epoch that does not improve validation, gradient-norm clip
# 0.25, dropout 0.2, batch 20, BPTT 35), at the size of its 2 x 200 tied LSTM (2.65M parameters). It
# replaces lamb's Adam, dropouts and L2, tuned for ~965 epochs (scaled down to 2M parameters and run for
# 2 epochs, they left the LSTM at 241 validation perplexity). The models stay the paper's (capped input gate, forget bias 1, the decoder reading the
# sum of both layers, equal parameter counts); the Mogrifier's rank keeps the paper's k / H = 84 / 912.
_SHORT_RUN = {
    "data": {"batch_size": 20, "bptt": 35, "eval_batch_size": 10, "fraction": 1.0},
    "model": {"parameter_budget": 2_660_000, "input_dropout": 0.2, "inter_layer_dropout": 0.2, "dropout": 0.2},
    "optimizer": {"name": "SGD", "lr": 20.0},
    "scheduler": {"name": "ReduceLROnPlateau", "factor": 0.25, "patience": 0, "threshold": 0.0},
    "clip": 0.25,
    "epochs": 10,
    "patience": 3,
}


def _short_run(changes, rank):
    """Both official PTB models trained with `_SHORT_RUN` (updated by `changes`): lamb's optimiser and
    state dropout dropped, the Mogrifier's rank set to `rank`."""
    recipe = override(_SHORT_RUN, changes)
    configs = {}
    for name, paper in (("mogrifier", _PTB_MOGRIFIER_PAPER), ("lstm", _PTB_LSTM_PAPER)):
        cfg = override({key: value for key, value in paper.items() if key != "optimizer"}, recipe)
        cfg["model"]["cell_options"] = {**cfg["model"]["cell_options"], "state_dropout": 0.0}
        configs[name] = cfg
    configs["mogrifier"]["model"]["cell_options"]["rank"] = rank
    return _word_section(configs["mogrifier"], configs["lstm"])


# Dynamic evaluation (Krause et al. 2018's RMS rule; lamb tuned it separately, so these are ours).
# The learning rate is picked on validation from `lr_grid`, then the test split is read once.
_DYNEVAL = {"rule": "rms", "lr_grid": [1e-5, 1e-4, 1e-3], "decay": 0.02, "segment_length": 20, "eps": 1e-3,
            "train_batches": 100}

PRESETS = {
    "smoke": {
        "brown": override(_BROWN_PAPER, {"data": {"fraction": 0.005}, "epochs": 2, "patience": None}),
        **_short_run({"data": {"batch_size": 8, "bptt": 20, "eval_batch_size": 4, "fraction": 0.002},
                      "model": {"parameter_budget": 300_000}, "epochs": 1, "patience": None}, rank=4),
        "dynamic_evaluation": {**_DYNEVAL, "train_batches": 5},
    },
    "cpu": {
        "brown": override(_BROWN_PAPER, {"data": {"fraction": 0.2}, "epochs": 5, "patience": None}),
        **_short_run({}, rank=18),
        "dynamic_evaluation": {**_DYNEVAL, "lr_grid": [1e-4, 1e-3, 1e-2], "segment_length": 35,
                               "train_batches": 20},
    },
    "paper": {
        "brown": _BROWN_PAPER,
        **_word_section(_PTB_MOGRIFIER_PAPER, _PTB_LSTM_PAPER, wt2_rounds={"rounds": 6, "rank": 48}),
        "dynamic_evaluation": _DYNEVAL,
    },
}


# The four models of the Brown section: the original notebook's comparison.
BROWN_MODELS = {
    "lstm": {"model": {"cell": "lstm"}},
    "nn.LSTM": {"model": {"cell": "nn.LSTM"}},
    "mogrifier": {"model": {"cell": "mogrifier", "cell_options": {"rounds": 5}}},
    "mogrifier_shared_qr": {"model": {"cell": "mogrifier_shared_qr", "cell_options": {"rounds": 5}}},
}


def sections(setup, preset, word_corpus="ptb"):
    """{experiment: {model: config}}: the Brown comparison and the word-level one."""
    if word_corpus not in ("ptb", "wikitext-2"):
        raise ValueError(f"word_corpus must be 'ptb' or 'wikitext-2', got {word_corpus!r}")
    return {
        f"mogrifier-brown-{preset}": {name: override(setup["brown"], changes) for name, changes in BROWN_MODELS.items()},
        f"mogrifier-{word_corpus}-{preset}": setup[word_corpus],
    }
