"""The one rule that judges claims over seeds: its distributions, its error rates on simulated data,
and the declarations and anchors the presets make."""

import math
import random

import pytest
from scipy import stats

from lstm_nb import claims


@pytest.mark.parametrize("df", [1, 2, 3, 5, 10, 40])
def test_t_distribution_matches_scipy(df):
    for t in (-7.0, -2.1, -0.3, 0.0, 0.8, 2.5, 12.0):
        assert claims.t_cdf(t, df) == pytest.approx(stats.t.cdf(t, df), abs=1e-10)
    for p in (0.025, 0.5, 0.9, 0.975, 0.99):
        assert claims.t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-8, abs=1e-9)


@pytest.mark.parametrize("table", [(3, 3, 0, 3), (2, 3, 0, 3), (5, 6, 1, 6), (0, 4, 4, 4)])
def test_fisher_one_sided_matches_scipy(table):
    a, n_a, b, n_b = table
    expected = stats.fisher_exact([[a, n_a - a], [b, n_b - b]], alternative="greater").pvalue
    assert claims.fisher_one_sided(a, n_a, b, n_b) == pytest.approx(expected, abs=1e-12)


def test_paired_interval_matches_scipy():
    d = [1.2, 0.4, 2.0, 0.9]
    _, low, high, p = claims.paired_interval(d)
    ci = stats.t.interval(0.95, len(d) - 1, loc=sum(d) / 4, scale=stats.sem(d))
    assert (low, high) == pytest.approx(ci, abs=1e-9)
    assert p == pytest.approx(stats.ttest_1samp(d, 0).pvalue, abs=1e-9)


def test_holm_steps_down():
    assert claims.holm([0.01, 0.04, 0.03, 0.5]) == [True, False, False, False]  # 0.03 > 0.05 / 3
    assert claims.holm([0.001, 0.02, 0.04]) == [True, True, True]  # 0.001 ≤ .05/3, .02 ≤ .05/2, .04 ≤ .05


def _simulated(effect, seeds, rng, sigma=1.0, seed_noise=3.0):
    """Runs of two rows: a shared per-seed offset (what pairing removes) plus independent noise."""
    runs = []
    for s in range(seeds):
        offset = rng.gauss(0, seed_noise)
        runs.append({"experiment": "e", "row": "ref", "seed": s, "m": 100 + offset + rng.gauss(0, sigma / math.sqrt(2))})
        runs.append({"experiment": "e", "row": "var", "seed": s,
                     "m": 100 - effect + offset + rng.gauss(0, sigma / math.sqrt(2))})
    return runs


CLAIM = claims.Claim("c", "var is lower", "paper", "e", "m", "ref", "var", "lower", min_effect=0.0)


def test_false_positive_rate_under_the_null_is_at_most_five_percent():
    rng = random.Random(0)
    outcomes = [claims.judge_one(CLAIM, _simulated(0.0, 3, rng))["outcome"] for _ in range(4000)]
    assert outcomes.count(claims.REPRODUCED) / len(outcomes) <= 0.05
    assert outcomes.count(claims.CONTRADICTED) / len(outcomes) <= 0.05


def test_an_effect_of_three_sigma_with_three_seeds_is_found_most_of_the_time():
    rng = random.Random(1)
    outcomes = [claims.judge_one(CLAIM, _simulated(3.0, 3, rng))["outcome"] for _ in range(2000)]
    assert outcomes.count(claims.REPRODUCED) / len(outcomes) > 0.6
    assert outcomes.count(claims.CONTRADICTED) == 0


def test_the_minimum_effect_and_the_direction_count():
    rng = random.Random(2)
    runs = _simulated(3.0, 5, rng, sigma=0.1)
    assert claims.judge_one(CLAIM, runs)["outcome"] == claims.REPRODUCED
    too_small = claims.Claim("c", "", "ours", "e", "m", "ref", "var", "lower", min_effect=5.0)
    assert claims.judge_one(too_small, runs)["outcome"] == claims.INCONCLUSIVE
    wrong_way = claims.Claim("c", "", "ours", "e", "m", "ref", "var", "higher")
    assert claims.judge_one(wrong_way, runs)["outcome"] == claims.CONTRADICTED


def test_one_seed_is_inconclusive_and_a_declared_scale_is_not_testable():
    runs = _simulated(10.0, 1, random.Random(3), sigma=0.1)
    assert claims.judge_one(CLAIM, runs)["outcome"] == claims.INCONCLUSIVE
    row = claims.judge_one(CLAIM, _simulated(10.0, 3, random.Random(3)), scale_note="smoke: checks the code runs")
    assert row["outcome"] == claims.NOT_TESTABLE and row["why"] == "smoke: checks the code runs"
    assert row["effect"] > 0  # still measured and shown
    assert claims.judge_one(CLAIM, [])["outcome"] == "not run"
    left_out = claims.Claim("c", "", "paper", "e", "m", "ref", "var", not_testable="cpu leaves this row out")
    assert claims.judge_one(left_out, [])["outcome"] == claims.NOT_TESTABLE  # declared so, never trained here


def test_a_required_run_property_that_is_false_leaves_the_claim_unjudged():
    runs = _simulated(3.0, 3, random.Random(5), sigma=0.1)
    needs = claims.Claim("c", "", "paper", "e", "m", "ref", "var", "lower", requires="asgd_switched")
    for run in runs:
        run["asgd_switched"] = None if run["row"] == "ref" else True  # None: not applicable to that run
    assert claims.judge_one(needs, runs)["outcome"] == claims.REPRODUCED
    runs[3]["asgd_switched"] = False  # var, seed 1: the switch never came
    row = claims.judge_one(needs, runs)
    assert row["outcome"] == claims.NOT_TESTABLE and "var (seed 1)" in row["why"] and row["effect"] > 0


def test_solved_counts_use_the_exact_test():
    claim = claims.Claim("s", "var solves", "paper", "e", "m", "ref", "var", kind="solved", solved_below=1.0)
    runs = [{"experiment": "e", "row": r, "seed": s, "m": v} for s in range(3)
            for r, v in (("ref", 5.0), ("var", 0.1))]
    row = claims.judge_one(claim, runs)
    assert (row["variant_solved"], row["reference_solved"]) == (3, 0)
    assert row["p_value"] == pytest.approx(0.05) and row["outcome"] == claims.REPRODUCED
    runs[1]["m"] = 5.0  # seed 0 of var no longer solves: 2 of 3 against 0 of 3 is p = 0.2
    assert claims.judge_one(claim, runs)["outcome"] == claims.INCONCLUSIVE


def test_a_family_is_corrected_with_holm_and_marked_exploratory():
    rng = random.Random(4)
    runs = _simulated(0.3, 3, rng, sigma=0.2)
    runs += [{**r, "row": "var2"} for r in _simulated(0.0, 3, rng) if r["row"] == "var"]
    family = [claims.Claim(n, "", "paper", "e", "m", "ref", n, family="ablation") for n in ("var", "var2")]
    rows = claims.judge(family, runs)
    alone = claims.judge_one(family[0], runs)
    assert all(r["exploratory"] for r in rows)
    assert rows[0]["p_value"] == alone["p_value"]
    if alone["outcome"] == claims.REPRODUCED and alone["p_value"] > 0.025:
        assert rows[0]["outcome"] == claims.INCONCLUSIVE


def test_declarations_are_checked():
    with pytest.raises(ValueError, match="source must be"):
        claims.Claim("c", "", "folklore", "e", "m", "a", "b")
    with pytest.raises(ValueError, match="direction"):
        claims.Claim("c", "", "paper", "e", "m", "a", "b", direction="smaller")
    with pytest.raises(ValueError, match="solved_below"):
        claims.Claim("c", "", "paper", "e", "m", "a", "b", kind="solved")
    with pytest.raises(ValueError, match="with itself"):
        claims.Claim("c", "", "paper", "e", "m", "a", "a")


def test_a_missed_anchor_marks_every_claim_untrusted():
    anchor = claims.Anchor("a", "e", "ref", "m", published=110.0, tolerance=0.1, citation="somewhere")
    assert anchor.check(118.0)["holds"] and not anchor.check(122.0)["holds"] and not anchor.check(None)["holds"]
    runs = _simulated(3.0, 3, random.Random(5), sigma=0.1)
    assert claims.judge([CLAIM], runs, anchors=[anchor], anchor_values={"a": 115.0})[0]["trusted"]
    assert not claims.judge([CLAIM], runs, anchors=[anchor], anchor_values={"a": 130.0})[0]["trusted"]


def test_the_gating_claims_compare_updates_to_solve_within_each_task():
    """Declared before the run: each memory task's claims are one Holm family on `updates_to_solve`, over
    rows the preset trains. A reference that never solves (counted at its last update) against a variant
    that solves on every seed is reproduced, even after Holm's correction over the family."""
    from lstm_nb import presets

    declared, anchors = presets.claims("ur_lstm", "cpu")
    assert {c.family for c in declared} == {"adding", "copy"} and not anchors
    assert all(c.metric == "updates_to_solve" and c.direction == "lower" for c in declared)
    for task in ("adding", "copy"):
        trained = set(presets.get("ur_lstm", "cpu")[task]["variants"])
        mine = [c for c in declared if c.family == task]
        assert len(mine) == 5 and all({c.reference, c.variant} <= trained for c in mine)
    budget = 2400
    solves = {"lstm": [budget] * 3, "ur_lstm": [400, 600, 500], "r_lstm": [800, 700, 900], "u_lstm": [budget, 2200, budget],
              "chrono_lstm": [600, 400, 700], "master_gate_lstm": [budget] * 3}
    runs = [{"experiment": "ur_lstm-adding-cpu", "row": row, "seed": seed, "updates_to_solve": value}
            for row, values in solves.items() for seed, value in zip((1, 2, 3), values)]
    table = {r["claim"]: r["outcome"] for r in claims.judge([c for c in declared if c.family == "adding"], runs)}
    assert table["adding_ur_lstm"] == table["adding_refine"] == table["adding_refine_vs_master"] == claims.REPRODUCED
    assert table["adding_ugi"] == table["adding_chrono"] == claims.INCONCLUSIVE
