"""The latency pass (`pipelines.latency`, `lottery latency`) over real runs in a SQLite MLflow store,
and the report's latency speed-up beside the MACs ratio."""
import json
import re
import statistics
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn
from mlflow.tracking import MlflowClient

from lottery_core import accounting, models, surgery
from lottery_core.errors import LotteryError
from pipelines.cli import main
from pipelines.config import load_config
from pipelines.context import with_fingerprint
from pipelines.latency import Rebuilt, measure_runs, rebuild, time_networks, visit_orders
from pipelines.latency_settings import LatencySettings, latency_settings
from pipelines.report import write_report
from pipelines.report.runs import load_runs
from pipelines.report.timing import network_timings, speedup_table, timing_note
from pipelines.runner import run
from pipelines.tracking import tracking_uri
from tune.sweep_file import load_sweep
from tune.sweep_runs import measure_sweep_latency

slow = pytest.mark.slow   # finished runs rebuilt and timed; the fake-clock and table tests are quick

FAST = LatencySettings(batch_sizes=(1, 8), threads=1, rounds=5, repeats=2, warmup=1)


def tiny(tmp_path, tiny_folder, *overrides):
    """One epoch of ResNet20 on the tiny folder, no robustness evaluation: the cheapest real run."""
    return with_fingerprint(load_config({
        "model": {"name": "resnet20"},
        "data": {"name": "folder", "root": str(tiny_folder)},
        "training": {"epochs": 1, "batch_size": 16, "keep_epochs": [0]},
        "pruning": {"criterion": "snip", "p": 2, "images_per_class": 2},
        "evaluation": {"corruptions": [], "attacks": [], "cka_images": 0},
        "tracking": {"results_dir": str(tmp_path / "runs"), "experiment": "test"},
    }, list(overrides)))


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_folder):
    """A dense run, a SNIP block ticket (2 blocks) and a filter ticket of the same size, then one
    latency pass over them."""
    tmp = tmp_path_factory.mktemp("latency")
    runs = {pipeline: run(tiny(tmp, tiny_folder, f"pipeline={pipeline}"))
            for pipeline in ("dense", "ticket_init", "filter_ticket")}
    uri = tracking_uri(tiny(tmp, tiny_folder))
    lines = []
    first = measure_runs(uri, "test", settings=FAST, say=lines.append)
    return {"tmp": tmp, "uri": uri, "runs": runs, "first": first, "lines": lines,
            "first_runs": load_runs(uri, "test")}   # as the first pass left them (later tests time again)


def metrics(store, pipeline):
    return MlflowClient(store["uri"]).get_run(store["runs"][pipeline].run_id).data


@slow
def test_the_pass_logs_latency_and_its_conditions_into_every_run(store):
    assert sorted(store["first"].measured) == sorted(r.run_id for r in store["runs"].values())
    assert store["first"].networks == 3 and not store["first"].skipped
    for pipeline in store["runs"]:
        data = metrics(store, pipeline)
        assert data.metrics["latency_b1_ms"] > 0 and data.metrics["latency_b8_ms"] > 0
        assert data.tags["latency_threads"] == "1"
        assert data.tags["latency_device"].startswith("cpu")
        assert data.tags["latency_torch"] == torch.__version__
    rounds = [line for line in store["lines"] if line.startswith("round ")]
    assert [line.split(":")[0] for line in rounds] == [f"round {r}/5" for r in range(1, 6)]
    assert len(store["lines"]) - len(rounds) == 3   # and one line per network timed


@slow
def test_every_run_records_its_pass_its_network_and_the_ms_of_every_round(store):
    """One pass: the same `latency_pass` on every run, one `latency_network` per architecture, and
    `latency_rounds` whose median is the logged metric; the report's table reads them."""
    data = {pipeline: metrics(store, pipeline) for pipeline in store["runs"]}
    assert len({d.tags["latency_pass"] for d in data.values()}) == 1
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", data["dense"].tags["latency_pass"])
    assert len({d.tags["latency_network"] for d in data.values()}) == 3
    assert f"seed {store['first'].seed})" in data["dense"].tags["latency_method"]
    for d in data.values():
        rounds = json.loads(d.tags["latency_rounds"])
        assert sorted(rounds) == ["latency_b1_ms", "latency_b8_ms"]
        for metric, ms in rounds.items():
            assert len(ms) == 5 and d.metrics[metric] == statistics.median(ms)
    table = speedup_table(store["first_runs"])
    assert list(table.configurations)[0] == "dense (1 run)" and len(table) == 3
    assert list(table["runs"]) == [1, 1, 1]
    assert "inference b8 ×" in table and table["inference b8 ×"][0] == "—"
    assert timing_note(store["first_runs"]).startswith(
        f"Speed-ups from one interleaved timing pass ({data['dense'].tags['latency_pass']})")


@slow
def test_rebuilt_networks_have_the_logged_macs_and_the_tickets_shape(store):
    client = MlflowClient(store["uri"])
    for outcome in store["runs"].values():
        mlrun = client.get_run(outcome.run_id)
        rebuilt = rebuild(client, mlrun)
        assert accounting.count_macs(rebuilt.network, rebuilt.input_size) == mlrun.data.metrics["macs"]
        assert rebuilt.input_size == (3, 32, 32)
    ticket = client.get_run(store["runs"]["ticket_init"].run_id)
    removed = ticket.data.tags["removed_blocks"].split(",")
    assert len(removed) == 2
    assert len(surgery.residual_blocks(rebuild(client, ticket).network)) == 9 - 2   # ResNet20: 9 blocks
    dense_filters = accounting.count_filters(rebuild(client, client.get_run(store["runs"]["dense"].run_id)).network)
    filters = rebuild(client, client.get_run(store["runs"]["filter_ticket"].run_id)).network
    assert accounting.count_filters(filters) == metrics(store, "filter_ticket").metrics["filters"] < dense_filters


@slow
def test_a_second_pass_measures_nothing_a_new_batch_size_and_force_measure_again(store):
    again = measure_runs(store["uri"], "test", settings=FAST, say=lambda line: None)
    assert again.measured == [] and again.networks == 0
    assert set(again.skipped) == {r.run_id for r in store["runs"].values()}
    client = MlflowClient(store["uri"])
    ticket = store["runs"]["ticket_init"].run_id
    assert len(client.get_metric_history(ticket, "latency_b1_ms")) == 1
    # another batch size is not measured yet: only it is wanted, so the runs are measured again
    wider = measure_runs(store["uri"], "test", settings=LatencySettings(batch_sizes=(2,), threads=1, rounds=1,
                                                                         repeats=1, warmup=0), say=lambda line: None)
    assert sorted(wider.measured) == sorted(r.run_id for r in store["runs"].values())
    assert client.get_run(ticket).data.metrics["latency_b2_ms"] > 0
    assert len(client.get_metric_history(ticket, "latency_b1_ms")) == 1
    forced = measure_runs(store["uri"], "test", settings=LatencySettings(batch_sizes=(2,), threads=1, rounds=1,
                                                                          repeats=1, warmup=0),
                          force=True, say=lambda line: None)
    assert sorted(forced.measured) == sorted(r.run_id for r in store["runs"].values())
    assert len(client.get_metric_history(ticket, "latency_b2_ms")) == 2


@slow
def test_the_command_and_a_sweeps_pass_skip_what_is_measured(store, capsys):
    results = str(store["tmp"] / "runs")
    code = main(["latency", "--results-dir", results, "--experiment", "test", "--batch-sizes", "1", "8",
                 "--threads", "1", "--rounds", "5", "--repeats", "2"])
    assert code == 0 and capsys.readouterr().out.strip() == "no run measured; 3 skipped"
    client = MlflowClient(store["uri"])
    for outcome in store["runs"].values():
        client.set_tag(outcome.run_id, "in_sweep.s1", "true")
    line = measure_sweep_latency(store["uri"], "test", "s1", FAST.to_dict(), finished=True)
    assert line == "no run measured; 3 skipped"


@slow
def test_the_speedup_table_reads_each_rounds_ratio_beside_the_macs_ratio(store):
    """The report's speed-ups (`pipelines.report.timing`): per round dense ms / ticket ms from the
    runs' `latency_rounds`, the median and quartiles over the 5 rounds; MACs ratio from `macs`."""
    runs = store["first_runs"].set_index("pipeline")
    table = speedup_table(store["first_runs"]).set_index("configurations")
    dense, ticket = runs.loc["dense"], runs.loc["ticket_init"]
    row = table.loc["ticket_init snip p=2 (1 run)"]
    for b in (1, 8):
        ratios = np.divide(json.loads(dense.latency_rounds)[f"latency_b{b}_ms"],
                           json.loads(ticket.latency_rounds)[f"latency_b{b}_ms"])
        q25, median, q75 = np.percentile(ratios, [25, 50, 75])
        assert row[f"inference b{b} ×"] == f"{median:.2f} [{q25:.2f}–{q75:.2f}]"
    assert row["MACs ratio ×"] == f"{dense.macs / ticket.macs:.2f}"
    assert row.network == ticket.latency_network


@pytest.fixture(scope="module")
def hand_store(tmp_path_factory):
    """An empty SQLite store (made once: creating its tables takes seconds)."""
    tmp = tmp_path_factory.mktemp("hand")
    uri = f"sqlite:///{tmp}/mlflow.db"
    return {"tmp": tmp, "uri": uri, "client": MlflowClient(uri)}


def hand_made(hand_store, experiment: str, removed_tag: str | None) -> dict[str, str]:
    """In a new experiment: a dense ResNet20 run and a ticket run without layer1.1 whose
    `removed_blocks` tag says `removed_tag` (None: no tag); params, tags, MACs and parameter counts
    as a real run logs them, nothing trained. Returns the run ids by pipeline."""
    client = hand_store["client"]
    exp = client.create_experiment(experiment, artifact_location=(hand_store["tmp"] / experiment).as_uri())
    dense = models.build("resnet20", num_classes=10)
    ticket = surgery.remove_blocks(dense, ["layer1.1"])
    ids = {}
    for pipeline, network in (("dense", dense), ("ticket_init", ticket)):
        tags = {"pipeline": pipeline, "model": "resnet20", "criterion": "snip", "control": "none", "p": "1",
                "seed": "0", "identity": pipeline, "dense_identity": "dense"}
        if pipeline != "dense" and removed_tag is not None:
            tags["removed_blocks"] = removed_tag
        r = client.create_run(exp, run_name=pipeline, tags=tags)
        for key, value in {"model.name": "resnet20", "model.shortcut": "A", "data.name": "cifar10"}.items():
            client.log_param(r.info.run_id, key, value)
        for key, value in {"macs": accounting.count_macs(network), "params": accounting.count_params(network),
                           "acc": 50.0}.items():
            client.log_metric(r.info.run_id, key, value)
        client.set_terminated(r.info.run_id, "FINISHED")
        ids[pipeline] = r.info.run_id
    return ids


@slow
@pytest.mark.parametrize("tag, differs", [("none", "macs"), ("layer1.1,layer2.1", "macs"),
                                          ("layer2.1", "params")])   # a stage-2 block: same MACs, other params
def test_a_run_whose_tags_do_not_describe_its_network_is_refused_before_anything_is_timed(hand_store, tag, differs):
    experiment = f"tampered-{tag}"
    ids = hand_made(hand_store, experiment, tag)
    with pytest.raises(LotteryError) as refused:
        measure_runs(hand_store["uri"], experiment, settings=FAST, say=lambda line: None)
    message = str(refused.value)
    assert "\n" not in message and ids["ticket_init"] in message
    assert f" {differs}, the run logged " in message
    assert all("latency_b1_ms" not in hand_store["client"].get_run(i).data.metrics for i in ids.values())


@slow
def test_report_without_latency_has_no_latency_columns(hand_store):
    hand_made(hand_store, "unmeasured", "layer1.1")
    out = hand_store["tmp"] / "report"
    write_report(hand_store["uri"], "unmeasured", out)
    header = (out / "table4_cost.csv").read_text().splitlines()[0]
    assert "MACs ratio ×" in header and "latency" not in header
    assert "Inference latency" not in (out / "report.md").read_text()
    assert not (out / "latency_vs_macs.png").exists()


@slow
def test_a_run_without_removed_blocks_is_skipped_with_its_reason(hand_store):
    ids = hand_made(hand_store, "untagged", None)
    outcome = measure_runs(hand_store["uri"], "untagged", settings=FAST, say=lambda line: None)
    assert outcome.measured == [ids["dense"]]
    assert outcome.skipped == {ids["ticket_init"]: "no removed_blocks tag"}


@slow
@pytest.mark.parametrize("argv, expected", [
    (["--batch-sizes", "0"], "latency.batch_sizes must be a list of integers >= 1, got [0]"),
    (["--device", "tpu"], "unknown latency.device 'tpu'; choose one of: cpu, cuda, auto"),
    (["--threads", "0"], "latency.threads must be an integer >= 1 (or null), got 0"),
    (["--repeats", "0"], "latency.repeats must be an integer >= 1, got 0"),
    (["--rounds", "4"], "latency.rounds must be an integer >= 5, got 4"),
    (["--seed", "-1"], "latency.seed must be an integer >= 0 (or null), got -1"),
    (["--train-batch", "0"], "latency.train_batch must be an integer >= 1 (or null), got 0"),
    (["--sweep", "../x"], "sweep name '../x'"),
    ([], "no MLflow store"),
])
def test_cli_bad_input_is_one_line_and_status_2(tmp_path, capsys, argv, expected):
    code = main(["latency", "--results-dir", str(tmp_path / "nothing"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("lottery latency: error: ") and expected in err[0], err


@slow
def test_sweep_file_latency_key_is_validated_and_waits_for_every_trial(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text("base: {}\ngrid: {seed: [0]}\nlatency: {batch_sizes: [1, 128], threads: 1}\n")
    assert load_sweep(sweep).latency == latency_settings({"batch_sizes": [1, 128], "threads": 1}).to_dict()
    sweep.write_text("base: {}\ngrid: {seed: [0]}\n")
    assert load_sweep(sweep).latency is None
    sweep.write_text("base: {}\ngrid: {seed: [0]}\nlatency: {batch_size: [1]}\n")
    with pytest.raises(LotteryError, match="unknown config key 'latency.batch_size'; allowed in latency: batch_sizes, "):
        load_sweep(sweep)
    line = measure_sweep_latency("sqlite:///nowhere.db", "e", "s1", {}, finished=False)
    assert line.startswith("latency not measured: not every trial finished")


@slow
def test_an_isolated_training_step_is_timed_logged_and_reported_as_a_speedup(store):
    """--train-batch: one SGD step of a batch per network, in the same rounds as the latencies; the
    speed-up table shows dense / ticket step time per round."""
    settings = LatencySettings(batch_sizes=(1,), threads=1, rounds=5, repeats=2, warmup=1, train_batch=4)
    outcome = measure_runs(store["uri"], "test", settings=settings, say=lambda line: None)
    assert sorted(outcome.measured) == sorted(r.run_id for r in store["runs"].values())   # the new metric is wanted
    dense, ticket = metrics(store, "dense"), metrics(store, "ticket_init")
    assert dense.metrics["train_step_b4_ms"] > 0 and ticket.metrics["train_step_b4_ms"] > 0
    assert "training step of 4 images in" in ticket.tags["latency_method"]
    table = speedup_table(load_runs(store["uri"], "test")).set_index("configurations")
    ratios = np.divide(json.loads(dense.tags["latency_rounds"])["train_step_b4_ms"],
                       json.loads(ticket.tags["latency_rounds"])["train_step_b4_ms"])
    q25, median, q75 = np.percentile(ratios, [25, 50, 75])
    assert table.loc["ticket_init snip p=2 (1 run)", "train step b4 ×"] == f"{median:.2f} [{q25:.2f}–{q75:.2f}]"


@slow
def test_a_training_step_is_timed_on_a_copy_and_leaves_the_model_untouched():
    torch.manual_seed(0)
    dense = models.build("resnet20", num_classes=10)
    before = {k: v.clone() for k, v in dense.state_dict().items()}
    ticket = surgery.remove_blocks(dense, ["layer1.0", "layer2.1", "layer3.1"])
    step = {name: accounting.train_step_seconds(net, 32, repeats=3, warmup=1) for name, net in
            (("dense", dense), ("ticket", ticket))}
    assert all(torch.equal(before[k], v) for k, v in dense.state_dict().items())   # a copy was trained
    assert dense.training   # and the mode is the caller's
    assert step["ticket"] > 0 and step["dense"] > 0   # which is faster is a benchmark's question, not a test's


# ---- the interleaved pass on a fake clock: what a slow moment does to the speed-ups ----

class FakeClock:
    """`perf_counter` for `accounting`: it moves only when a `Costly` network runs, by that network's
    cost × the batch × `slow` (integers, so every time and every ratio is exact); from the call
    `slow_after` on (None: never), `slow` is 3."""

    def __init__(self, slow_after: int | None = None):
        self.now, self.slow, self.calls, self.visits, self.slow_after = 0, 1, 0, [], slow_after

    def perf_counter(self) -> float:
        return float(self.now)


def costly(clock: FakeClock, name: str, cost: int) -> nn.Module:
    """A network whose forward pass costs `cost` fake seconds per image on `clock` (its class holds
    the clock, so the copy that `train_step_seconds` trains runs on it too) and logs (name, training)."""

    class Costly(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(1))

        def forward(self, x):
            clock = Costly.clock
            if clock.slow_after is not None and clock.calls >= clock.slow_after:
                clock.slow = 3
            clock.now += cost * x.shape[0] * clock.slow
            clock.calls += 1
            clock.visits.append((name, self.training))
            return x.flatten(1)[:, :10] * self.weight

    Costly.clock = clock
    return Costly()


COSTS = {"dense": 12, "ticket-a": 8, "ticket-b": 6}   # true speed-ups 1.5 and 2
PASS = LatencySettings(batch_sizes=(1, 4), rounds=5, repeats=3, warmup=1, train_batch=4, seed=7)


def fake_pass(monkeypatch, slow_moment=lambda clock, line: None, slow_after=None) -> tuple[dict, FakeClock]:
    """`time_networks` over the three `COSTS` networks on a fake clock; `slow_moment(clock, line)`
    hears each round's closing line and may slow the clock (for every network that runs after)."""
    clock = FakeClock(slow_after)
    monkeypatch.setattr(accounting, "time", SimpleNamespace(perf_counter=clock.perf_counter))
    networks = {key: Rebuilt(costly(clock, key, cost), (3, 32, 32), key, key) for key, cost in COSTS.items()}
    times = time_networks(networks, torch.device("cpu"), PASS, PASS.seed, say=lambda line: slow_moment(clock, line))
    return times, clock


def as_runs(times: dict) -> pd.DataFrame:
    """A report runs frame of the fake pass: one run per network, tickets paired with the dense run."""
    rows = [{"pipeline": "dense" if key == "dense" else "ticket_init", "model": "fake", "criterion": key,
             "control": "none", "p": 1, "rewind_epoch": 0, "iterative": "", "identity": key, "dense_identity": "dense",
             "macs": COSTS[key], "latency_pass": "20261207T101500Z-abcdef", "latency_network": key,
             "latency_rounds": json.dumps(ms)} for key, ms in times.items()]
    return pd.DataFrame(rows)


def test_a_slow_round_falls_on_every_network_and_leaves_each_rounds_speedup_exact(monkeypatch):
    """Every call during round 3 takes 3× longer: every network's round-3 times triple, and every
    round's speed-up (dense round r / ticket round r) is the true cost ratio, round 3 included."""
    def slow_round_3(clock, line):
        clock.slow = 3 if line.startswith("round 2/") else 1

    times, _ = fake_pass(monkeypatch, slow_round_3)
    for key, cost in COSTS.items():
        assert times[key]["latency_b4_ms"] == [1000.0 * cost * 4 * s for s in (1, 1, 3, 1, 1)]
        assert times[key]["train_step_b4_ms"] == [1000.0 * cost * 4 * s for s in (1, 1, 3, 1, 1)]
    timings = network_timings(as_runs(times)).set_index("network")
    for key, true in (("ticket-a", 1.5), ("ticket-b", 2.0)):
        for metric in ("latency_b1_ms", "latency_b4_ms", "train_step_b4_ms"):
            assert timings.loc[key, f"{metric}_speedups"] == [true] * 5
            assert timings.loc[key, f"{metric}_speedup_median"] == true


def test_a_slowdown_from_mid_round_on_moves_the_ms_but_not_the_median_speedup(monkeypatch):
    """The machine slows 3× in the middle of round 3 and stays slow (as the dense network timed at
    281.5 and then 221.5 ms): the ms of rounds 4 and 5 are 3× those of rounds 1 and 2, round 3's
    speed-ups are off, yet every other round's speed-up and the median are the true ratio exactly."""
    ends = []   # the clock's calls when each round ends, in a calm pass
    fake_pass(monkeypatch, lambda clock, line: ends.append(clock.calls))
    times, _ = fake_pass(monkeypatch, slow_after=(ends[1] + ends[2]) // 2)
    dense = times["dense"]["latency_b4_ms"]
    assert dense[3] == dense[4] == 3 * dense[0] == 3 * dense[1]
    timings = network_timings(as_runs(times)).set_index("network")
    off = 0
    for key, true in (("ticket-a", 1.5), ("ticket-b", 2.0)):
        for metric in ("latency_b1_ms", "latency_b4_ms", "train_step_b4_ms"):
            speedups = timings.loc[key, f"{metric}_speedups"]
            assert [speedups[r] for r in (0, 1, 3, 4)] == [true] * 4
            off += speedups[2] != true
            assert timings.loc[key, f"{metric}_speedup_median"] == true
    assert off > 0   # the slowdown did fall inside round 3, on some networks and not others


def test_each_round_visits_every_network_in_a_fresh_order_reproducible_from_the_seed(monkeypatch):
    orders = visit_orders(COSTS, 5, seed=7)
    assert orders == visit_orders(reversed(list(COSTS)), 5, seed=7)   # the seed and the keys, not their order
    assert orders != visit_orders(COSTS, 5, seed=8)
    flat = [tuple(order) for sub_passes in orders for order in sub_passes]
    assert all(sorted(order) == sorted(COSTS) for order in flat)
    assert len(set(flat)) > 1 and len({tuple(sub_passes[0]) for sub_passes in orders}) > 1
    _, clock = fake_pass(monkeypatch)
    # the calls, consecutive ones of one visit merged (the settling visit merges with the first of
    # its sub-pass): per round, the inference visits in the first order, the training steps in the second
    visits = [v for i, v in enumerate(clock.visits) if i == 0 or v != clock.visits[i - 1]]
    assert visits == [(key, training) for inference, train in orders
                      for order, training in ((inference, False), (train, True)) for key in order]


def hand_runs() -> pd.DataFrame:
    """A report runs frame: two dense runs (one network), SNIP and GraSP tickets at p = 1 that
    removed the same block (one network), a p = 2 ticket, a ticket of an older pass and one never
    timed. Rounds in ms: dense [100, 110, 120, 130, 200]."""
    pass_id, older = "20261207T101500Z-abcdef", "20261201T080000Z-012345"
    rounds = {"d": [100, 110, 120, 130, 200], "a": [50, 55, 60, 65, 100], "b": [80, 100, 100, 100, 100]}

    def run(pipeline, criterion, p, seed, network, macs, which=pass_id):
        return {"pipeline": pipeline, "model": "resnet32", "criterion": criterion, "control": "none", "p": p,
                "rewind_epoch": 0, "iterative": "", "seed": seed, "identity": f"{pipeline}{criterion}{p}{seed}",
                "dense_identity": f"densenone0{seed}", "macs": macs,
                "latency_pass": which if network else None, "latency_network": network,
                "latency_rounds": json.dumps({"latency_b128_ms": rounds[network]}) if network else None,
                "latency_device": "cpu (Xeon)", "latency_threads": "1", "latency_torch": "2.14.1",
                "latency_method": "median over 5 interleaved rounds", "latency_measured_at": "2026-12-07 10:15 UTC"}

    return pd.DataFrame([run("dense", "none", 0, 0, "d", 100), run("dense", "none", 0, 1, "d", 100),
                         run("ticket_init", "grasp", 1, 0, "a", 80), run("ticket_init", "grasp", 1, 1, "a", 80),
                         run("ticket_init", "snip", 1, 0, "a", 80), run("ticket_init", "snip", 2, 0, "b", 50),
                         run("ticket_init", "snip", 3, 0, "a", 80, older), run("ticket_init", "snip", 4, 0, None, 40)])


def test_speedup_table_shows_identical_architectures_once_with_median_and_iqr_over_rounds():
    """Speed-ups per round, then the median and the 25th/75th percentiles (numpy's default, linear
    interpolation; at 5 rounds they are the 2nd, 3rd and 4th smallest)."""
    table = speedup_table(hand_runs())
    assert list(table.network) == ["d", "a", "b"]   # dense first, then by MACs ratio
    assert list(table.configurations) == ["dense (2 runs)",
                                          "ticket_init grasp p=1 (2 runs); ticket_init snip p=1 (1 run)",
                                          "ticket_init snip p=2 (1 run)"]
    assert list(table.runs) == [2, 3, 1] and list(table["MACs ratio ×"]) == ["1.00", "1.25", "2.00"]
    # a: 2.0 in every round; b: 100/80, 110/100, 120/100, 130/100, 200/100 = 1.25, 1.1, 1.2, 1.3, 2.0
    assert list(table["inference b128 ×"]) == ["—", "2.00 [2.00–2.00]", "1.25 [1.20–1.30]"]
    assert list(table["inference b128 ms"]) == ["120.0 [110.0–130.0]", "60.0 [55.0–65.0]", "100.0 [100.0–100.0]"]
    b = network_timings(hand_runs()).set_index("network").loc["b"]
    assert [b[f"latency_b128_ms_speedup_{q}"] for q in ("q25", "median", "q75")] == list(
        np.percentile([1.25, 1.1, 1.2, 1.3, 2.0], [25, 50, 75]))
    note = timing_note(hand_runs())
    assert "(20261207T101500Z-abcdef)" in note and "5 rounds" in note and "cpu (Xeon), 1 thread(s)" in note
    assert "6 run(s) of 3 distinct architecture(s)" in note
    assert "Left out: 1 timed in another pass, 1 without an interleaved timing run(s)." in note
    assert "\n" not in note


def test_speedups_by_size_pool_the_rounds_of_every_architecture_of_one_size():
    from pipelines.report.timing import speedup_by_size

    # a (MACs ratio 1.25): 2.0 in every round; b (2.00): 1.25, 1.1, 1.2, 1.3, 2.0
    table = speedup_by_size(hand_runs())
    assert list(table["MACs ratio ×"]) == ["1.25", "2.00"] and list(table.network) == ["block ticket"] * 2
    assert list(table.architectures) == [1, 1] and list(table.runs) == [3, 1]
    assert list(table["inference b128 ×"]) == ["2.00 [2.00–2.00]", "1.25 [1.20–1.30]"]
    assert speedup_by_size(hand_runs().assign(latency_rounds=None, latency_pass=None)) is None


def test_records_without_per_round_timings_have_no_speedup_table():
    old = hand_runs().assign(latency_rounds=None, latency_pass=None, latency_network=None)
    assert speedup_table(old) is None and timing_note(old) == ""
    assert speedup_table(hand_runs().drop(columns=["latency_rounds"])) is None
    no_dense = hand_runs()[lambda df: df.pipeline != "dense"]
    assert speedup_table(no_dense) is None
