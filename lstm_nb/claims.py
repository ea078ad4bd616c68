"""Claims, declared before the run in a notebook's presets, and the one rule that judges them over seeds.

A `Claim` names a metric, the reference row and the compared row, the claimed direction, the smallest
effect that counts, and whether the paper states it or we do. A preset lists its claims and `seeds`;
every compared row is trained once per seed, with the same seed (so the same initial draw and data
order) in both rows, and `judge` turns the finished runs into one outcome per claim:

- **reproduced**: the 95 % t-interval of the paired differences lies wholly on the claimed side of 0
  and their mean reaches the minimum effect;
- **contradicted**: the interval lies wholly on the other side;
- **inconclusive**: anything else, including an effect within seed noise or fewer than 2 seeds;
- **not testable at this scale**: the preset says the claim cannot show at its scale, why, and which
  preset tests it (every claim of `smoke`, which checks that the code runs).

Claims in one `family` (an ablation's rows against one reference) are exploratory: their verdicts use
Holm's step-down correction over the family's paired t-tests. A "solved" claim counts the seeds on which
each row solves the task and compares the counts with a one-sided Fisher exact test.

An `Anchor` is a published number the preset's recipe must land near before its claims are trusted;
when it misses, every claim of the preset is reported as untrusted.

The Student-t and hypergeometric distributions are written here (about 40 lines) rather than imported
from scipy, so that judging a finished run needs nothing beyond the package's core dependencies; the
tests check them against scipy.
"""

import math
from dataclasses import dataclass

REPRODUCED, INCONCLUSIVE, CONTRADICTED, NOT_TESTABLE = (
    "reproduced", "inconclusive", "contradicted", "not testable at this scale")
LEVEL = 0.95


@dataclass(frozen=True)
class Claim:
    """One claim: `variant` beats `reference` on `metric` in `direction` ("lower" or "higher") by at
    least `min_effect` (in the metric's units). `source` is "paper" or "ours"; `paper_effect` the
    paper's reported improvement in the same direction, relative to its reference (0.08 = 8 %), or None
    where the paper gives no number. `experiment` is the run/ section holding both rows. `kind` is
    "paired" (a continuous metric) or "solved" (`metric` at or below `solved_below` counts as solved).
    `reference_metric` (default `metric`) reads the reference row's value from another column, so that
    one run can be compared before and after a phase (fine-tuning) or an evaluation (a cache).
    `requires` names a run column that must not be False in any compared run (e.g. `asgd_switched`:
    the claim rests on NT-ASGD's averaging, so a run whose switch never came leaves it unjudged)."""

    name: str
    statement: str
    source: str
    experiment: str
    metric: str
    reference: str
    variant: str
    direction: str = "lower"
    min_effect: float = 0.0
    paper_effect: float | None = None
    kind: str = "paired"
    solved_below: float | None = None
    family: str | None = None
    not_testable: str | None = None  # why this scale cannot test it, and the preset that does
    reference_metric: str | None = None
    requires: str | None = None

    def __post_init__(self):
        if self.source not in ("paper", "ours"):
            raise ValueError(f"claim {self.name}: source must be 'paper' or 'ours', got {self.source!r}")
        if self.direction not in ("lower", "higher"):
            raise ValueError(f"claim {self.name}: direction must be 'lower' or 'higher', got {self.direction!r}")
        if self.kind not in ("paired", "solved") or (self.kind == "solved") != (self.solved_below is not None):
            raise ValueError(f"claim {self.name}: kind 'solved' needs solved_below, 'paired' must not have it")
        if self.reference == self.variant and (self.reference_metric or self.metric) == self.metric:
            raise ValueError(f"claim {self.name}: compares {self.reference!r} with itself")


@dataclass(frozen=True)
class Anchor:
    """A published number (`published`, with its `citation`) that `row`'s `metric` must reach within
    `tolerance` (relative: 0.1 = ±10 %) before the preset's claims are trusted."""

    name: str
    experiment: str
    row: str
    metric: str
    published: float
    tolerance: float
    citation: str

    def check(self, measured):
        """{"measured", "published", "tolerance", "holds"}; `measured` None (not run yet) never holds."""
        holds = measured is not None and abs(measured - self.published) <= self.tolerance * self.published
        return {"anchor": self.name, "measured": measured, "published": self.published,
                "tolerance": f"±{self.tolerance:.0%}", "holds": holds, "citation": self.citation}


# ---- the distributions --------------------------------------------------------------------------------

def _incomplete_beta(a, b, x):
    """The regularised incomplete beta function I_x(a, b), by its continued fraction (Lentz)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1) / (a + b + 2):  # the fraction converges fast on this side only
        return 1.0 - _incomplete_beta(b, a, 1.0 - x)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)) / a
    tiny, f, c, d = 1e-300, 1.0, 1.0, 0.0
    for i in range(400):
        m = i // 2
        if i == 0:
            numerator = 1.0
        elif i % 2 == 0:
            numerator = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            numerator = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + numerator * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + numerator / c
        c = c if abs(c) > tiny else tiny
        f *= c * d
        if abs(1.0 - c * d) < 1e-14:
            break
    return front * (f - 1.0)


def t_cdf(t, df):
    """P(T ≤ t) for Student's t with `df` degrees of freedom."""
    tail = 0.5 * _incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p, df):
    """The t with P(T ≤ t) = p, by bisection (monotone; 200 halvings reach float precision)."""
    if p == 0.5:
        return 0.0
    if p < 0.5:  # symmetric; and the cdf is computed precisely on the side away from 0.5
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1e6
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


def fisher_one_sided(solved_a, n_a, solved_b, n_b):
    """P(at least `solved_a` of the solved runs fall in group a | the total solved), under no difference:
    the one-sided Fisher exact test that group a solves more often than group b."""
    total = solved_a + solved_b
    norm = math.comb(n_a + n_b, total)
    return sum(math.comb(n_a, k) * math.comb(n_b, total - k) for k in range(solved_a, min(n_a, total) + 1)) / norm


# ---- the rule -----------------------------------------------------------------------------------------

def paired_interval(differences, level=LEVEL):
    """(mean, low, high, two-sided p-value of mean 0) of paired differences: the t-interval."""
    n = len(differences)
    mean = sum(differences) / n
    if n < 2:
        return mean, -math.inf, math.inf, 1.0
    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1))
    half = t_quantile(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    p = 1.0 if sd == 0 and mean == 0 else (0.0 if sd == 0 else 2 * (1 - t_cdf(abs(mean) / (sd / math.sqrt(n)), n - 1)))
    return mean, mean - half, mean + half, p


def outcome_of_interval(mean, low, high, min_effect):
    """The rule for a continuous metric, on differences signed so that > 0 is the claimed direction."""
    if low > 0 and mean >= min_effect:
        return REPRODUCED
    if high < 0:
        return CONTRADICTED
    return INCONCLUSIVE


def holm(p_values, alpha=1 - LEVEL):
    """Which of `p_values` Holm's step-down procedure rejects at family-wise level `alpha`."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    rejected = [False] * len(p_values)
    for rank, i in enumerate(order):
        if p_values[i] > alpha / (len(p_values) - rank):
            break
        rejected[i] = True
    return rejected


def _values(runs, experiment, row, metric):
    """{seed: value} of `row`'s finished runs in `runs` (rows of `results.seeded_runs`)."""
    return {r["seed"]: r[metric] for r in runs
            if r["experiment"] == experiment and r["row"] == row and r.get(metric) is not None
            and not math.isnan(r[metric])}


def judge_one(claim, runs, scale_note=None):
    """One claim's row of the claims table, from `runs` (dicts with experiment, row, seed and metrics)."""
    ref = _values(runs, claim.experiment, claim.reference, claim.reference_metric or claim.metric)
    var = _values(runs, claim.experiment, claim.variant, claim.metric)
    seeds = sorted(set(ref) & set(var))
    row = {"claim": claim.name, "statement": claim.statement, "source": claim.source, "metric": claim.metric,
           "reference": claim.reference, "variant": claim.variant, "seeds": len(seeds),
           "paper_effect": claim.paper_effect, "min_effect": claim.min_effect, "family": claim.family}
    if seeds:
        row.update(reference_mean=_mean([ref[s] for s in seeds]), variant_mean=_mean([var[s] for s in seeds]))
    if claim.kind == "solved":
        solved = {name: sum(values[s] <= claim.solved_below for s in seeds) for name, values in (("ref", ref), ("var", var))}
        p = fisher_one_sided(solved["var"], len(seeds), solved["ref"], len(seeds)) if seeds else 1.0
        p_against = fisher_one_sided(solved["ref"], len(seeds), solved["var"], len(seeds)) if seeds else 1.0
        row.update(reference_solved=solved["ref"], variant_solved=solved["var"], p_value=p,
                   outcome=REPRODUCED if p <= 1 - LEVEL else CONTRADICTED if p_against <= 1 - LEVEL else INCONCLUSIVE)
    else:
        sign = 1.0 if claim.direction == "lower" else -1.0
        differences = [sign * (ref[s] - var[s]) for s in seeds]
        if differences:
            mean, low, high, p = paired_interval(differences)
            row.update(effect=mean, low=low, high=high, p_value=p, differences=differences,
                       relative_effect=mean / abs(row["reference_mean"]) if row["reference_mean"] else None,
                       outcome=outcome_of_interval(mean, low, high, claim.min_effect))
        else:
            row["outcome"] = INCONCLUSIVE
    if len(seeds) < 2 and row["outcome"] != NOT_TESTABLE:
        row["outcome"] = INCONCLUSIVE
    reason = claim.not_testable or scale_note or _unmet(claim, runs, seeds)
    if reason:
        row.update(outcome=NOT_TESTABLE, why=reason)
    if not seeds:  # a claim declared not testable at this scale stays so; any other has simply not run
        row.update(outcome=NOT_TESTABLE if claim.not_testable else "not run", why=reason)
    return row


def _unmet(claim, runs, seeds):
    """Why `claim.requires` leaves the claim unjudged (the runs where it is False), or None."""
    if not claim.requires:
        return None
    failed = sorted(f"{r['row']} (seed {r['seed']})" for r in runs if r["experiment"] == claim.experiment
                    and r["row"] in (claim.reference, claim.variant) and r["seed"] in seeds
                    and r.get(claim.requires) is False)
    return f"{claim.requires} is false for {', '.join(failed)}: the claim is not judged" if failed else None


def judge(claims, runs, scale_note=None, anchors=(), anchor_values=None):
    """The claims table (one dict per claim) of `claims` over `runs`; families get Holm's correction;
    a missed anchor marks every row untrusted. `anchor_values`: {anchor name: measured value or None}."""
    rows = [judge_one(c, runs, scale_note) for c in claims]
    families = {c.family for c in claims if c.family}
    for family in families:
        members = [i for i, c in enumerate(claims) if c.family == family and rows[i]["outcome"] in
                   (REPRODUCED, INCONCLUSIVE, CONTRADICTED) and "p_value" in rows[i]]
        for i, rejected in zip(members, holm([rows[i]["p_value"] for i in members])):
            if not rejected:
                rows[i]["outcome"] = INCONCLUSIVE
            rows[i]["exploratory"] = True
    checks = [a.check((anchor_values or {}).get(a.name)) for a in anchors]
    trusted = all(c["holds"] for c in checks)
    for row in rows:
        row["trusted"] = trusted
    return rows


def _mean(values):
    return sum(values) / len(values)
