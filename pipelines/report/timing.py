"""Speed-ups from one interleaved timing pass (`lottery latency`, `pipelines.latency`), per architecture.

    table = speedup_table(runs)   # runs: `load_runs(...)`; None for records without `latency_rounds`
    note = timing_note(runs)      # one line: the pass, its conditions, the runs left out

A pass times every distinct network, the dense one included, in the same rounds, each round in a
fresh random order, and logs on every run the tags `latency_pass`, `latency_network` (a digest of
the architecture) and `latency_rounds` ({metric: [ms of round 1, round 2, ...]}). A speed-up is
read per round — dense ms of round r / the network's ms of round r, both timed within minutes of
each other — and summarised over the rounds by its median and interquartile range (numpy
percentiles 25 and 75, linear interpolation: `numpy.percentile`'s default). Identical architectures
share one measurement and are one row. Only the most recent pass that timed a dense run is read:
runs timed in another pass, or not at all, are left out and counted in the note.
"""
import json
import re

import numpy as np
import pandas as pd

COLUMNS = ("latency_pass", "latency_network", "latency_rounds")
_METRIC = re.compile(r"^(latency|train_step)_b(\d+)_ms$")


def metric_label(metric: str) -> str:
    """`latency_b128_ms` -> "inference b128", `train_step_b128_ms` -> "train step b128"."""
    kind, batch = _METRIC.match(metric).groups()
    return f"{'inference' if kind == 'latency' else 'train step'} b{batch}"


def timed_pass(runs: pd.DataFrame) -> str | None:
    """The pass the report reads: the most recent (pass ids begin with their UTC time) that timed a
    dense run; None when no dense run has per-round timings."""
    if not set(COLUMNS) <= set(runs.columns):
        return None
    dense = runs[(runs.pipeline == "dense") & runs.latency_rounds.notna() & runs.latency_pass.notna()]
    return max(dense.latency_pass) if len(dense) else None


def network_timings(runs: pd.DataFrame) -> pd.DataFrame | None:
    """One row per distinct network (`latency_network`) of `timed_pass(runs)`, grouped under its
    dense network, dense first: `network`, `dense_network`, `model`, `configurations` (text),
    `runs`, `macs_ratio` (dense MACs / its MACs), `rounds`, and for each metric timed
    `<metric>` (the network's ms per round, a list), `<metric>_speedups` (dense / network, per
    round, a list), and the median, 25th and 75th percentiles of both (`<metric>_ms_median`,
    `_ms_q25`, `_ms_q75`, `<metric>_speedup_median`, `_speedup_q25`, `_speedup_q75`). A ticket
    whose dense run (its `dense_identity`) was not timed in that pass is left out. None when no
    dense run has per-round timings."""
    chosen = timed_pass(runs)
    if chosen is None:
        return None
    in_pass = runs[(runs.latency_pass == chosen) & runs.latency_rounds.notna()]
    dense_runs = in_pass[in_pass.pipeline == "dense"]
    dense_of = dict(zip(dense_runs.identity, dense_runs.latency_network, strict=True))
    in_pass = in_pass.assign(dense_network=[net if pipeline == "dense" else dense_of.get(identity)
                                            for pipeline, net, identity in zip(in_pass.pipeline, in_pass.latency_network,
                                                                               in_pass.dense_identity, strict=True)])
    in_pass = in_pass[in_pass.dense_network.notna()]
    rows = []
    for (dense_net, net), group in in_pass.groupby(["dense_network", "latency_network"], sort=False):
        rounds = json.loads(group.latency_rounds.iloc[0])
        reference = json.loads(in_pass[in_pass.latency_network == dense_net].latency_rounds.iloc[0])
        row = {"network": net, "dense_network": dense_net, "model": group.model.iloc[0],
               "configurations": configurations(group), "runs": len(group),
               "macs_ratio": _macs(in_pass[in_pass.latency_network == dense_net]) / _macs(group),
               "rounds": max(len(ms) for ms in rounds.values())}
        for metric, ms in rounds.items():
            if metric not in reference or len(reference[metric]) != len(ms):
                continue
            speedups = [d / t for d, t in zip(reference[metric], ms, strict=True)]
            row[metric], row[f"{metric}_speedups"] = ms, speedups
            for name, values in (("ms", ms), ("speedup", speedups)):
                q25, median, q75 = np.percentile(values, [25, 50, 75])
                row.update({f"{metric}_{name}_median": median, f"{metric}_{name}_q25": q25,
                            f"{metric}_{name}_q75": q75})
        rows.append(row)
    table = pd.DataFrame(rows)
    table["_dense"] = table.network == table.dense_network
    table = table.sort_values(["dense_network", "_dense", "macs_ratio", "configurations"],
                              ascending=[True, False, True, True], kind="stable")
    return table.drop(columns="_dense").reset_index(drop=True)


def speedup_table(runs: pd.DataFrame) -> pd.DataFrame | None:
    """The report's table of speed-ups from one interleaved pass (module docstring): one row per
    distinct architecture, dense first, with the configurations that share it, the number of runs,
    the MACs ratio ×, and per metric the speed-up × (dense / network per round: "median [q25–q75]"
    over the rounds, "—" for the dense network) and the network's own ms ("median [q25–q75]").
    None when no run has `latency_rounds` (records from before the interleaved pass) or no dense
    run was timed with them."""
    timings = network_timings(runs)
    if timings is None:
        return None
    metrics = _metrics(timings)
    rows = []
    for _, t in timings.iterrows():
        dense = t.network == t.dense_network
        row = {"network": t.network, "model": t.model, "configurations": t.configurations, "runs": t.runs,
               "MACs ratio ×": f"{t.macs_ratio:.2f}"}
        for metric in metrics:
            label = metric_label(metric)
            if not isinstance(t.get(metric), list):
                row[f"{label} ×"] = row[f"{label} ms"] = "—"
                continue
            row[f"{label} ×"] = "—" if dense else _spread(t, f"{metric}_speedup", "{:.2f}")
            row[f"{label} ms"] = _spread(t, f"{metric}_ms", "{:.1f}" if t[f"{metric}_ms_median"] >= 10 else "{:.2f}")
        rows.append(row)
    return pd.DataFrame(rows)


def speedup_by_size(runs: pd.DataFrame) -> pd.DataFrame | None:
    """The speed-up table in brief: one row per kind of network (block or filter ticket) and MACs
    ratio (two decimals: every block ticket of one p has one ratio), with the architectures and runs
    it holds and, per metric, the median and interquartile range of the per-round speed-ups of all
    its architectures pooled (numpy percentiles 25/75). None as `speedup_table`."""
    timings = network_timings(runs)
    if timings is None:
        return None
    metrics = _metrics(timings)
    tickets = timings[timings.network != timings.dense_network].assign(
        kind=lambda d: ["filter ticket" if c.startswith("filter_ticket") else "block ticket" for c in d.configurations],
        ratio=lambda d: d.macs_ratio.round(2))
    rows = []
    for (kind, ratio), group in tickets.groupby(["kind", "ratio"]):
        row = {"network": kind, "MACs ratio ×": f"{ratio:.2f}", "architectures": len(group), "runs": int(group.runs.sum())}
        for metric in metrics:
            pooled = [s for lists in group[f"{metric}_speedups"] if isinstance(lists, list) for s in lists]
            row[f"{metric_label(metric)} ×"] = (f"{np.median(pooled):.2f} [{np.percentile(pooled, 25):.2f}–"
                                               f"{np.percentile(pooled, 75):.2f}]" if pooled else "—")
        rows.append(row)
    return pd.DataFrame(rows) if rows else None


def timing_note(runs: pd.DataFrame) -> str:
    """One line under the table: the pass read, its conditions (device, threads, torch, rounds, when;
    the tags `pipelines.latency_settings.CONDITION_TAGS`), how many runs and networks it covers, how many runs are left out (timed
    in another pass, timed without per-round timings, or not timed) and how the spread is computed.
    "" when no run has per-round timings."""
    chosen = timed_pass(runs)
    timings = network_timings(runs)
    if chosen is None or timings is None:
        return ""
    in_pass = runs[runs.latency_pass == chosen]
    first = in_pass.iloc[0]
    device, threads, torch, method, when = (first.get(f"latency_{tag}") for tag in
                                            ("device", "threads", "torch", "method", "measured_at"))
    shown = int(timings.runs.sum())
    other = int((runs.latency_pass.notna() & (runs.latency_pass != chosen)).sum())
    untimed = int(runs.latency_pass.isna().sum())   # not timed, or by a pass without per-round timings
    orphans = len(in_pass) - shown
    left = [f"{n} {why}" for n, why in ((other, "timed in another pass"), (untimed, "without an interleaved timing"),
                                         (orphans, "whose dense run is not in this pass")) if n]
    return (f"Speed-ups from one interleaved timing pass ({chosen}): every network, the dense one included, timed "
            f"in the same {int(timings.rounds.max())} rounds, each round in a fresh random order; {device}, "
            f"{threads} thread(s), torch {torch}, measured {when} ({method}). {shown} run(s) of "
            f"{len(timings)} distinct architecture(s); identical architectures are one row. "
            f"{'Left out: ' + ', '.join(left) + ' run(s). ' if left else ''}"
            f"Speed-up = dense ms / network ms in the same round, median [interquartile range: numpy percentiles "
            f"25–75, linear interpolation] over the rounds; ms = the network's own median [IQR].")


def configurations(group: pd.DataFrame) -> str:
    """The configurations of a network's runs, each with its number of runs: "ticket_init grasp p=1
    (5 runs); ticket_init snip p=1 (5 runs)"."""
    counts = pd.Series([_configuration(r) for _, r in group.iterrows()]).value_counts()
    return "; ".join(f"{config} ({n} run{'s' if n > 1 else ''})" for config, n in sorted(counts.items()))


def _configuration(run) -> str:
    if run.pipeline == "dense":
        return "dense"
    parts = [run.pipeline, run.criterion, f"p={run.p}"]
    if run.get("control", "none") not in ("none", None) and run.control != run.criterion:
        parts.append(run.control)
    if run.pipeline == "ticket_rewind":
        parts.append(f"rewind {run.rewind_epoch}")
    if run.get("iterative"):
        parts.append(run.iterative)
    return " ".join(str(part) for part in parts)


def _macs(group: pd.DataFrame) -> float:
    return float(group.macs.dropna().iloc[0]) if "macs" in group and group.macs.notna().any() else float("nan")


def _metrics(timings: pd.DataFrame) -> list[str]:
    """Metrics timed, inference by batch size first, then training steps."""
    found = {c for c in timings.columns if _METRIC.match(c)}
    return sorted(found, key=lambda m: (m.startswith("train_step"), int(_METRIC.match(m).group(2))))


def _spread(row, prefix: str, fmt: str) -> str:
    return (f"{fmt.format(row[f'{prefix}_median'])} [{fmt.format(row[f'{prefix}_q25'])}–"
            f"{fmt.format(row[f'{prefix}_q75'])}]")


__all__ = ["metric_label", "network_timings", "speedup_by_size", "speedup_table", "timed_pass", "timing_note"]
