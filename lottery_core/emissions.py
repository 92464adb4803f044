"""Energy and CO₂ of a piece of work, from codecarbon's offline tracker (no network calls).

    with EmissionsMeter(country_iso_code="FRA") as meter:
        train(...)
    meter.result.energy_kwh, meter.result.emissions_kg      # kWh, kg CO₂eq

The grid's carbon intensity comes from `country_iso_code` (or a cloud provider + region), never
from an IP look-up. `tracking_mode="process"` measures this process only, so trials sharing a
machine do not count each other; several meters may run at once. Without RAPL or NVML codecarbon
estimates power from tables (this CPU: a constant per thread), which the result says. If
codecarbon fails, the work goes on and the result says *unknown* (None, with the reason) — never 0.
"""
import logging
import math
import time
from dataclasses import asdict, dataclass

DEFAULT_COUNTRY = "FRA"


@dataclass(frozen=True)
class Emissions:
    """Energy (kWh), emissions (kg CO₂eq) and duration (s) of the tracked work; None = unknown."""

    energy_kwh: float | None
    emissions_kg: float | None
    duration_s: float
    cpu_energy_kwh: float | None = None
    gpu_energy_kwh: float | None = None
    ram_energy_kwh: float | None = None
    country_iso_code: str | None = None
    reason: str | None = None  # why the values are unknown, when they are

    def as_dict(self) -> dict:
        return asdict(self)


class EmissionsMeter:
    """Context manager measuring energy and emissions of its block with codecarbon (offline)."""

    def __init__(self, country_iso_code: str = DEFAULT_COUNTRY, cloud_provider: str | None = None,
                 cloud_region: str | None = None, measure_power_secs: float = 15.0, gpu_ids=None):
        self.country_iso_code = country_iso_code
        self.options = {"cloud_provider": cloud_provider, "cloud_region": cloud_region}
        self.measure_power_secs = measure_power_secs
        self.gpu_ids = gpu_ids
        self.result: Emissions | None = None
        self._tracker = None
        self._error: str | None = None
        self._started = 0.0

    def __enter__(self) -> "EmissionsMeter":
        self._started = time.perf_counter()
        try:
            from codecarbon import OfflineEmissionsTracker

            logging.getLogger("codecarbon").setLevel(logging.ERROR)
            kwargs = {k: v for k, v in self.options.items() if v is not None}
            self._tracker = OfflineEmissionsTracker(
                country_iso_code=self.country_iso_code, tracking_mode="process", allow_multiple_runs=True,
                save_to_file=False, log_level="error", measure_power_secs=self.measure_power_secs,
                gpu_ids=self.gpu_ids, **kwargs)
            self._tracker.start()
        except Exception as err:  # codecarbon must never stop the work it measures
            self._tracker, self._error = None, f"codecarbon failed to start: {_first_line(err)}"
        return self

    def __exit__(self, *exc) -> None:
        duration = time.perf_counter() - self._started
        emissions = None
        if self._tracker is not None:
            try:
                emissions = self._tracker.stop()
            except Exception as err:
                self._error = f"codecarbon failed to stop: {_first_line(err)}"
        data = getattr(self._tracker, "final_emissions_data", None) if self._tracker is not None else None
        if emissions is None or data is None or not _finite(emissions):
            self.result = Emissions(None, None, duration, country_iso_code=self.country_iso_code,
                                    reason=self._error or "codecarbon returned no measurement")
            return
        self.result = Emissions(
            energy_kwh=float(data.energy_consumed), emissions_kg=float(emissions), duration_s=duration,
            cpu_energy_kwh=float(data.cpu_energy), gpu_energy_kwh=float(data.gpu_energy),
            ram_energy_kwh=float(data.ram_energy), country_iso_code=self.country_iso_code)


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
