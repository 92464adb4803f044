import math

import pytest

from lottery_core import emissions
from lottery_core.emissions import EmissionsMeter


def _work():
    return sum(i * i for i in range(400_000))


def test_energy_and_emissions_are_recorded():
    with EmissionsMeter(country_iso_code="FRA") as meter:
        _work()
    r = meter.result
    assert r.reason is None and r.country_iso_code == "FRA"
    assert r.energy_kwh > 0 and r.emissions_kg > 0 and r.duration_s > 0
    assert math.isclose(r.energy_kwh, r.cpu_energy_kwh + r.gpu_energy_kwh + r.ram_energy_kwh, rel_tol=1e-6)


def test_country_sets_the_carbon_intensity():
    results = {}
    for country in ("FRA", "POL"):
        with EmissionsMeter(country_iso_code=country) as meter:
            _work()
        results[country] = meter.result.emissions_kg / meter.result.energy_kwh  # kg CO2eq per kWh
    assert results["POL"] > 3 * results["FRA"]  # coal-heavy grid versus nuclear-heavy grid


def test_nested_meters_both_report():
    with EmissionsMeter() as outer:
        with EmissionsMeter() as inner:
            _work()
        _work()
    assert inner.result.energy_kwh > 0 and outer.result.energy_kwh > 0
    assert outer.result.duration_s > inner.result.duration_s


def test_a_failing_tracker_records_unknown_not_zero(monkeypatch):
    import codecarbon

    class Broken:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("no power readings on this machine")

    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", Broken)
    with EmissionsMeter() as meter:
        value = _work()
    assert value > 0  # the work went on
    r = meter.result
    assert r.energy_kwh is None and r.emissions_kg is None
    assert "codecarbon failed to start: no power readings" in r.reason


def test_a_tracker_that_returns_nothing_is_unknown(monkeypatch):
    import codecarbon

    class Silent:
        def __init__(self, *args, **kwargs):
            pass

        def start(self):
            pass

        def stop(self):
            return None

    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", Silent)
    with EmissionsMeter() as meter:
        _work()
    assert meter.result.emissions_kg is None and meter.result.reason == "codecarbon returned no measurement"


@pytest.mark.parametrize("name", ["DEFAULT_COUNTRY"])
def test_default_country_is_documented(name):
    assert getattr(emissions, name) == "FRA" and "FRA" in emissions.__doc__
