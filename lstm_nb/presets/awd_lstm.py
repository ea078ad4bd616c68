"""The AWD-LSTM notebook's presets: the full recipe of Merity, Keskar & Socher (2018) and the rows of
its ablation (the paper's Table 4), each with one component removed.

`paper` is the salesforce/awd-lstm-lm README's commands, value by value:
  PTB:  python main.py --batch_size 20 --data data/penn --dropouti 0.4 --dropouth 0.25 --seed 141 --epoch 500
  WT2:  python main.py --epochs 750 --data data/wikitext-2 --dropouth 0.2 --seed 1882
with main.py's defaults for the rest (3 layers, emsize 400, nhid 1150, lr 30, clip 0.25, bptt 70,
dropout 0.4, dropoute 0.1, wdrop 0.5, α 2, β 1, wdecay 1.2e-6, nonmono 5, tied; WT2: batch 80,
dropouti 0.65), then finetune.py with the same arguments, validation at batch 10 and test at batch 1.
finetune.py's `--epochs` is the same 500 / 750, a cap its non-monotone stop ends well before.

`cpu` keeps the recipe (every regulariser at the paper's rate, lr 30, NT-ASGD, fine-tuning) on a
smaller model trained on the head of PTB's training text, long enough for NT-ASGD to switch and for
the unregularised rows to overfit: the regime where the ablation's differences show. `smoke` only
shows every row and phase running.

Only the full recipe is fine-tuned: the "− fine-tuning" row is the same run before its fine-tuning,
and every other ablation row is one main training with its component removed, to be compared with
that row. (Whether the paper fine-tuned its other ablation rows is not stated in the sources we have.)
"""

from ..config import override

# The README's pointer.py commands (PyTorch==0.1.12 tag), λ (--lambdasm), θ (--theta) and --window
POINTER = {"ptb": {"theta": 1.0, "lambdah": 0.1, "window": 500},
           "wikitext-2": {"theta": 0.662, "lambdah": 0.1279, "window": 3785}}

# The paper's Table 4: {row: {corpus: (validation, test) perplexity}}; the full recipe's row is
# fine-tuned, "no_finetune" is it before fine-tuning, "cache_pointer" is it read with the cache.
PAPER = {
    "awd_lstm": {"ptb": (60.0, 57.3), "wikitext-2": (68.6, 65.8)},
    "no_finetune": {"ptb": (60.7, 58.8), "wikitext-2": (69.1, 66.0)},
    "no_nt_asgd": {"ptb": (66.3, 63.7), "wikitext-2": (73.3, 69.7)},
    "no_variable_bptt": {"ptb": (61.3, 58.9), "wikitext-2": (69.3, 66.2)},
    "no_embedding_dropout": {"ptb": (65.1, 62.7), "wikitext-2": (71.1, 68.1)},
    "no_weight_decay": {"ptb": (63.7, 61.0), "wikitext-2": (71.9, 68.7)},
    "no_ar_tar": {"ptb": (62.7, 60.3), "wikitext-2": (73.2, 70.1)},
    "full_size_embedding": {"ptb": (68.0, 65.6), "wikitext-2": (73.7, 70.7)},
    "no_weight_drop": {"ptb": (71.1, 68.9), "wikitext-2": (78.4, 74.9)},
    "cache_pointer": {"ptb": (53.9, 52.8), "wikitext-2": (53.8, 52.0)},
}


# The component each row of the table removes (or adds), in words, for the verdict and its figure
COMPONENTS = {"no_finetune": "fine-tuning", "no_nt_asgd": "NT-ASGD", "no_variable_bptt": "variable sequence length",
              "no_embedding_dropout": "embedding dropout", "no_weight_decay": "weight decay", "no_ar_tar": "AR/TAR",
              "full_size_embedding": "embedding smaller than hidden", "no_weight_drop": "weight dropping",
              "cache_pointer": "cache pointer (added)"}


def awd_lstm(corpus, emsize=400, nhid=1150, nlayers=3, lr=30.0, clip=0.25, epochs=500, batch_size=20, bptt=70,
             dropout=0.4, dropouth=0.25, dropouti=0.4, dropoute=0.1, wdrop=0.5, seed=141, alpha=2.0, beta=1.0,
             wdecay=1.2e-6, nonmono=5, finetune_epochs=500, eval_batch_size=10, test_batch_size=1, data=None):
    """A training config from main.py's arguments (their names and defaults)."""
    return {
        "data": {"corpus": corpus, "batch_size": batch_size, "bptt": bptt, "eval_batch_size": eval_batch_size,
                 "test_batch_size": test_batch_size, "variable_bptt": True, **(data or {})},
        "model": {"embedding_size": emsize, "hidden_size": nhid, "num_layers": nlayers, "tie_weights": True,
                  "cell": "weight_drop_lstm", "cell_options": {"weight_drop": wdrop}, "locked_dropout": True,
                  "dropout": dropout, "inter_layer_dropout": dropouth, "input_dropout": dropouti,
                  "embedding_dropout": dropoute},
        "optimizer": {"name": "SGD", "lr": lr, "weight_decay": wdecay},
        "scheduler": None,
        "clip": clip,
        "ar": alpha,
        "tar": beta,
        "nt_asgd": {"nonmono": nonmono},
        "finetune": {"epochs": finetune_epochs, "nonmono": nonmono},
        "epochs": epochs,
        "patience": None,
        "seed": seed,
    }


def ablations(full):
    """{row: config} of the trained rows: the full recipe, then each with one component removed, then
    the recipe without fine-tuning under another seed, which measures the spread that chance alone
    gives (any change of a run, even a tiny weight decay, sends SGD down another path)."""
    main_only = {"finetune": None}
    hidden = full["model"]["hidden_size"]
    changes = {
        "awd_lstm": {},
        "no_nt_asgd": {**main_only, "nt_asgd": None},  # plain SGD at the same constant lr
        "no_variable_bptt": {**main_only, "data": {"variable_bptt": False}},
        "no_embedding_dropout": {**main_only, "model": {"embedding_dropout": 0.0}},
        "no_weight_decay": {**main_only, "optimizer": {"weight_decay": 0.0}},
        "no_ar_tar": {**main_only, "ar": 0.0, "tar": 0.0},
        # the embedding (and so the tied last layer) as large as the hidden layers
        "full_size_embedding": {**main_only, "model": {"embedding_size": hidden}},
        "no_weight_drop": {**main_only, "model": {"cell_options": {"weight_drop": 0.0}}},
        # nothing removed, another seed: how far two runs of one recipe land apart (not a paper row)
        "other_seed": {**main_only, "seed": full["seed"] + 1},
    }
    return {row: override(full, change) for row, change in changes.items()}


PRESETS = {
    "smoke": {
        "ptb": awd_lstm("ptb", emsize=16, nhid=24, epochs=3, batch_size=8, bptt=12, eval_batch_size=4,
                        nonmono=1, finetune_epochs=2, data={"fraction": 0.003}),
        "wikitext-2": awd_lstm("wikitext-2", emsize=16, nhid=24, epochs=3, batch_size=8, bptt=12, eval_batch_size=4,
                               nonmono=1, finetune_epochs=2, data={"fraction": 0.002}),
        "pointer": {corpus: {**POINTER[corpus], "window": 20} for corpus in POINTER},
    },
    "cpu": {
        "ptb": awd_lstm("ptb", emsize=100, nhid=300, epochs=28, bptt=35, finetune_epochs=8,
                        data={"train_fraction": 0.05}),
        # WikiText-2's command values (dropouti 0.65, dropouth 0.2, seed 1882) on a head of its training
        # text as long as the PTB row's, at PTB's batch 20 (the command's 80 would leave 16 steps an
        # epoch); its validation text is three times PTB's, so an epoch takes about twice as long
        "wikitext-2": awd_lstm("wikitext-2", emsize=100, nhid=300, epochs=28, bptt=35, finetune_epochs=8,
                               dropouti=0.65, dropouth=0.2, seed=1882, data={"train_fraction": 0.022}),
        "pointer": POINTER,
    },
    "paper": {
        "ptb": awd_lstm("ptb"),
        "wikitext-2": awd_lstm("wikitext-2", epochs=750, finetune_epochs=750, batch_size=80, dropouti=0.65,
                               dropouth=0.2, seed=1882),
        "pointer": POINTER,
    },
}


def sections(setup, preset, corpus="ptb"):
    """{experiment: {row: config}}: one experiment on `corpus` ("ptb" or "wikitext-2")."""
    if corpus not in ("ptb", "wikitext-2"):
        raise ValueError(f"corpus must be 'ptb' or 'wikitext-2', got {corpus!r}")
    return {f"awd_lstm-{corpus}-{preset}": ablations(setup[corpus])}


# Why a preset cannot test the claims (None: it can; one seed per row is judged inconclusive by the rule).
SCALE = {"smoke": "smoke trains tiny models for seconds to check that every phase runs; cpu and paper test the claims",
         "cpu": None, "paper": None}


def claims(preset, corpus="ptb"):
    """The paper's Table 4 as claims: each removed component raises validation perplexity over the full
    recipe before fine-tuning (an ablation: exploratory, Holm-corrected), fine-tuning and the cache
    pointer lower it. No anchor is declared at these presets."""
    from ..claims import Claim

    experiment = f"awd_lstm-{corpus}-{preset}"
    reference = PAPER["no_finetune"][corpus][0]
    declared = [Claim(row, f"removing {COMPONENTS[row]} raises validation perplexity", "paper", experiment, "validation",
                      "awd_lstm", row, "higher", reference_metric="before_finetune_validation", family="ablation",
                      paper_effect=(PAPER[row][corpus][0] - reference) / reference)
                for row in COMPONENTS if row not in ("no_finetune", "cache_pointer")]
    finetuned, cached = PAPER["awd_lstm"][corpus][0], PAPER["cache_pointer"][corpus][0]
    declared += [
        Claim("fine_tuning", "fine-tuning lowers the full recipe's validation perplexity", "paper", experiment,
              "validation", "awd_lstm", "awd_lstm", "lower", reference_metric="before_finetune_validation",
              paper_effect=(reference - finetuned) / reference),
        Claim("cache_pointer", "the cache pointer lowers the fine-tuned model's validation perplexity", "paper",
              experiment, "pointer_validation", "awd_lstm", "awd_lstm", "lower", reference_metric="validation",
              paper_effect=(finetuned - cached) / finetuned),
    ]
    return declared, []
