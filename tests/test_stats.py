"""The report's statistics: paired t intervals, the three-way verdict, power, binomial error.

Expected values are worked by hand from Student t and normal quantiles (t₀.₉₇₅ with 2 degrees of
freedom = 4.3027, with 1 = 12.706; z₀.₉₇₅ + z₀.₈ = 1.95996 + 0.84162 = 2.80159).
"""
import math

import pytest

from pipelines.report.stats import binomial_se, paired


def test_interval_is_mean_plus_minus_t_times_standard_error():
    s = paired([1.0, 2.0, 3.0])                   # mean 2, sd 1, se 1/√3
    assert (s.n, s.mean, s.sd) == (3, 2.0, 1.0)
    assert s.low == pytest.approx(2 - 4.302653 / math.sqrt(3), abs=1e-5)
    assert s.high == pytest.approx(2 + 4.302653 / math.sqrt(3), abs=1e-5)
    assert s.verdict == "undecided"                # the interval [−0.48, +4.48] holds 0
    assert paired([1.0, 2.0, 3.0], xi=0.5).verdict == "wins"   # ... but not −0.5
    assert math.isnan(paired([1.0, 2.0, 3.0], xi=0.5).seeds_needed)
    assert s.detectable == pytest.approx(2.801585 / math.sqrt(3), abs=1e-5)
    assert s.interval() == "[-0.48, +4.48]"


def test_a_mean_below_zero_with_a_wide_interval_is_undecided_not_loses():
    s = paired([-3.0, -2.0, -1.0])                 # mean −2, interval [−4.48, +0.48]
    assert s.high == pytest.approx(-2 + 4.302653 / math.sqrt(3), abs=1e-5)
    assert s.verdict == "undecided"
    assert s.seeds_needed == math.ceil((2.801585 * 1.0 / 2.0) ** 2)  # 2 seeds would detect −2 at 80 %


def test_verdicts_wins_loses_undecided():
    tight_loss = paired([-2.1, -2.0, -1.9])           # [−2.25, −1.75]
    assert tight_loss.verdict == "loses"
    assert paired([-2.1, -2.0, -1.9], xi=2.5).verdict == "wins"   # lower end −2.25 ≥ −2.5
    assert paired([-2.1, -2.0, -1.9], xi=2.0).verdict == "undecided"
    wide = paired([-1.0, 0.5, 2.0])                   # mean 0.5, sd 1.5: straddles 0
    assert wide.verdict == "undecided"
    assert wide.seeds_needed == math.ceil((2.801585 * 1.5 / 0.5) ** 2)  # 71 seeds
    assert wide.seeds_needed == 71


def test_one_seed_gets_no_interval_and_zero_seeds_say_so():
    one = paired([0.7])
    assert one.verdict == "1 seed" and one.interval() == "—" and one.mean == 0.7
    assert paired([]).verdict == "no seeds"
    assert paired([float("nan"), 1.0]).verdict == "1 seed"   # non-finite values are not seeds


def test_controls_use_their_own_labels():
    labels = ("criterion better", "control better", "undecided")
    assert paired([1.0, 1.1, 0.9], 0.0, labels).verdict == "criterion better"
    assert paired([-1.0, -1.1, -0.9], 0.0, labels).verdict == "control better"
    assert paired([-1.0, 1.0, 0.1], 0.0, labels).verdict == "undecided"


def test_binomial_standard_error_in_points():
    assert binomial_se(50.0, 10_000) == pytest.approx(0.5)
    assert binomial_se(90.0, 1_000) == pytest.approx(100 * math.sqrt(0.9 * 0.1 / 1000))
    assert math.isnan(binomial_se(50.0, 0))
