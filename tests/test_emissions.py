import math
from types import SimpleNamespace

import pytest

from lottery_core import emissions
from lottery_core.emissions import EmissionsMeter
from lottery_core.errors import LotteryError


def _work(seconds: float = 0.3) -> int:
    """Busy CPU work for about `seconds` (process CPU time is what codecarbon's estimate follows)."""
    import time

    end, total = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        total += sum(i * i for i in range(2000))
    return total


def test_energy_and_emissions_are_recorded():
    with EmissionsMeter(country_iso_code="FRA") as meter:
        _work()
    r = meter.result
    assert r.reason is None and r.known and r.country_iso_code == "FRA"
    assert r.energy_kwh > 0 and r.emissions_kg > 0 and r.cpu_energy_kwh > 0 and r.ram_energy_kwh > 0
    assert r.gpu_energy_kwh == 0  # no GPU here
    assert math.isclose(r.energy_kwh, r.cpu_energy_kwh + r.gpu_energy_kwh + r.ram_energy_kwh, rel_tol=1e-6)
    assert r.duration_s > 0.25 and r.overhead_s >= 0   # the meter was open around _work()'s 0.3 s (a lower bound only)
    # France's grid in codecarbon's offline table: ~56 g CO2eq per kWh
    assert 0.03 < r.emissions_kg / r.energy_kwh < 0.1


def test_country_sets_the_carbon_intensity():
    results = {}
    for country in ("FRA", "pol"):  # codes are case-insensitive
        with EmissionsMeter(country_iso_code=country) as meter:
            _work(0.1)
        results[country] = meter.result.emissions_kg / meter.result.energy_kwh  # kg CO2eq per kWh
    assert results["pol"] > 3 * results["FRA"]  # coal-heavy grid versus nuclear-heavy grid


def test_a_cloud_region_sets_the_carbon_intensity():
    with EmissionsMeter(cloud_provider="gcp", cloud_region="europe-west1") as meter:  # Belgium
        _work(0.1)
    r = meter.result
    assert r.cloud_region == "europe-west1" and 0.1 < r.emissions_kg / r.energy_kwh < 0.15


@pytest.mark.parametrize("kwargs,message", [
    ({"country_iso_code": "XXX"}, r"unknown country_iso_code 'XXX': an ISO 3166-1 alpha-3 code such as FRA"),
    ({"country_iso_code": "FR"}, r"unknown country_iso_code 'FR'"),
    ({"cloud_provider": "gcp", "cloud_region": "nowhere-1"}, r"unknown cloud_region of gcp 'nowhere-1'; choose one of: "),
    ({"cloud_provider": "ovh", "cloud_region": "gra"}, r"unknown cloud_provider 'ovh'; choose one of: gcp"),
    ({"cloud_provider": "gcp"}, r"cloud_provider and cloud_region go together"),
])
def test_unknown_places_are_refused_before_any_work(kwargs, message):
    # codecarbon itself would fall back to a world average (unknown country) or to the country
    with pytest.raises(LotteryError, match=message):
        EmissionsMeter(**kwargs)


def test_nested_meters_both_report():
    with EmissionsMeter() as outer:
        with EmissionsMeter() as inner:
            _work(0.2)
        _work(0.2)
    assert inner.result.known and outer.result.known
    assert inner.result.energy_kwh > 0 and outer.result.energy_kwh > inner.result.energy_kwh
    assert outer.result.duration_s > inner.result.duration_s + 0.15


def test_start_and_stop_without_with():
    meter = EmissionsMeter().start()
    _work(0.1)
    result = meter.stop()
    assert result is meter.result and result.energy_kwh > 0


def test_the_work_is_measured_even_when_it_raises():
    with pytest.raises(RuntimeError, match="diverged"):
        with EmissionsMeter() as meter:
            _work(0.1)
            raise RuntimeError("training diverged")
    assert meter.result.known and meter.result.energy_kwh > 0


def test_a_failing_tracker_records_unknown_not_zero(monkeypatch):
    import codecarbon

    class Broken:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("no power readings on this machine")

    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", Broken)
    with EmissionsMeter() as meter:
        value = _work(0.05)
    assert value > 0  # the work went on
    r = meter.result
    assert r.energy_kwh is None and r.emissions_kg is None and r.cpu_energy_kwh is None and not r.known
    assert r.reason == "codecarbon failed to start: no power readings on this machine"
    assert r.duration_s > 0.04


class _Tracker:
    """A stand-in for codecarbon's tracker, configurable to fail in stop()."""

    stop_result = None
    stop_error: Exception | None = None
    final_emissions_data = SimpleNamespace(energy_consumed=2e-6, cpu_energy=1e-6, gpu_energy=0.0, ram_energy=1e-6)

    def __init__(self, *args, **kwargs):
        pass

    def start(self):
        pass

    def stop(self):
        if self.stop_error:
            raise self.stop_error
        return self.stop_result


def test_a_tracker_that_fails_to_stop_records_unknown(monkeypatch):
    import codecarbon

    class Failing(_Tracker):
        stop_error = OSError("lost the power counters\nsecond line")

    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", Failing)
    with EmissionsMeter() as meter:
        _work(0.05)
    assert meter.result.emissions_kg is None and meter.result.energy_kwh is None
    assert meter.result.reason == "codecarbon failed to stop: lost the power counters"


@pytest.mark.parametrize("stop_result", [None, float("nan"), -1.0, "n/a"])
def test_a_tracker_that_returns_nothing_usable_is_unknown(monkeypatch, stop_result):
    import codecarbon

    class Silent(_Tracker):
        pass

    Silent.stop_result = stop_result
    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", Silent)
    with EmissionsMeter() as meter:
        _work(0.05)
    r = meter.result
    assert r.emissions_kg is None and r.energy_kwh is None
    assert r.reason == "codecarbon returned no measurement"


def test_the_stand_in_tracker_is_read_when_it_answers(monkeypatch):
    """The same stand-in with a usable answer is read, so the cases above fail for their value."""
    import codecarbon

    class Answering(_Tracker):
        stop_result = 1e-7

    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", Answering)
    with EmissionsMeter() as meter:
        pass
    assert meter.result.emissions_kg == 1e-7 and meter.result.energy_kwh == 2e-6


def test_a_meter_without_a_country_uses_the_default():
    assert EmissionsMeter().country_iso_code == emissions.DEFAULT_COUNTRY
