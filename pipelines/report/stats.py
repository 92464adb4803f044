"""Statistics of paired differences over seeds: a 95 % interval, a three-way verdict, and power.

A configuration's Δ (ticket − dense accuracy, in points) is paired by seed: the ticket and its
dense run share θ_0, the data order and the test images. Over n seeds:

- interval: mean Δ ± t₀.₉₇₅,ₙ₋₁ · sd / √n (Student t on the paired differences, scipy);
- verdict: *wins* when the interval's lower end ≥ −ξ, *loses* when its upper end < −ξ, else
  *undecided*; one seed gets "1 seed" and no interval;
- for undecided ones: the seeds that would detect the observed Δ at 80 % power,
  n ≈ ((z₀.₉₇₅ + z₀.₈) · sd / Δ)², and the smallest |Δ| the seeds at hand can detect,
  (z₀.₉₇₅ + z₀.₈) · sd / √n.

The same interval compares a criterion with a control: d = acc(criterion) − acc(control) per seed,
"criterion better" when the interval lies above 0, "control better" when below, else undecided.
"""
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
POWER = 0.80

VERDICT_RULE = ("Δ = ticket − dense accuracy (points), paired by seed; 95 % interval = mean ± t(0.975, n−1)·sd/√n. "
                "Verdict: wins when the interval's lower end ≥ −ξ, loses when its upper end < −ξ, else undecided "
                "(ξ = {xi:g} points); one seed: '1 seed', no interval. For undecided rows, 'seeds for 80 %' = "
                "((z0.975 + z0.8)·sd/Δ)² and 'detectable |Δ|' = (z0.975 + z0.8)·sd/√n")
CONTROL_RULE = ("d = acc(criterion) − acc(control) per seed (points), 95 % t interval over the seeds both have; "
                "criterion better when the interval lies above 0, control better when below, else undecided")


@dataclass(frozen=True)
class Paired:
    """Summary of paired differences over seeds (points)."""

    n: int
    mean: float
    sd: float
    low: float
    high: float
    verdict: str
    seeds_needed: float  # seeds for 80 % power at the observed mean (nan unless undecided)
    detectable: float    # smallest |Δ| the n seeds detect at 80 % power (nan for n < 2)

    def interval(self, digits: int = 2) -> str:
        """'[low, high]' with signs, or '—' without an interval."""
        if self.n < 2:
            return "—"
        return f"[{self.low:+.{digits}f}, {self.high:+.{digits}f}]"

    def mean_text(self, digits: int = 2) -> str:
        return "—" if self.n == 0 else f"{self.mean:+.{digits}f}"


def paired(values: Iterable[float], xi: float = 0.0, labels: tuple[str, str, str] = ("wins", "loses", "undecided")
           ) -> Paired:
    """Interval and verdict of paired differences `values` (finite ones only) against −`xi`.

    `labels` name the outcomes (above, below, neither); controls use ("criterion better",
    "control better", "undecided") with xi = 0."""
    v = np.array([x for x in values if isinstance(x, int | float) and math.isfinite(x)], dtype=float)
    n = len(v)
    if n == 0:
        return Paired(0, math.nan, math.nan, math.nan, math.nan, "no seeds", math.nan, math.nan)
    mean = float(v.mean())
    if n == 1:
        return Paired(1, mean, math.nan, math.nan, math.nan, "1 seed", math.nan, math.nan)
    sd = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * sd / math.sqrt(n)
    low, high = mean - half, mean + half
    above, below, neither = labels
    verdict = above if low >= -xi else below if high < -xi else neither
    z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2) + stats.norm.ppf(POWER))
    detectable = z * sd / math.sqrt(n)
    needed = math.nan
    if verdict == neither:
        needed = math.inf if mean == 0 else math.ceil((z * sd / mean) ** 2)
    return Paired(n, mean, sd, low, high, verdict, needed, detectable)


def binomial_se(acc_pct: float, n: int) -> float:
    """Standard error (points) of an accuracy of `acc_pct` % measured on `n` test images."""
    if n <= 0 or not math.isfinite(acc_pct):
        return math.nan
    a = acc_pct / 100.0
    return 100.0 * math.sqrt(a * (1 - a) / n)
