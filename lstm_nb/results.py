"""One table of finished runs, read from the JSON files in run/ (so it shows what was measured, by
whichever session or machine ran it), for the notebooks and the README."""

import json
import math
from pathlib import Path

from . import checkpoints, claims, paths, presets
from .extras import require
from .objectives import SOLVED_FRACTION
from .presets.seeds import split_run_name

pd = require("pandas")


def summaries(pattern="*", run_root=None):
    """Every finished run whose experiment matches `pattern` (a glob), one row each.

    An experiment named `<notebook>-<dataset>-<preset>` gives the `preset` column. Word-level rows get
    perplexities, character-level rows bits per character, classification and copy rows accuracy, the
    adding problem's rows MSE (`unit` says which); `training` is the last epoch's training metric
    (the mean over that epoch's updates, in the same unit), `asgd_switched` whether an NT-ASGD run
    switched to averaging (`switched_after_epoch`: after which epoch); `dynamic_*` and `mc_*` columns
    come from the result dynamic evaluation and MC-dropout evaluation chose, when they were run;
    `before_finetune_*` from a fine-tuned run's summary (its best model before fine-tuning),
    `pointer_*` from the cache pointer's latest evaluation of each split. A memory task's rows (copy, adding) add
    `test_baseline_fraction`, `solved`, `updates_to_solve` and `solved_in_training` (`memory_task_columns`).
    """
    rows = []
    for path in sorted(Path(run_root or paths.run_dir()).glob(f"{pattern}/*/{checkpoints.SUMMARY}")):
        summary = json.loads(path.read_text())
        unit = next(u for u in ("perplexity", "bpc", "accuracy", "mse", "loss") if f"best_validation_{u}" in summary)
        row = {
            "experiment": summary["experiment"],
            "dataset": summary["corpus"],
            "preset": presets.preset_of(summary["experiment"]),
            "model": summary["model_name"],
            "parameters": summary["parameters"],
            "epochs": summary["epochs_trained"],
            "minutes": round(summary["training_duration"] / 60, 1),
            "unit": unit,
            "validation": summary[f"best_validation_{unit}"],
            "test": summary.get(f"test_{unit}"),
            "training": _last_epoch(path.parent, summary).get(f"training_{unit}"),
            # NT-ASGD runs: whether the switch to averaging came, and after which epoch (None: no NT-ASGD)
            "asgd_switched": (summary["switched_to_asgd_after_epoch"] is not None
                              if "switched_to_asgd_after_epoch" in summary else None),
            "switched_after_epoch": summary.get("switched_to_asgd_after_epoch"),
        }
        row.update(memory_task_columns(path.parent, summary))
        chosen = checkpoints.evaluation_file(path.parent, "dynamic_eval", chosen=True)
        if chosen.exists():
            dyn = json.loads(chosen.read_text())
            row.update(dynamic_validation=dyn["valid"][f"dynamic_{unit}"], dynamic_test=dyn["test"][f"dynamic_{unit}"],
                       dynamic_lr=dyn["lr"])
        chosen = checkpoints.evaluation_file(path.parent, "mc_dropout", chosen=True)
        if chosen.exists():
            mc = json.loads(chosen.read_text())
            row.update(mc_validation=mc["valid"][f"mc_{unit}"] if mc["valid"] else None,
                       mc_test=mc["test"][f"mc_{unit}"], mc_multiplier=mc["multiplier"], mc_samples=mc["test"]["options"]["samples"])
        if f"before_finetune_best_validation_{unit}" in summary:
            row.update(before_finetune_validation=summary[f"before_finetune_best_validation_{unit}"],
                       before_finetune_test=summary.get(f"before_finetune_test_{unit}"))
        cache = checkpoints.evaluation_file(path.parent, "pointer")
        if cache.exists():
            for result in json.loads(cache.read_text()):
                split = {"valid": "validation"}.get(result["options"]["split"], result["options"]["split"])
                row[f"pointer_{split}"] = result[f"pointer_{unit}"]
        rows.append(row)
    return pd.DataFrame(rows)


def memory_task_columns(folder, summary):
    """A memory task's run (its metrics hold `baseline_fraction`, the loss over the memoryless one):
    `test_baseline_fraction`; `solved`, whether its test loss is below `objectives.SOLVED_FRACTION` of the baseline;
    `updates_to_solve`, the updates after which its validation loss first was; `solved_in_training`,
    whether that ever happened: a run that never got there counts its last update, a lower bound. {}
    for any other run."""
    if "test_baseline_fraction" not in summary:
        return {}
    history = [json.loads(checkpoints.metrics_file(folder, e).read_text())
               for e in range(1, summary["epochs_trained"] + 1)]
    first = next((m for m in history if m["validation_baseline_fraction"] <= SOLVED_FRACTION), None)
    return {"test_baseline_fraction": summary["test_baseline_fraction"],
            "solved": summary["test_baseline_fraction"] <= SOLVED_FRACTION,
            "updates_to_solve": (first or history[-1])["updates"], "solved_in_training": first is not None}


def _last_epoch(folder, summary):
    """The last trained epoch's metrics, {} when absent."""
    path = checkpoints.metrics_file(folder, summary["epochs_trained"])
    return json.loads(path.read_text()) if path.exists() else {}


def seeded_runs(pattern="*", run_root=None):
    """`summaries` as a list of dicts with `row` and `seed` split from each run's name (`presets.seeds`)."""
    runs = summaries(pattern, run_root).to_dict("records")
    for run in runs:
        run["row"], run["seed"] = split_run_name(run["model"])
        for key, value in run.items():  # pandas fills a column a run lacks with NaN
            if isinstance(value, float) and math.isnan(value):
                run[key] = None
    return runs


def over_seeds(pattern, run_root=None):
    """`summaries` grouped by row (a row trained over seeds is one line): the seed count, parameters,
    and the mean (and standard deviation) of the training, validation and test metrics, and minutes."""
    runs = summaries(pattern, run_root)
    runs = runs.assign(row=[split_run_name(m)[0] for m in runs["model"]])
    return runs.groupby("row", sort=False).agg(seeds=("validation", "count"), parameters=("parameters", "first"),
                                               training=("training", "mean"), validation=("validation", "mean"),
                                               validation_std=("validation", "std"), test=("test", "mean"),
                                               test_std=("test", "std"), minutes=("minutes", "mean"))


def claims_table(notebook, preset, run_root=None, **parameters):
    """(claims, anchors) of `notebook`'s `preset` over its finished runs in run/, as DataFrames: one row
    per claim declared in the preset (`lstm_nb.claims.judge`), one per anchor (measured beside published)."""
    declared, anchors = presets.claims(notebook, preset, **parameters)
    runs = seeded_runs(f"{notebook}-*-{preset}", run_root)
    measured = {}
    for anchor in anchors:
        values = [r[anchor.metric] for r in runs if r["experiment"] == anchor.experiment and r["row"] == anchor.row]
        measured[anchor.name] = values[0] if values else None
    rows = claims.judge(declared, runs, presets.scale_note(notebook, preset), anchors, measured)
    for row in rows:
        row.update(notebook=notebook, preset=preset)
    checks = pd.DataFrame([a.check(measured[a.name]) for a in anchors])
    return pd.DataFrame(rows), checks


def every_claim(run_root=None, scales=("cpu", "paper")):
    """The claims table of every notebook and preset in `scales` that declares claims: judged where run/
    holds its runs, one row per claim marked "not run" where it does not (a notebook never run still shows)."""
    tables = [claims_table(notebook, preset, run_root)[0] for notebook, preset in presets.with_claims()
              if preset in scales]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def claims_markdown(table):
    """The README's results: one markdown table per notebook and preset of `table` (`every_claim`), a line
    per claim with our effect and its interval beside the paper's, and the outcome. A claim of ours, not
    the paper's, is marked "(ours)"."""

    def number(value, digits=2):
        return "–" if value is None or pd.isna(value) else f"{value:.{digits}f}"

    sections = []
    for (notebook, preset), rows in table.groupby(["notebook", "preset"], sort=False):
        lines = [f"**[{notebook}](notebooks/{notebook}.ipynb)**, `{preset}` preset:", "",
                 "| claim | seeds | reference → variant (means) | effect [95 %] | paper's effect | outcome |",
                 "|---|---|---|---|---|---|"]
        for _, r in rows.iterrows():
            means = f"{number(r.get('reference_mean'))} → {number(r.get('variant_mean'))}" if r["seeds"] else "–"
            if r["seeds"] and r.get("reference_solved") is not None and not pd.isna(r.get("reference_solved")):
                effect = f"solved {int(r['reference_solved'])} → {int(r['variant_solved'])} of {r['seeds']}"
            else:
                effect = f"{number(r.get('effect'))} [{number(r.get('low'))}, {number(r.get('high'))}]" if r["seeds"] else "–"
            paper = "–" if pd.isna(r.get("paper_effect")) or r.get("paper_effect") is None else f"{r['paper_effect']:+.1%}"
            outcome = r["outcome"] + ("" if r.get("trusted", True) or r["outcome"] == "not run" else ", anchor missed")
            claim = r["statement"] + (" (ours)" if r["source"] == "ours" else "")
            lines.append(f"| {claim} | {r['seeds']} | {means} | {effect} | {paper} | {outcome} |")
        sections.append("\n".join(lines))
    return "\n\n".join(sections)


def main(argv=None):
    """python -m lstm_nb.results: every notebook's claims (cpu and paper presets) from run/, as the
    README's markdown table and figures/claims.png."""
    import argparse

    from . import plots

    parser = argparse.ArgumentParser(prog="python -m lstm_nb.results", description=main.__doc__)
    parser.add_argument("--scales", nargs="+", default=["cpu"], help="the presets to include (default: cpu)")
    args = parser.parse_args(argv)
    table = every_claim(scales=args.scales)
    plots.plot_claims(table, title="Every claim, from run/", name="claims")
    print(claims_markdown(table))


if __name__ == "__main__":
    main()
