"""The latency pass (`pipelines.latency`, `lottery latency`) over real runs in a SQLite MLflow store,
and the report's latency speed-up beside the MACs ratio."""
import pytest
import torch
from mlflow.tracking import MlflowClient

from lottery_core import accounting, models, surgery
from lottery_core.errors import LotteryError
from pipelines.cli import main
from pipelines.config import load_config
from pipelines.context import with_fingerprint
from pipelines.latency import measure_runs, rebuild
from pipelines.latency_settings import LatencySettings, latency_settings
from pipelines.report import write_report
from pipelines.runner import run
from pipelines.tracking import tracking_uri
from tune.sweep_file import load_sweep
from tune.tracking import measure_sweep_latency

pytestmark = pytest.mark.slow   # finished runs rebuilt and timed

FAST = LatencySettings(batch_sizes=(1, 8), threads=1, rounds=2, repeats=2, warmup=1)


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
    return {"tmp": tmp, "uri": uri, "runs": runs, "first": first, "lines": lines}


def metrics(store, pipeline):
    return MlflowClient(store["uri"]).get_run(store["runs"][pipeline].run_id).data


def test_the_pass_logs_latency_and_its_conditions_into_every_run(store):
    assert sorted(store["first"].measured) == sorted(r.run_id for r in store["runs"].values())
    assert store["first"].networks == 3 and not store["first"].skipped
    for pipeline in store["runs"]:
        data = metrics(store, pipeline)
        assert data.metrics["latency_b1_ms"] > 0 and data.metrics["latency_b8_ms"] > 0
        assert data.tags["latency_threads"] == "1"
        assert data.tags["latency_device"].startswith("cpu")
        assert data.tags["latency_torch"] == torch.__version__
    assert len(store["lines"]) == 3   # one line per network timed


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


def test_the_command_and_a_sweeps_pass_skip_what_is_measured(store, capsys):
    results = str(store["tmp"] / "runs")
    code = main(["latency", "--results-dir", results, "--experiment", "test", "--batch-sizes", "1", "8",
                 "--threads", "1", "--rounds", "1", "--repeats", "2"])
    assert code == 0 and capsys.readouterr().out.strip() == "no run measured; 3 skipped"
    client = MlflowClient(store["uri"])
    for outcome in store["runs"].values():
        client.set_tag(outcome.run_id, "in_sweep.s1", "true")
    line = measure_sweep_latency(store["uri"], "test", "s1", FAST.to_dict(), finished=True)
    assert line == "no run measured; 3 skipped"


def test_report_shows_latency_speedup_beside_the_macs_ratio(store):
    out = store["tmp"] / "report"
    write_report(store["uri"], "test", out)
    table = (out / "table4_cost.csv").read_text().splitlines()
    header, row = table[0].split(","), table[1].split(",")
    assert "latency b1 ×" in header and "latency b8 ×" in header and "MACs ratio ×" in header
    dense, ticket = metrics(store, "dense").metrics, metrics(store, "ticket_init").metrics
    for b in (1, 8):
        expected = dense[f"latency_b{b}_ms"] / ticket[f"latency_b{b}_ms"]
        assert row[header.index(f"latency b{b} ×")] == f"{expected:.2f} (n=1)"
    assert row[header.index("MACs ratio ×")] == f"{dense['macs'] / ticket['macs']:.2f} (n=1)"
    report = (out / "report.md").read_text()
    assert "Inference latency (`lottery latency`" in report and "1 thread(s)" in report
    assert (out / "latency_vs_macs.png").is_file()


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


def test_report_without_latency_has_no_latency_columns(hand_store):
    hand_made(hand_store, "unmeasured", "layer1.1")
    out = hand_store["tmp"] / "report"
    write_report(hand_store["uri"], "unmeasured", out)
    header = (out / "table4_cost.csv").read_text().splitlines()[0]
    assert "MACs ratio ×" in header and "latency" not in header
    assert "Inference latency" not in (out / "report.md").read_text()
    assert not (out / "latency_vs_macs.png").exists()


def test_a_run_without_removed_blocks_is_skipped_with_its_reason(hand_store):
    ids = hand_made(hand_store, "untagged", None)
    outcome = measure_runs(hand_store["uri"], "untagged", settings=FAST, say=lambda line: None)
    assert outcome.measured == [ids["dense"]]
    assert outcome.skipped == {ids["ticket_init"]: "no removed_blocks tag"}


@pytest.mark.parametrize("argv, expected", [
    (["--batch-sizes", "0"], "latency batch sizes must be a list of integers >= 1"),
    (["--device", "tpu"], "latency device must be one of cpu, cuda, auto"),
    (["--threads", "0"], "latency threads must be an integer >= 1"),
    (["--repeats", "0"], "latency repeats must be an integer >= 1"),
    (["--rounds", "-1"], "latency rounds must be an integer >= 1"),
    (["--train-batch", "0"], "latency train_batch must be an integer >= 1"),
    (["--sweep", "../x"], "sweep name '../x'"),
    ([], "no MLflow store"),
])
def test_cli_bad_input_is_one_line_and_status_2(tmp_path, capsys, argv, expected):
    code = main(["latency", "--results-dir", str(tmp_path / "nothing"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("lottery latency: error: ") and expected in err[0], err


def test_sweep_file_latency_key_is_validated_and_waits_for_every_trial(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text("base: {}\ngrid: {seed: [0]}\nlatency: {batch_sizes: [1, 128], threads: 1}\n")
    assert load_sweep(sweep).latency == latency_settings({"batch_sizes": [1, 128], "threads": 1}).to_dict()
    sweep.write_text("base: {}\ngrid: {seed: [0]}\n")
    assert load_sweep(sweep).latency is None
    sweep.write_text("base: {}\ngrid: {seed: [0]}\nlatency: {batch_size: [1]}\n")
    with pytest.raises(LotteryError, match="latency: unknown key 'batch_size'"):
        load_sweep(sweep)
    line = measure_sweep_latency("sqlite:///nowhere.db", "e", "s1", {}, finished=False)
    assert line.startswith("latency not measured: not every trial finished")


def test_an_isolated_training_step_is_timed_logged_and_reported_as_a_speedup(store):
    """--train-batch: one SGD step of a batch per network, in the rounds beside the latencies; the
    report's Table 4 shows dense / ticket step time, paired with its dense run."""
    settings = LatencySettings(batch_sizes=(1,), threads=1, rounds=1, repeats=2, warmup=1, train_batch=4)
    outcome = measure_runs(store["uri"], "test", settings=settings, say=lambda line: None)
    assert sorted(outcome.measured) == sorted(r.run_id for r in store["runs"].values())   # the new metric is wanted
    dense, ticket = metrics(store, "dense"), metrics(store, "ticket_init")
    assert dense.metrics["train_step_b4_ms"] > 0 and ticket.metrics["train_step_b4_ms"] > 0
    assert "training step of 4 images in" in ticket.tags["latency_method"]
    out = store["tmp"] / "report-train-step"
    write_report(store["uri"], "test", out)
    header, row = [line.split(",") for line in (out / "table4_cost.csv").read_text().splitlines()[:2]]
    expected = dense.metrics["train_step_b4_ms"] / ticket.metrics["train_step_b4_ms"]
    assert row[header.index("train step b4 ×")] == f"{expected:.2f} (n=1)"


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
