"""The report's statistics (`pipelines.report.stats`): cases whose right answer is known.

Hand-worked values use Student t quantiles: t(0.95, 2) = 2.919986, t(0.95, 4) = 2.131847.
The simulations draw paired differences with a known Δ from a seeded generator (2,000 studies
each); their tolerance is three binomial standard errors of the nominal rate over 2,000 draws
(√(0.05 · 0.95 / 2000) = 0.49 points): coverage 95 ± 1.5 %, size 5 ± 1.5 %.
"""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from pipelines.report.stats import (
    ALPHA,
    INCONCLUSIVE,
    adjust,
    binomial_se,
    detectable,
    estimate,
    holm,
    planning_sd,
    seeds_needed,
    sign_flip_p,
)

SIMULATIONS = 2000
TOLERANCE = 3 * math.sqrt(0.05 * 0.95 / SIMULATIONS)   # 0.0146


def test_the_interval_is_mean_plus_minus_t_095_times_the_standard_error():
    e = estimate([1.0, 2.0, 3.0], "vs_dense", 0.0)       # mean 2, sd 1, se 1/√3
    assert (e.n, e.mean, e.sd) == (3, 2.0, 1.0)
    assert e.low == pytest.approx(2 - 2.919986 / math.sqrt(3), abs=1e-5)     # 0.3141
    assert e.high == pytest.approx(2 + 2.919986 / math.sqrt(3), abs=1e-5)
    assert e.interval() == "[+0.31, +3.69]"
    assert e.verdict == "better"                          # L > 0


@pytest.mark.parametrize(("diffs", "margin", "expected"), [
    ([1.0, 2.0, 3.0], 0.5, "better"),                     # L = +0.31 > 0
    ([-0.1, 0.0, 0.1], 0.5, "matches"),                   # [−0.17, +0.17] inside ±0.5
    ([0.1, 0.9, 1.7], 0.5, "wins"),                        # L = −0.45 > −0.5, U = 2.25 ≥ ξ: non-inferior only
    ([-2.1, -2.0, -1.9], 0.5, "worse"),                   # U = −1.83 < −0.5
    ([-2.1, -2.0, -1.9], 2.5, "matches"),                 # [−2.17, −1.83] inside ±2.5
    ([-3.0, -2.0, -1.0], 0.5, INCONCLUSIVE),              # [−3.69, −0.31]: below 0 but not below −ξ
    ([-1.0, 0.5, 2.0], 0.5, INCONCLUSIVE),                # wide, straddles everything
])
def test_ticket_against_dense_verdicts_read_off_the_90_percent_interval(diffs, margin, expected):
    e = estimate(diffs, "vs_dense", margin)
    assert e.verdict == expected
    # the same verdict from the interval's ends, by the rule in words
    if e.low > 0:
        assert expected == "better"
    elif -margin < e.low and e.high < margin:
        assert expected == "matches"
    elif e.low > -margin:
        assert expected == "wins"
    elif e.high < -margin:
        assert expected == "worse"
    else:
        assert expected == INCONCLUSIVE


def test_a_difference_has_better_worse_equivalent_and_inconclusive():
    assert estimate([1.0, 1.1, 0.9], "difference", 0.5).verdict == "better"
    assert estimate([-1.0, -1.1, -0.9], "difference", 0.5).verdict == "worse"   # U < 0, no margin
    assert estimate([-0.1, 0.0, 0.1], "difference", 0.5).verdict == "equivalent"
    assert estimate([-1.0, 1.0, 0.1], "difference", 0.5).verdict == INCONCLUSIVE
    assert "noninferior" not in estimate([1.0, 2.0], "difference", 0.5).p


def test_zero_margin_never_matches_and_one_seed_gets_no_verdict():
    assert estimate([-0.1, 0.0, 0.1], "vs_dense", 0.0).verdict == INCONCLUSIVE
    one = estimate([0.7], "vs_dense", 0.5)
    assert (one.verdict, one.interval(), one.mean) == ("1 seed", "—", 0.7)
    assert estimate([], "vs_dense", 0.5).verdict == "no seeds"
    assert estimate([float("nan"), 1.0], "vs_dense", 0.5).verdict == "1 seed"   # non-finite values are not seeds


def test_differences_without_spread_are_decided_by_their_mean():
    assert estimate([0.0, 0.0, 0.0], "vs_dense", 0.5).verdict == "matches"    # both at floor: |0| < ξ
    assert estimate([1.0, 1.0], "difference", 0.5).verdict == "better"


def test_the_p_values_are_the_one_sided_t_tests():
    d = [0.3, -0.2, 0.5, 0.1, 0.4]
    e = estimate(d, "vs_dense", 0.5)
    se = np.std(d, ddof=1) / math.sqrt(5)
    assert e.p["noninferior"] == pytest.approx(scipy_stats.t.sf((np.mean(d) + 0.5) / se, 4))
    assert e.p["better"] == pytest.approx(scipy_stats.t.sf(np.mean(d) / se, 4))
    assert e.p["equivalent"] == pytest.approx(max(scipy_stats.t.sf((np.mean(d) + 0.5) / se, 4),
                                                  scipy_stats.t.cdf((np.mean(d) - 0.5) / se, 4)))


@pytest.mark.slow   # 2,000 simulated studies
def test_the_one_sided_bounds_cover_a_known_delta_95_percent_of_the_time():
    rng = np.random.default_rng(2024)
    delta, sd, n = -0.3, 1.2, 5
    low_holds = high_holds = 0
    for _ in range(SIMULATIONS):
        e = estimate(rng.normal(delta, sd, n).tolist(), "vs_dense", 0.5)
        low_holds += e.low <= delta
        high_holds += e.high >= delta
    assert abs(low_holds / SIMULATIONS - 0.95) < TOLERANCE
    assert abs(high_holds / SIMULATIONS - 0.95) < TOLERANCE


@pytest.mark.slow   # 2,000 simulated studies
def test_tost_rejects_a_delta_on_the_margin_5_percent_of_the_time():
    """At Δ = ξ the equivalence null holds; TOST's size is α when the interval is narrow next to
    2ξ (here its half-width is about 0.1 points against ξ = 0.5)."""
    rng = np.random.default_rng(7)
    margin, sd, n = 0.5, 0.2, 10
    rejected = sum(estimate(rng.normal(margin, sd, n).tolist(), "vs_dense", margin).p["equivalent"] < ALPHA
                   for _ in range(SIMULATIONS))
    assert abs(rejected / SIMULATIONS - ALPHA) < TOLERANCE


@pytest.mark.slow   # 2,000 simulated studies
def test_a_ticket_exactly_as_good_as_dense_is_rarely_called_better_but_wins_with_enough_seeds():
    """The old rule called a ticket 'wins' when L ≥ 0: a one-sided superiority test, passed 5 % of
    the time by a ticket exactly as good as dense. Non-inferiority at ξ passes it with power."""
    rng = np.random.default_rng(11)
    verdicts = [estimate(rng.normal(0.0, 0.3, 8).tolist(), "vs_dense", 0.5).verdict for _ in range(SIMULATIONS)]
    better = sum(v == "better" for v in verdicts) / SIMULATIONS
    assert abs(better - ALPHA) < TOLERANCE
    assert sum(v in ("matches", "wins") for v in verdicts) / SIMULATIONS > 0.9


def test_holm_on_the_textbook_example():
    # p = 0.01, 0.04, 0.03, 0.005 (m = 4): sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06,
    # 0.04·1 = 0.04 → max(0.06, 0.04) = 0.06 (step-down keeps them monotone)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    out = holm([0.01, float("nan"), 0.02])   # NaN stays NaN and does not count in m
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.02)


def test_the_adjusted_verdict_applies_the_rule_to_holm_p_values():
    # alone, a p of 0.008 decides; among 17 comparisons its Holm p is 0.136 and it does not
    strong = estimate([0.3, 1.8, 0.8, 1.6, 0.95], "difference", 0.5)
    assert strong.verdict == "better" and strong.p["better"] < 0.01
    family = [strong] + [estimate([1.0, -1.0, 0.2, -0.4, 0.3], "difference", 0.5)] * 16
    adjusted = adjust(family)
    assert adjusted[0]["better"] == pytest.approx(min(1.0, 17 * strong.p["better"]))
    from pipelines.report.stats import verdict
    assert verdict("difference", adjusted[0], 5) == INCONCLUSIVE


def test_sign_flip_p_worked_by_hand():
    # d = 1, 2, −0.5, 3, 1, 2: observed sum 8.5. Of the 2^6 = 64 sign patterns only two have a sum
    # ≥ 8.5: the observed one and the one that flips −0.5 to +0.5 (flipping any x ≥ 1 costs 2x ≥ 2).
    d = [1.0, 2.0, -0.5, 3.0, 1.0, 2.0]
    assert sign_flip_p(d, "better", 0.5) == pytest.approx(2 / 64)
    assert estimate(d, "vs_dense", 0.5).permutation_p["better"] == pytest.approx(2 / 64)
    assert estimate(d[:5], "vs_dense", 0.5).permutation_p == {}     # n < 6: none
    # all positive: only the observed pattern reaches its sum
    assert sign_flip_p([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "better", 0.0) == pytest.approx(1 / 64)


def test_power_is_t_based_not_z_based():
    # one-sided α = 0.05, 80 %, n = 5: the noncentral t gives d = 1.3594 (the z formula gives
    # (1.6449 + 0.8416)/√5 = 1.112, 18 % too optimistic)
    effect = detectable(5, 1.0)
    assert effect == pytest.approx(1.3594, abs=2e-4)
    critical = scipy_stats.t.ppf(0.95, 4)
    assert scipy_stats.nct.sf(critical, 4, effect * math.sqrt(5)) == pytest.approx(0.80, abs=1e-3)
    n = seeds_needed(0.5, 1.0)
    assert scipy_stats.nct.sf(scipy_stats.t.ppf(0.95, n - 1), n - 1, 0.5 * math.sqrt(n)) >= 0.80
    assert scipy_stats.nct.sf(scipy_stats.t.ppf(0.95, n - 2), n - 2, 0.5 * math.sqrt(n - 1)) < 0.80
    assert seeds_needed(0.0, 1.0) == math.inf and math.isnan(detectable(1, 1.0))


def test_a_difference_far_larger_than_the_noise_needs_the_fewest_seeds_not_nan():
    # effect 20 SDs: two seeds give power 0.97 at α = 0.025 (noncentral t, 1 df), where statsmodels'
    # solver finds no root and returns NaN
    critical = scipy_stats.t.ppf(1 - 0.025, 1)
    assert scipy_stats.nct.sf(critical, 1, 20 * math.sqrt(2)) > 0.8
    assert seeds_needed(20.0, 1.0, alpha=0.025) == 2
    assert seeds_needed(0.5, 0.01) == 2


def test_planning_sd_is_the_residual_sd_of_config_by_seed():
    # 2 × 2: the additive fit leaves residuals ±0.5, SS = 1 on 1 df → SD 1
    df = pd.DataFrame({"config": ["a", "a", "b", "b"], "seed": [0, 1, 0, 1], "value": [0.0, 0.0, 0.0, 2.0]})
    assert planning_sd(df) == (pytest.approx(1.0), 1)
    # a pure config effect plus a pure seed effect leaves nothing
    df = pd.DataFrame({"config": list("aaabbb"), "seed": [0, 1, 2] * 2, "value": [1, 2, 4, 3, 4, 6.0]})
    assert planning_sd(df)[0] == pytest.approx(0.0, abs=1e-9)
    assert math.isnan(planning_sd(df[df.config == "a"])[0])   # one configuration: no residual


def test_binomial_standard_error_in_points():
    assert binomial_se(50.0, 10_000) == pytest.approx(0.5)
    assert binomial_se(90.0, 1_000) == pytest.approx(100 * math.sqrt(0.9 * 0.1 / 1000))
    assert math.isnan(binomial_se(50.0, 0))


def test_bounds_at_alpha_are_the_90_percent_interval_and_widen_below_it():
    e = estimate([1.0, 2.0, 3.0], "difference")
    assert e.bounds(0.05) == pytest.approx((e.low, e.high))
    # t(0.975, 2) = 4.3027 and se = 1/√3: 2 ∓ 2.484
    assert e.bounds(0.025) == pytest.approx((2 - 4.3027 / math.sqrt(3), 2 + 4.3027 / math.sqrt(3)), abs=1e-4)
    assert all(math.isnan(b) for b in estimate([1.0]).bounds(0.05))
