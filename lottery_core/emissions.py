"""Energy and CO₂ of a piece of work, from codecarbon's offline tracker (no network calls).

    with EmissionsMeter(country_iso_code="FRA") as meter:
        train(...)
    meter.result.energy_kwh, meter.result.emissions_kg      # kWh, kg CO₂eq

The grid's carbon intensity comes from `country_iso_code` (ISO 3166-1 alpha-3; default "FRA",
France, ~56 g CO₂eq/kWh in codecarbon 3.3's table) or from a cloud provider + region, never from
an IP look-up. Both are checked against codecarbon's offline tables when the meter is made: an
unknown code raises LotteryError before any work (codecarbon itself would silently fall back to a
world average). `tracking_mode="process"` measures this process (and its children) only, so trials
sharing a machine do not count each other; several meters may run at once, nested or not.
Nothing is written (no CSV, no API, no logger output; codecarbon logs errors only).

Without RAPL or NVML codecarbon estimates power: CPU = its TDP table (this CPU is unknown to it:
4 W per thread) x the process's share of CPU time; RAM from its size. If codecarbon fails (start
or stop raises, or stop returns nothing), the work goes on and the result says *unknown* — None,
with the reason — never 0.

Overhead: codecarbon probes the hardware once per process; its CPU-name probe (py-cpuinfo) runs
a subprocess (~1.3 s here). On Linux the meter answers that probe from /proc/cpuinfo (the same
brand string), so the first meter of a process costs ~0.5 s and later ones ~0.03 s
(`Emissions.overhead_s` records it per meter).
"""
import functools
import logging
import math
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from lottery_core.errors import LotteryError, choose, first_line

DEFAULT_COUNTRY = "FRA"
_START_LOCK = threading.Lock()  # codecarbon's one-time hardware probe, and our CPU-name answer


@dataclass(frozen=True)
class Emissions:
    """What a meter measured. Units: kWh, kg CO₂eq, seconds. None = unknown (see `reason`)."""

    energy_kwh: float | None
    emissions_kg: float | None
    duration_s: float  # wall time of the measured work (codecarbon's own start/stop excluded)
    cpu_energy_kwh: float | None = None
    gpu_energy_kwh: float | None = None
    ram_energy_kwh: float | None = None
    country_iso_code: str | None = None
    cloud_region: str | None = None
    reason: str | None = None  # why values are unknown, when they are
    overhead_s: float = 0.0  # time spent inside codecarbon's start() and stop()
    gpu_share: float = 1.0   # the fraction of its GPUs' measured energy charged to this work (SHARE_RULE)

    @property
    def known(self) -> bool:
        return self.emissions_kg is not None

    def as_dict(self) -> dict:
        return asdict(self)


def check_country(code) -> str:
    """The upper-cased ISO 3166-1 alpha-3 code if codecarbon's offline table knows it, else LotteryError."""
    countries = _energy_mix()
    if countries is None and isinstance(code, str):  # no table to check against: codecarbon will fail later
        return code.upper()
    if not isinstance(code, str) or code.upper() not in countries:
        raise LotteryError(f"unknown country_iso_code {code!r}: an ISO 3166-1 alpha-3 code such as FRA, DEU, "
                           f"USA, CHN ({len(countries)} known to codecarbon's offline table)")
    return code.upper()


def check_cloud(provider, region) -> None:
    """LotteryError unless codecarbon's offline table knows this cloud provider and region."""
    table = _cloud_regions()
    if table is None:
        return
    choose("cloud_provider", provider, table)
    choose(f"cloud_region of {provider}", region, table[provider])


class EmissionsMeter:
    """Context manager measuring the energy and emissions of its block with codecarbon (offline).

    `with EmissionsMeter() as meter: ...` then `meter.result` (an `Emissions`). `start()`/`stop()`
    do the same outside a `with`. `measure_power_secs` is codecarbon's sampling period.

    `gpu_ids`: the GPUs this work was given (NVML indices, e.g. Ray's `ray.get_gpu_ids()`, or
    UUIDs), the only ones whose energy it counts; None: codecarbon's default (the GPUs in
    CUDA_VISIBLE_DEVICES, else every GPU). codecarbon reads GPU power per device, not per process,
    so work sharing one GPU (a fractional GPU) is charged `gpu_share` of that GPU's energy
    (`SHARE_RULE`): Ray's fraction, e.g. 0.25 for one of four trials on a GPU.
    """

    def __init__(self, country_iso_code: str = DEFAULT_COUNTRY, cloud_provider: str | None = None,
                 cloud_region: str | None = None, measure_power_secs: float = 15.0, gpu_ids=None,
                 quick_cpu_probe: bool = True, gpu_share: float = 1.0):
        if not 0 < gpu_share <= 1:
            raise LotteryError(f"gpu_share must be in (0, 1], the fraction of a GPU this work holds; got {gpu_share!r}")
        self.gpu_share = float(gpu_share)
        self.country_iso_code = check_country(country_iso_code)
        if (cloud_provider is None) != (cloud_region is None):
            raise LotteryError("cloud_provider and cloud_region go together: give both or neither")
        if cloud_provider is not None:
            check_cloud(cloud_provider, cloud_region)
        self.cloud = {"cloud_provider": cloud_provider, "cloud_region": cloud_region} if cloud_provider else {}
        self.measure_power_secs = measure_power_secs
        self.gpu_ids = None if gpu_ids is None else [g if isinstance(g, int | str) else str(g) for g in gpu_ids]
        self.quick_cpu_probe = quick_cpu_probe
        self.result: Emissions | None = None
        self._tracker = None
        self._error: str | None = None
        self._started = 0.0
        self._overhead = 0.0

    def start(self) -> "EmissionsMeter":
        entered = time.perf_counter()
        self._tracker, self._error, self.result = None, None, None
        try:
            from codecarbon import OfflineEmissionsTracker

            logging.getLogger("codecarbon").setLevel(logging.ERROR)
            tracker = OfflineEmissionsTracker(
                country_iso_code=self.country_iso_code, tracking_mode="process", allow_multiple_runs=True,
                output_methods=[], log_level="error", measure_power_secs=self.measure_power_secs,
                gpu_ids=self.gpu_ids, **self.cloud)
            with _START_LOCK, (_cpu_name_from_proc() if self.quick_cpu_probe else _nothing()):
                tracker.start()  # codecarbon swallows its own errors here: stop() then returns None
            self._tracker = tracker
        except Exception as err:  # codecarbon must never stop the work it measures
            self._error = f"codecarbon failed to start: {first_line(err, 200)}"
        self._started = time.perf_counter()  # the work starts now
        self._overhead = self._started - entered
        return self

    def stop(self) -> Emissions:
        stopping = time.perf_counter()
        duration = stopping - self._started
        emissions = data = None
        if self._tracker is not None:
            try:
                emissions = self._tracker.stop()
                data = getattr(self._tracker, "final_emissions_data", None)
            except Exception as err:
                self._error = f"codecarbon failed to stop: {first_line(err, 200)}"
        overhead = self._overhead + time.perf_counter() - stopping
        where = {"country_iso_code": self.country_iso_code, "cloud_region": self.cloud.get("cloud_region")}
        values = _values(emissions, data)
        if values is None:
            self.result = Emissions(None, None, duration, reason=self._error or "codecarbon returned no measurement",
                                    overhead_s=overhead, **where)
        else:
            self.result = Emissions(duration_s=duration, overhead_s=overhead, gpu_share=self.gpu_share,
                                    **charge_share(values, self.gpu_share), **where)
        return self.result

    def __enter__(self) -> "EmissionsMeter":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


SHARE_RULE = ("gpu energy x the work's GPU fraction (Ray's request); cpu and ram energy of this process "
              "(codecarbon tracking_mode=process)")


def charge_share(values: dict, gpu_share: float) -> dict:
    """`values` (energy_kwh, emissions_kg, cpu/gpu/ram_energy_kwh) with only `gpu_share` of the GPU
    energy charged: total energy lowered by the rest, emissions in proportion (one grid intensity)."""
    gpu = values.get("gpu_energy_kwh")
    if gpu_share >= 1 or not gpu or not values.get("energy_kwh"):
        return values
    energy = values["energy_kwh"] - gpu * (1 - gpu_share)
    emissions = values["emissions_kg"] * energy / values["energy_kwh"] if values.get("emissions_kg") else values.get("emissions_kg")
    return {**values, "gpu_energy_kwh": gpu * gpu_share, "energy_kwh": energy, "emissions_kg": emissions}


def _values(emissions, data) -> dict | None:
    """The numbers of a codecarbon measurement, or None unless every one is a finite number >= 0."""
    try:
        values = {"energy_kwh": float(data.energy_consumed), "emissions_kg": float(emissions),
                  "cpu_energy_kwh": float(data.cpu_energy), "gpu_energy_kwh": float(data.gpu_energy),
                  "ram_energy_kwh": float(data.ram_energy)}
    except (AttributeError, TypeError, ValueError):
        return None
    return values if all(math.isfinite(v) and v >= 0 for v in values.values()) else None


@contextmanager
def _cpu_name_from_proc():
    """Answer py-cpuinfo's `get_cpu_info()` (used by codecarbon for the CPU name only, and costing a
    ~1.3 s subprocess) with the brand string Linux already shows in /proc/cpuinfo, while codecarbon
    starts. Falls back to py-cpuinfo when there is no such line (e.g. not Linux)."""
    name = cpu_model()
    try:
        import cpuinfo
    except ImportError:
        cpuinfo = None
    if not name or cpuinfo is None:
        yield
        return
    original = cpuinfo.get_cpu_info
    cpuinfo.get_cpu_info = lambda: {"brand_raw": name}
    try:
        yield
    finally:
        cpuinfo.get_cpu_info = original


@contextmanager
def _nothing():
    yield


@functools.cache
def cpu_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo, or None where it is not there."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip() or None
    except OSError:
        pass
    return None


@functools.cache
def _energy_mix() -> frozenset[str] | None:
    """ISO codes of codecarbon's offline country table (None if codecarbon cannot load it)."""
    try:
        from codecarbon.input import DataSource

        return frozenset(DataSource().get_global_energy_mix_data())
    except Exception:
        return None


@functools.cache
def _cloud_regions() -> dict[str, frozenset[str]] | None:
    """{provider: regions} of codecarbon's offline cloud table (None if it cannot be loaded)."""
    try:
        from codecarbon.input import DataSource

        table = DataSource().get_cloud_emissions_data()
        return {str(p): frozenset(map(str, table.region[table.provider == p])) for p in table.provider.unique()}
    except Exception:
        return None
