"""Rows trained over several seeds: one run per (row, seed), named `<row>-seed<N>`.

The same seed in two rows gives them the same initial random draw and the same data order, so their
difference on that seed is a paired comparison (`lstm_nb.claims`). Run names without the suffix (runs
trained before seeds were a preset value) read as seed None; the gating notebook's `<row>-s<N>` is read too.
"""

import re

_NAME = re.compile(r"(?P<row>.+)-s(?:eed)?(?P<seed>\d+)$")  # the gating notebook's runs end in -s<N>


def seeded(rows, seeds):
    """{"<row>-seed<N>": the row's config with seed N} for every row of {row: config} and seed."""
    return {run_name(row, seed): {**cfg, "seed": seed} for row, cfg in rows.items() for seed in seeds}


def run_name(row, seed):
    return f"{row}-seed{seed}"


def split_run_name(name):
    """(row, seed) of a run name; (name, None) for a run trained without seeds."""
    match = _NAME.match(name)
    return (match["row"], int(match["seed"])) if match else (name, None)
