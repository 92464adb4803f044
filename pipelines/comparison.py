"""A ticket versus its dense run: the one comparison, with one key set.

The evaluation stage logs it with each ticket run (ξ of the config); the report computes it again
for every ticket paired with its dense run (ξ of the report). Plain dicts in, a plain dict out:
no torch, no MLflow.

Only final values enter it (`pipelines.run_schema`: one meaning per key), never a per-epoch history:
the training-time reduction compares the runs' total SGD time (`train_time_s`) and the speed-up
their mean SGD time per epoch (`mean_epoch_train_time_s` = `train_time_s` / `epochs_trained`), the
same measurement, so for a ticket trained as many epochs as its dense run
100 (1 − 1 / speedup) = train_time_reduction_pct; a ticket trained fewer epochs (rewound to θ_i)
saves more time in total than its per-epoch speed-up alone.
"""
import math
import numbers
import re
from collections.abc import Mapping

# final metric (a run total) -> <name>_reduction_pct: how much smaller the ticket is (%)
REDUCTIONS = {"macs": "macs", "params": "params", "memory_bytes": "memory", "filters": "filters",
              "emissions_kg": "emissions", "energy_kwh": "energy", "train_time_s": "train_time"}
ROBUSTNESS_PREFIXES = ("corruption_acc", "shifted_acc.", "adv_acc.")
# timed after training by `pipelines.latency`: latency_b<n>_ms -> latency_speedup_b<n>,
# train_step_b<n>_ms -> train_step_speedup_b<n>
LATENCY_METRIC = re.compile(r"^(latency|train_step)_b(\d+)_ms$")
# every key `compare` may return, besides delta_<robustness metric> and latency_speedup_b<n>
COMPARISON_KEYS = ("delta_acc", "winning", "speedup", "ideal_speedup",
                   *(f"{name}_reduction_pct" for name in REDUCTIONS.values()))


def compare(ticket: Mapping[str, float], dense: Mapping[str, float], xi: float = 0.0) -> dict[str, float]:
    """Ticket versus dense, from their final metrics.

    delta_acc          acc(ticket) - acc(dense), accuracy points
    winning            1.0 when acc(ticket) + xi >= acc(dense) (the paper's rule with ξ = xi), else 0.0
    <x>_reduction_pct  100 (1 - ticket / dense) for each metric of `REDUCTIONS`, %
    speedup            dense mean_epoch_train_time_s / ticket mean_epoch_train_time_s, × (SGD time per
                       epoch, measured while the runs trained; equal epochs: 100 (1 - 1/speedup) =
                       train_time_reduction_pct, from the totals `train_time_s`)
    ideal_speedup      dense macs / ticket macs, × (the speed-up if time followed MACs)
    latency_speedup_b<n>  dense latency_b<n>_ms / ticket latency_b<n>_ms, × (inference, batch n)
    train_step_speedup_b<n>  dense train_step_b<n>_ms / ticket train_step_b<n>_ms, × (one isolated SGD
                       step of a batch of n: training speed-up measured with the machine to itself)
    delta_<r>          ticket - dense for every robustness accuracy <r> both have, points

    A quantity missing (absent, None or NaN) on either side, or a zero denominator, is left out,
    never set to 0.
    """
    out = {"delta_acc": ticket["acc"] - dense["acc"], "winning": float(ticket["acc"] + xi >= dense["acc"])}
    for key, name in REDUCTIONS.items():
        if _number(ticket.get(key)) and _number(dense.get(key)) and dense[key]:
            out[f"{name}_reduction_pct"] = 100.0 * (1 - ticket[key] / dense[key])
    for key, name in (("mean_epoch_train_time_s", "speedup"), ("macs", "ideal_speedup")):
        if _number(ticket.get(key)) and _number(dense.get(key)) and ticket[key]:
            out[name] = dense[key] / ticket[key]
    for key, value in ticket.items():
        latency = LATENCY_METRIC.match(str(key))
        if latency and _number(value) and _number(dense.get(key)) and value:
            out[f"{latency.group(1)}_speedup_b{latency.group(2)}"] = dense[key] / value
        if str(key).startswith(ROBUSTNESS_PREFIXES) and _number(value) and _number(dense.get(key)):
            out[f"delta_{key}"] = value - dense[key]
    return out


def _number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isnan(value)
