"""Statistics of paired differences over seeds: one interval, four tests, verdicts, Holm, power.

A comparison is d_s = a_s − b_s per seed s (points: ticket − dense, criterion − control, filter −
block, …), paired because both arms share the seed's θ_0, data order and test images. Over n seeds,
with the mean d̄, the sample SD s and se = s/√n, every test is one-sided at α = 0.05 (statsmodels'
one-sample t tests on the differences):

    better       H0: Δ ≤ 0     rejected ⇔ L > 0
    non-inferior H0: Δ ≤ −ξ    rejected ⇔ L > −ξ          ("wins", the paper's winning ticket)
    equivalent   H0: |Δ| ≥ ξ   rejected ⇔ −ξ < L, U < ξ   (two one-sided tests, TOST; "matches")
    worse        H0: Δ ≥ −w    rejected ⇔ U < −w          (w = ξ against dense, 0 against a control)

where [L, U] = d̄ ∓ t(0.95, n−1)·se is the 90 % two-sided interval, whose ends are the one-sided
95 % bounds: every verdict can be read off that one interval. A comparison's verdict is the first
test of its `KINDS` entry that rejects; if none does, "inconclusive". With Holm's step-down
adjustment over the m comparisons of a declared question (each test separately), the same rule
on the adjusted p values gives the adjusted verdict.

Power is t-based (statsmodels' `TTestPower`, one-sided): the seeds that detect a difference of ξ
from the null boundary with 80 % power at α/m (the first step of Holm), and the smallest such
difference the seeds at hand detect. Both use the question's planning SD: the residual SD of
accuracy over configuration × seed (`planning_sd`), times √2 for a paired difference — one
configuration's own SD is known only to within a factor of about 0.35–1.67 at 4 degrees of freedom.
Where n ≥ 6, an exact sign-flip permutation p (scipy) of the verdict's test stands beside the t test.
"""
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import DescrStatsW

ALPHA = 0.05          # every test is one-sided at this level; the interval shown is 1 − 2α = 90 %
POWER = 0.80
PERMUTATION_MIN_SEEDS = 6   # below, no sign-flip p can fall under 2/2^5 = 0.0625 anyway

# the tests a kind of comparison runs, in the order its verdict is decided, and what each says
KINDS: dict[str, tuple[tuple[str, str], ...]] = {
    # ticket − dense, margin ξ: the paper's question
    "vs_dense": (("better", "better"), ("equivalent", "matches"), ("noninferior", "wins"), ("worse", "worse")),
    # arm a − arm b (criterion − control, filter − block, iterative − one-shot)
    "difference": (("better", "better"), ("worse", "worse"), ("equivalent", "equivalent")),
}
INCONCLUSIVE = "inconclusive"

VERDICT_RULE = (
    "every test one-sided at α = 0.05 on the per-seed differences (Student t, statsmodels); interval = "
    "90 % two-sided, its ends the one-sided 95 % bounds [L, U]. Ticket − dense with margin ξ: *better* if "
    "L > 0, else *matches* if −ξ < L and U < ξ (equivalence, TOST), else *wins* if L > −ξ (non-inferior), else "
    "*worse* if U < −ξ, else *inconclusive*. Arm a − arm b (criterion − control, filter − block): *better* if "
    "L > 0, *worse* if U < 0, *equivalent* if −ξ < L and U < ξ, else *inconclusive*. Holm's adjustment runs "
    "over each declared question's comparisons, per test; the adjusted verdict applies the same rule to the "
    "adjusted p values. Power: t-based (statsmodels TTestPower, one-sided, α/m, 80 %) with the question's "
    "planning SD")


@dataclass(frozen=True)
class Estimate:
    """Paired differences over seeds (points): n, mean, SD, the 90 % interval, the p value of each
    test of `kind` (`KINDS`) at `margin`, and the exact sign-flip permutation p of each (NaN where
    n < `PERMUTATION_MIN_SEEDS`)."""

    kind: str
    margin: float
    n: int
    mean: float
    sd: float
    low: float
    high: float
    p: dict[str, float] = field(default_factory=dict)
    permutation_p: dict[str, float] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        """The raw verdict: the first test of the kind whose p is under α."""
        return verdict(self.kind, self.p, self.n)

    def interval(self, digits: int = 2) -> str:
        """'[low, high]' with signs, or '—' without an interval (n < 2)."""
        return "—" if self.n < 2 else f"[{self.low:+.{digits}f}, {self.high:+.{digits}f}]"

    def bounds(self, alpha: float) -> tuple[float, float]:
        """The one-sided (1 − `alpha`) lower and upper bounds of the mean difference (points):
        d̄ ∓ t(1 − alpha, n − 1)·se; (NaN, NaN) for n < 2. At `ALPHA` they are the 90 % interval."""
        if self.n < 2:
            return math.nan, math.nan
        half = _half_width(self.sd, self.n, alpha)
        return self.mean - half, self.mean + half

    def mean_text(self, digits: int = 2) -> str:
        return "—" if self.n == 0 else f"{self.mean:+.{digits}f}"


def _half_width(sd: float, n: int, alpha: float) -> float:
    """t(1 − alpha, n − 1)·sd/√n (points): from the mean to its one-sided (1 − alpha) bound."""
    return float(scipy_stats.t.ppf(1 - alpha, n - 1)) * sd / math.sqrt(n) if sd else 0.0


NO_VERDICT = ("no seeds", "1 seed")    # no interval, hence no verdict: what `verdict` says instead


def verdict(kind: str, p: dict[str, float], n: int) -> str:
    """The verdict of a comparison of `kind` from its tests' p values (raw or adjusted)."""
    if n < 2:
        return NO_VERDICT[n]
    for test, word in KINDS[kind]:
        if p.get(test, math.nan) < ALPHA:
            return word
    return INCONCLUSIVE


def deciding_test(kind: str, p: dict[str, float]) -> str | None:
    """The test behind the verdict (the first that rejects), else the one closest to rejecting."""
    tests = [t for t, _ in KINDS[kind] if math.isfinite(p.get(t, math.nan))]
    if not tests:
        return None
    rejecting = [t for t in tests if p[t] < ALPHA]
    return rejecting[0] if rejecting else min(tests, key=lambda t: p[t])


def estimate(values: Iterable[float], kind: str = "vs_dense", margin: float = 0.0) -> Estimate:
    """The interval and the p value of every test of `kind` (module docstring) for the paired
    differences `values` (finite ones only), with margin ξ = `margin` points (≥ 0)."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}: one of {', '.join(KINDS)}")
    if not margin >= 0:
        raise ValueError(f"margin must be ≥ 0 points, got {margin!r}")
    d = np.array([x for x in values if isinstance(x, int | float) and math.isfinite(x)], dtype=float)
    n = len(d)
    if n < 2:
        mean = float(d.mean()) if n else math.nan
        return Estimate(kind, margin, n, mean, math.nan, math.nan, math.nan)
    worse_bound = -margin if kind == "vs_dense" else 0.0
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    half = _half_width(sd, n, ALPHA)
    if sd == 0.0:   # no spread: t is ±inf or undefined; each test rejects exactly when the mean is past its bound
        p = {"better": mean > 0, "noninferior": mean > -margin, "worse": mean < worse_bound,
             "equivalent": abs(mean) < margin}
        p = {k: 0.0 if v else 1.0 for k, v in p.items()}
    else:
        described = DescrStatsW(d)
        p = {"better": described.ttest_mean(0.0, alternative="larger")[1],
             "noninferior": described.ttest_mean(-margin, alternative="larger")[1],
             "worse": described.ttest_mean(worse_bound, alternative="smaller")[1],
             "equivalent": described.ttost_mean(-margin, margin)[0] if margin > 0 else 1.0}
    tests = {t for t, _ in KINDS[kind]}
    p = {t: float(v) for t, v in p.items() if t in tests}
    permutation = {}
    if n >= PERMUTATION_MIN_SEEDS:
        permutation = {t: sign_flip_p(d, t, margin, worse_bound) for t in p}
    return Estimate(kind, margin, n, mean, sd, mean - half, mean + half, p, permutation)


def sign_flip_p(d: Sequence[float], test: str, margin: float, worse_bound: float = 0.0) -> float:
    """Exact sign-flip permutation p of `test` for the paired differences `d`: the differences are
    shifted to the test's null boundary and every one of the 2^n sign patterns is enumerated
    (scipy.stats.permutation_test); equivalence takes the larger of its two one-sided p values."""
    d = np.asarray(d, dtype=float)

    def one_sided(shift: float, alternative: str) -> float:
        result = scipy_stats.permutation_test((d - shift,), np.mean, permutation_type="samples",
                                              alternative=alternative, n_resamples=np.inf)
        return float(result.pvalue)

    if test == "better":
        return one_sided(0.0, "greater")
    if test == "noninferior":
        return one_sided(-margin, "greater")
    if test == "worse":
        return one_sided(worse_bound, "less")
    if test == "equivalent":
        return max(one_sided(-margin, "greater"), one_sided(margin, "less"))
    raise ValueError(f"test {test!r}")


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p values (statsmodels `multipletests`); NaN entries stay NaN and
    do not count towards m."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(len(p), math.nan)
    finite = np.isfinite(p)
    if finite.any():
        out[finite] = multipletests(p[finite], alpha=ALPHA, method="holm")[1]
    return out


def adjust(estimates: Sequence[Estimate]) -> list[dict[str, float]]:
    """Holm-adjusted p values of each test over `estimates` (one family), per estimate."""
    adjusted: list[dict[str, float]] = [{} for _ in estimates]
    tests = sorted({t for e in estimates for t in e.p})
    for test in tests:
        column = holm([e.p.get(test, math.nan) for e in estimates])
        for i, value in enumerate(column):
            if math.isfinite(value):
                adjusted[i][test] = float(value)
    return adjusted


def planning_sd(values: pd.DataFrame) -> tuple[float, int]:
    """(residual SD of `value` over configuration × seed, its degrees of freedom) from a frame with
    columns config, seed, value: the additive model value ~ config + seed fitted by least squares
    (statsmodels OLS), which also takes configurations with fewer seeds. (NaN, 0) when there are
    not two configurations and two seeds to separate the noise from."""
    import statsmodels.formula.api as smf

    df = values.dropna(subset=["value"])
    if df.config.nunique() < 2 or df.seed.nunique() < 2:
        return math.nan, 0
    fit = smf.ols("value ~ C(config) + C(seed)", data=df.assign(config=df.config.astype(str))).fit()
    if fit.df_resid < 1:
        return math.nan, 0
    return float(math.sqrt(fit.mse_resid)), int(fit.df_resid)


def seeds_needed(difference: float, sd: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """Seeds (paired differences) for a one-sided t test at `alpha` to detect a true distance of
    `difference` points from its null boundary with `power`, when a paired difference has SD `sd`
    (statsmodels TTestPower); inf for a zero difference, NaN without an SD."""
    if not (math.isfinite(sd) and sd > 0) or not math.isfinite(difference):
        return math.nan
    if difference == 0:
        return math.inf
    effect = abs(difference) / sd
    if TTestPower().power(effect_size=effect, nobs=2, alpha=alpha, alternative="larger") >= power:
        return 2.0          # the fewest seeds with an interval already suffice (the solver finds no root below)
    n = TTestPower().solve_power(effect_size=effect, alpha=alpha, power=power, alternative="larger")
    return float(max(2, math.ceil(float(np.asarray(n).item()))))


def detectable(n: int, sd: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest distance from the null boundary (points) that `n` paired seeds detect with
    `power` in a one-sided t test at `alpha` when a paired difference has SD `sd`; NaN for n < 2."""
    if n < 2 or not (math.isfinite(sd) and sd > 0):
        return math.nan
    effect = TTestPower().solve_power(effect_size=None, nobs=n, alpha=alpha, power=power, alternative="larger")
    return float(np.asarray(effect).item()) * sd


def percentile_among(value: float, draws: Sequence[float]) -> float:
    """Where `value` falls among the random `draws` (same seed, same shape), in %: the share of draws
    below it, ties counted half (50 = a typical draw, 100 = better than every draw)."""
    d = np.asarray(draws, dtype=float)
    if not len(d):
        raise ValueError("percentile_among needs at least one draw")
    return float(100.0 * ((d < value).sum() + 0.5 * (d == value).sum()) / len(d))


def percentile_interval(percentiles: Sequence[float]) -> tuple[float, float, float]:
    """Mean of per-seed percentiles (%) and its 90 % t interval over the seeds, clipped to [0, 100]
    (NaN ends with fewer than 2 seeds)."""
    x = np.asarray(percentiles, dtype=float)
    mean = float(x.mean()) if len(x) else math.nan
    if len(x) < 2:
        return mean, math.nan, math.nan
    if x.std(ddof=1) == 0.0:
        return mean, mean, mean
    low, high = DescrStatsW(x).tconfint_mean(alpha=2 * ALPHA)
    return mean, max(0.0, float(low)), min(100.0, float(high))


def binomial_se(acc_pct: float, n: int) -> float:
    """Standard error (points) of an accuracy of `acc_pct` % measured on `n` test images."""
    if n <= 0 or not math.isfinite(acc_pct):
        return math.nan
    a = acc_pct / 100.0
    return 100.0 * math.sqrt(a * (1 - a) / n)
