"""The `paper` presets are the official configurations, value by value (deepmind/lamb's tuned PTB
24M trials), and every preset builds a model of the size it claims."""

import json

import pytest
import torch

from lstm_nb import models, presets
from lstm_nb.config import make_config

# deepmind/lamb, lamb/experiment/mogrifier/config/786252db3825+_tune_ptb_24m_lstm_{fm_}d2_arms/trial_*/config
OFFICIAL_PTB = {
    "mogrifier": {  # trial_483
        "rounds": 5, "rank": 84, "input_dropout": 0.729, "inter_layer_dropout": 0.291, "state_dropout": 0.387,
        "output_dropout": 0.716, "l2_penalty": 2.52e-4, "learning_rate": 2.30e-3,
    },
    "lstm": {  # trial_833
        "rounds": 0, "rank": None, "input_dropout": 0.628, "inter_layer_dropout": 0.307, "state_dropout": 0.369,
        "output_dropout": 0.690, "l2_penalty": 2.49e-4, "learning_rate": 3.04e-3,
    },
}


@pytest.mark.parametrize("name", ["mogrifier", "lstm"])
def test_paper_preset_is_the_official_ptb_24m_configuration(name):
    cfg = make_config(presets.get("mogrifier", "paper")["ptb"][name])
    official, model, cell = OFFICIAL_PTB[name], cfg["model"], cfg["model"]["cell_options"]
    assert cfg["data"]["corpus"] == "ptb" and cfg["data"]["fraction"] == 1.0
    assert (cfg["data"]["batch_size"], cfg["data"]["bptt"]) == (64, 70)
    assert model["cell"] == "mogrifier" and model["num_layers"] == 2
    assert model["tie_weights"] is True and model["sum_layer_outputs"] is True  # lstm_skip_connection
    assert model["parameter_budget"] == 24_000_000
    assert cell["rounds"] == official["rounds"] and cell.get("rank") == official["rank"]
    assert cell["cap_input_gate"] is True and cell["forget_bias"] == 1.0
    assert model["input_dropout"] == official["input_dropout"]
    assert model["inter_layer_dropout"] == official["inter_layer_dropout"]
    assert cell["state_dropout"] == official["state_dropout"]
    assert model["dropout"] == official["output_dropout"]
    assert model.get("locked_dropout", False) is False  # shared_mask_dropout=False: fresh masks per step
    optimizer = cfg["optimizer"]
    assert optimizer["name"] == "Adam" and optimizer["betas"] == [0.0, 0.999] and optimizer["eps"] == 1e-8
    assert optimizer["lr"] == official["learning_rate"]
    assert optimizer["weight_decay"] == official["l2_penalty"]  # coupled L2, as lamb's l2_penalty
    assert cfg["clip"] == 10.0
    assert cfg["seed"] == 1
    assert cfg["scheduler"] is None


def test_paper_budget_gives_the_hidden_sizes_of_the_24m_models():
    """The 24M budget gives ≈912 (Mogrifier) and ≈951 (LSTM, one bias per gate; nn.LSTM's two bias
    vectors cost 4H more, so 950 here)."""
    setup = presets.get("mogrifier", "paper")["ptb"]
    sizes = {}
    for name, cfg in setup.items():
        options = {k: v for k, v in cfg["model"].items() if k != "parameter_budget"}
        sizes[name] = models.size_for_budget(models.LanguageModel, 10_000, 24_000_000, options)["hidden_size"]
    assert sizes == {"mogrifier": 912, "lstm": 950}


@pytest.mark.parametrize("preset", ["smoke", "cpu"])
def test_scaled_presets_compare_models_of_equal_size(preset):
    setup = presets.get("mogrifier", preset)
    for corpus, vocab in (("ptb", 10_000), ("wikitext-2", 33_278)):
        counts = {name: models.count_parameters(models.build(vocab, **cfg["model"]))
                  for name, cfg in setup[corpus].items()}
        budget = setup[corpus]["lstm"]["model"]["parameter_budget"]
        assert all(n <= budget for n in counts.values())
        assert abs(counts["lstm"] - counts["mogrifier"]) / budget < 0.02, counts


def test_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="unknown preset 'gpu'"):
        presets.get("mogrifier", "gpu")


def test_training_configs_take_every_notebook_parameter_and_name_every_run():
    import ast

    import papermill
    from conftest import REPO

    for notebook in sorted((REPO / "notebooks").glob("*.ipynb")):
        declared = papermill.inspect_notebook(str(notebook))
        defaults = {k: ast.literal_eval(v["default"]) for k, v in declared.items() if k != "preset"}
        for preset in presets.names(notebook.stem):
            sections = presets.training_configs(notebook.stem, preset, **defaults)
            for experiment, configs in sections.items():
                assert experiment.startswith(f"{notebook.stem}-") and experiment.endswith(f"-{preset}")
                for name, cfg in configs.items():
                    assert (cfg["experiment"], cfg["model_name"]) == (experiment, name)
                    make_config(cfg)  # every one is a valid configuration


def _first_seed(notebook, preset, experiment):
    """{row: config} of the preset's first seed in `experiment`."""
    from lstm_nb.presets.seeds import split_run_name

    runs = presets.training_configs(notebook, preset)[experiment]
    seed = presets.get(notebook, preset)["seeds"][0]
    return {split_run_name(name)[0]: cfg for name, cfg in runs.items() if split_run_name(name)[1] == seed}


def test_dropout_paper_preset_is_zaremba_medium_with_each_methods_published_rates():
    from lstm_nb.presets.dropout_layernorm import RATES

    rows = _first_seed("dropout_layernorm", "paper", "dropout_layernorm-ptb-paper")
    for stored in rows.values():
        cfg = make_config(stored)
        assert (cfg["data"]["corpus"], cfg["data"]["batch_size"], cfg["data"]["bptt"]) == ("ptb", 20, 35)
        assert cfg["data"]["fraction"] == cfg["data"]["train_fraction"] == 1.0
        model = cfg["model"]
        assert (model["num_layers"], model["hidden_size"], model["embedding_size"]) == (2, 650, 650)
        # Zaremba's lr 1 and clip 5 on a loss summed over the 35 steps = lr 35, clip 5/35 on our mean loss
        assert cfg["optimizer"] == {"name": "SGD", "lr": 35.0} and cfg["clip"] == pytest.approx(5 / 35)
        assert cfg["epochs"] == 39
    assert rows["zaremba"]["model"]["dropout"] == rows["zaremba"]["model"]["inter_layer_dropout"] == 0.5
    assert rows["zoneout"]["model"]["cell_options"] == {"zoneout_cell": 0.5, "zoneout_hidden": 0.05}
    assert rows["weight_drop"]["model"]["cell_options"] == {"weight_drop": 0.5}
    gal = rows["gal_untied"]["model"]
    assert (gal["embedding_dropout"], gal["dropout"], gal["locked_dropout"]) == (0.3, 0.5, True)
    assert gal["cell_options"] == {"input_dropout": 0.5, "recurrent_dropout": 0.3, "untied": True}
    assert RATES["moon"] == RATES["semeniuta"] == 0.25  # ours, labelled as such in the preset


def test_zaremba_schedule_is_constant_then_times_0_8_after_every_epoch_from_the_seventh():
    import torch

    cfg = presets.get("dropout_layernorm", "paper")["ptb"]
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg["optimizer"]["lr"])
    spec = {k: v for k, v in cfg["scheduler"].items() if k != "name"}
    scheduler = getattr(torch.optim.lr_scheduler, cfg["scheduler"]["name"])(optimizer, **spec)
    lrs = []
    for _ in range(cfg["epochs"]):  # the loop steps the scheduler once after each epoch
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    expected = [35.0 * 0.8 ** max(epoch - 6, 0) for epoch in range(1, 40)]  # TensorFlow's ptb_word_lm.py, medium
    assert lrs == pytest.approx(expected)


def test_dropout_anchor_is_zaremba_small_exactly():
    runs = presets.training_configs("dropout_layernorm", "cpu")["dropout_layernorm-anchor-cpu"]
    cfg = make_config(runs["zaremba_small-seed1"])
    assert (cfg["data"]["corpus"], cfg["data"]["fraction"], cfg["data"]["train_fraction"]) == ("ptb", 1.0, 1.0)
    assert (cfg["data"]["batch_size"], cfg["data"]["bptt"], cfg["data"]["eval_batch_size"]) == (20, 20, 20)
    assert cfg["data"]["test_batch_size"] == 1  # main.lua's test stream
    model = cfg["model"]
    assert (model["num_layers"], model["hidden_size"], model["embedding_size"], model["init_range"]) == (2, 200, 200, 0.1)
    assert not any(model.get(k) for k in ("dropout", "input_dropout", "inter_layer_dropout", "tie_weights"))
    # lr 1 and clip 5 on a loss summed over 20 steps; 13 epochs, halved after each from the 5th
    assert cfg["optimizer"] == {"name": "SGD", "lr": 20.0} and cfg["clip"] == pytest.approx(5 / 20)
    assert cfg["epochs"] == 13
    assert cfg["scheduler"] == {"name": "MultiStepLR", "milestones": list(range(4, 13)), "gamma": 0.5}


def test_dropout_cpu_rates_suit_a_small_model_and_its_schedule_anneals():
    from lstm_nb.presets.dropout_layernorm import CPU_ROWS, SMALL_RATES

    rows = _first_seed("dropout_layernorm", "cpu", "dropout_layernorm-ptb-cpu")
    assert tuple(rows) == CPU_ROWS
    assert rows["zaremba"]["model"]["dropout"] == SMALL_RATES["non_recurrent"] == 0.3
    gal = rows["gal_tied"]["model"]
    assert (gal["embedding_dropout"], gal["dropout"]) == (0.2, 0.3)
    assert gal["cell_options"] == {"input_dropout": 0.3, "recurrent_dropout": 0.2}
    cfg = rows["no_dropout"]
    assert cfg["scheduler"] == {"name": "CosineAnnealingLR", "T_max": cfg["epochs"]}  # ends annealed
    assert presets.get("dropout_layernorm", "cpu")["seeds"] == [1, 2, 3]
    convergence = _first_seed("dropout_layernorm", "cpu", "dropout_layernorm-convergence-cpu")
    assert {row: cfg["model"]["cell"] for row, cfg in convergence.items()} == {"lstm_adam": "nn.LSTM",
                                                                               "layernorm_adam": "layernorm_lstm"}
    assert all(cfg["optimizer"] == {"name": "Adam", "lr": 1e-3} and cfg["scheduler"] is None
               for cfg in convergence.values())


@pytest.mark.parametrize("preset", ["smoke", "cpu", "paper"])
def test_dropout_rows_differ_in_regularisation_alone(preset):
    rows = _first_seed("dropout_layernorm", preset, f"dropout_layernorm-ptb-{preset}")
    regularisation = {"cell", "cell_options", "dropout", "input_dropout", "inter_layer_dropout", "embedding_dropout",
                      "locked_dropout"}
    shared = {name: {**{k: v for k, v in cfg.items() if k not in ("model", "model_name")},
                     "model": {k: v for k, v in cfg["model"].items() if k not in regularisation}}
              for name, cfg in rows.items()}
    assert all(s == shared["no_dropout"] for s in shared.values())
    counts = {name: models.count_parameters(models.build(10_000, **cfg["model"])) for name, cfg in rows.items()}
    assert len({n for name, n in counts.items() if not name.startswith("layernorm")}) == 1
    assert len({n for name, n in counts.items() if name.startswith("layernorm")}) <= 1  # + LN gains (cpu: no LN row)


@pytest.mark.parametrize("preset, steps", [("cpu", 200), ("paper", 1000)])
def test_dropout_inference_timings_use_the_seeds_sizes_and_length(preset, steps):
    """test_speed.py's SIZES and N_ITER (1000) on `paper`; `cpu` times 200 steps to fit its hour."""
    from lstm_nb import lstms_pth

    inference = presets.get("dropout_layernorm", preset)["inference"]
    assert inference == {"sizes": lstms_pth.SEED_SIZES, "steps": steps}
    assert all(len(ratios) == len(lstms_pth.SEED_SIZES) for ratios in lstms_pth.SEED_SPEEDUP.values())


def test_gating_paper_preset_is_the_reimplementations_configs_and_variants_differ_in_their_cell_alone():
    from lstm_nb.presets.seeds import run_name

    paper = presets.training_configs("ur_lstm", "paper")
    copy, adding = paper["ur_lstm-copy-paper"]["ur_lstm-seed1"], paper["ur_lstm-adding-paper"]["ur_lstm-seed1"]
    assert (copy["data"]["length"], copy["model"]["hidden_size"], copy["data"]["batch_size"]) == (480, 256, 10)
    assert copy["data"]["copy_layout"] == "cued"  # the reimplementation's CopyDataset
    assert copy["epochs"] * copy["data"]["examples"][0] // copy["data"]["batch_size"] == 10_000  # steps
    assert (adding["data"]["length"], adding["model"]["hidden_size"], adding["data"]["batch_size"]) == (2000, 256, 10)
    assert adding["epochs"] * adding["data"]["examples"][0] // adding["data"]["batch_size"] == 100_000
    for task in ("mnist", "pmnist", "cifar-10"):
        image = paper[f"ur_lstm-{task}-paper"]["lstm-seed1"]
        assert (image["model"]["hidden_size"], image["data"]["batch_size"], image["epochs"]) == (1024, 50, 150)
    for preset in presets.names("ur_lstm"):
        for experiment, runs in presets.training_configs("ur_lstm", preset).items():
            for cfg in runs.values():
                assert cfg["optimizer"] == {"name": "AdamW", "lr": cfg["optimizer"]["lr"], "weight_decay": 0.0}
                assert cfg["clip"] == 1.0
                reference = runs[run_name("lstm", cfg["seed"])]
                differs = {k for k in cfg if cfg[k] != reference[k]} - {"model_name"}
                assert differs <= {"model"}, (experiment, cfg["model_name"], differs)
                assert {k: v for k, v in cfg["model"].items() if k not in ("cell", "cell_options")} == \
                    {k: v for k, v in reference["model"].items() if k != "cell"}
                if cfg["model"]["cell"] == "chrono_lstm":  # T_max = the sequence's length
                    steps = {"copy": cfg["data"].get("length", 0) + 20, "adding": cfg["data"].get("length")}
                    assert cfg["model"]["cell_options"]["t_max"] == steps.get(cfg["data"]["corpus"],
                                                                               1024 if cfg["data"]["corpus"] == "cifar-10" else 784)


def test_the_gating_optimiser_leaves_every_gate_bias_undecayed():
    """The gating presets' AdamW states weight decay 0: one step with zero gradients leaves UGI's, chrono's
    and every other bias where it was. torch's default (0.01, what the reimplementation gets) moves them."""
    from lstm_nb import train

    def biases_after_one_step(spec, cell, options):
        torch.manual_seed(0)
        model = models.build_sequence_model(input_size=2, output_size=1, hidden_size=8, cell=cell, cell_options=options)
        optimizer = train.make_optimizer(model, spec)
        before = {n: p.detach().clone() for n, p in model.named_parameters() if "bias" in n}
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        optimizer.step()
        return {n: (before[n], p.detach()) for n, p in model.named_parameters() if n in before}

    for preset in presets.names("ur_lstm"):
        for runs in presets.training_configs("ur_lstm", preset).values():
            cells_ = {(cfg["model"]["cell"], json.dumps(cfg["model"].get("cell_options"))): cfg for cfg in runs.values()}
            for (cell, options), cfg in cells_.items():
                for name, (before, after) in biases_after_one_step(cfg["optimizer"], cell, json.loads(options)).items():
                    assert torch.equal(before, after), (preset, cell, name)
    moved = biases_after_one_step({"name": "AdamW", "lr": 1e-3}, "u_lstm", None)
    assert not torch.equal(*moved["rnn.bias_ih_l0"])


def test_the_cpu_preset_trains_both_word_models_with_one_short_run_recipe():
    """pytorch/examples' recipe for both (SGD at 20, clip 0.25, dropout 0.2, batch 20, BPTT 35), the
    learning rate annealed by a cosine over the run's epochs: the models differ only in the Mogrifier's
    rounds and rank."""
    setup = presets.get("mogrifier", "cpu")["ptb"]
    lstm, mogrifier = (make_config(setup[name]) for name in ("lstm", "mogrifier"))
    for key in ("data", "optimizer", "scheduler", "clip", "epochs", "patience", "seed"):
        assert lstm[key] == mogrifier[key], key
    assert lstm["optimizer"] == {"name": "SGD", "lr": 20.0}
    assert lstm["scheduler"] == {"name": "CosineAnnealingLR", "T_max": lstm["epochs"]}
    assert (lstm["clip"], lstm["data"]["batch_size"], lstm["data"]["bptt"]) == (0.25, 20, 35)

    def without(options, *keys):
        return {k: v for k, v in options.items() if k not in keys}

    assert without(lstm["model"], "cell_options") == without(mogrifier["model"], "cell_options")
    assert {lstm["model"][k] for k in ("input_dropout", "inter_layer_dropout", "dropout")} == {0.2}
    assert without(lstm["model"]["cell_options"], "rounds") == without(mogrifier["model"]["cell_options"], "rounds",
                                                                       "rank")
    assert (lstm["model"]["cell_options"]["rounds"], mogrifier["model"]["cell_options"]["rounds"]) == (0, 5)


@pytest.mark.parametrize("preset", ["smoke", "cpu", "paper"])
def test_mogrifier_claims_are_declared_over_paired_seeds(preset):
    """Every row a claim compares trains once per seed of the preset (at least 3 on cpu), under the
    same seeds in both rows; the anchor is the pytorch/examples recipe with nn.LSTM's math."""
    setup = presets.get("mogrifier", preset)
    sections = presets.training_configs("mogrifier", preset)
    declared, anchors = presets.claims("mogrifier", preset)
    assert declared and len(anchors) == 1
    if preset != "smoke":
        assert len(setup["seeds"]) >= 3
    for claim in declared:
        runs = sections[claim.experiment]
        for row in (claim.reference, claim.variant):
            assert {cfg["seed"] for name, cfg in runs.items() if name.startswith(f"{row}-seed")} == set(setup["seeds"])
    anchor = anchors[0]
    (cfg,) = sections[anchor.experiment].values()
    cfg = make_config(cfg)
    built = models.build(100, **cfg["model"])  # the language model's default cell is the LSTM
    assert {type(layer).__name__ for layer in built.layers} == {"LSTM"} and cfg["model"]["tie_weights"] and cfg["optimizer"] == {"name": "SGD", "lr": 20.0}
    assert (anchor.published, anchor.metric) == (110.44, "test")
    assert (presets.scale_note("mogrifier", preset) is None) == (preset != "smoke")


def test_the_brown_lstm_row_times_the_from_scratch_engine():
    brown = presets.training_configs("mogrifier", "cpu")["mogrifier-brown-cpu"]
    assert brown["lstm-seed1"]["model"]["cell_options"] == {"engine": "fused"}
    assert brown["nn.LSTM-seed1"]["model"]["cell"] == "nn.LSTM"


def test_run_names_carry_row_and_seed():
    from lstm_nb.presets.seeds import run_name, seeded, split_run_name

    assert split_run_name(run_name("nn.LSTM", 12)) == ("nn.LSTM", 12)
    assert split_run_name("lstm") == ("lstm", None)  # a run trained before seeds were a preset value
    assert {k: v["seed"] for k, v in seeded({"a": {"seed": 0}}, [1, 2]).items()} == {"a-seed1": 1, "a-seed2": 2}
