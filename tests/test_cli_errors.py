"""The drill table: bad inputs through the `lottery` command, each one line, non-zero exit, no traceback."""
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.cli import main


def bad_inputs(tmp_path):
    (tmp_path / "not_a_mapping.yaml").write_text("- just\n- a list\n")
    (tmp_path / "broken.yaml").write_text("model: {name: resnet20\n")
    (tmp_path / "unknown_section.yaml").write_text("optimizer: {lr: 0.1}\n")
    (tmp_path / "empty_folder").mkdir()
    (tmp_path / "partial" / "train" / "a").mkdir(parents=True)
    runs = ["--results-dir", str(tmp_path / "runs")]
    return [
        (["info", "resnet21"], "unknown model 'resnet21'; choose one of:"),
        (["info", "resnet20", "--num-classes", "0"], "num_classes must be a positive integer"),
        (["info", "resnet20", "--min-blocks-per-stage", "0"], "min_blocks_per_stage must be >= 1"),
        (["info"], "lottery info needs a model name"),
        (["run", str(tmp_path / "missing.yaml")], "config file not found"),
        (["run", str(tmp_path / "not_a_mapping.yaml")], "expected a mapping of sections"),
        (["run", str(tmp_path / "broken.yaml")], "not valid YAML"),
        (["run", str(tmp_path / "unknown_section.yaml")], "unknown config key 'optimizer'"),
        (["run", "--set", "pruning.p=-2"], "pruning.p must be an integer >= 0, got -2"),
        (["run", "--set", "pipeline=prune_all"], "unknown pipeline 'prune_all'; choose one of: dense"),
        (["run", "--set", "pruning.criterion=grasp2"], "unknown criterion 'grasp2'"),
        (["run", "--set", "pipeline=filter_ticket", "--set", "pruning.criterion=hrank"], "filter level"),
        (["run", "--set", "model.name=resnet20", "--set", "pruning.p=4"], "p=4 exceeds"),
        (["run", "--set", "pipeline=ticket_rewind", "--set", "training.epochs=10", "--set", "pruning.rewind_epoch=10"],
         "rewind_epoch=10 must be below training.epochs=10"),
        (["run", "--set", "training.milestones=[1.5]"], "training.milestones must be increasing fractions of the epochs in (0, 1]"),
        (["run", "--set", "evaluation.severities=[6]"], "evaluation.severities must be a list of integers in [1, 5], got [6]"),
        (["run", "--set", "evaluation.epsilons=[-0.1]"], "evaluation.epsilons must be a list of numbers in [0, 1], got [-0.1]"),
        (["run", "--set", "evaluation.corruptions=[gaussian_blurry]"], "unknown corruption 'gaussian_blurry'"),
        (["run", "--set", "evaluation.attacks=[cw]"], "unknown attack 'cw'"),
        (["run", "--set", "training.batch_size=zero"], "training.batch_size must be an integer"),
        (["run", "--set", "seed"], "not of the form section.key=value"),
        (["run", "--set", "data.name=folder", "--data-dir", str(tmp_path / "empty_folder"), *runs], "empty_folder"),
        (["run", "--set", "data.name=folder", "--data-dir", str(tmp_path / "partial"), *runs], "partial"),
        (["run", "--set", "tracking.tracking_uri=http://127.0.0.1:9", "--set", "data.name=folder",
          "--data-dir", str(tmp_path / "partial"), *runs], "unreachable"),
        (["run", "--set", "tracking.tracking_uri=./mlruns"], "plain path"),
        (["report", "nosuchsweep", *runs], "nosuchsweep"),
    ]


def test_info_lists_what_each_registry_holds(capsys):
    from lottery_core.criteria import control_registry, registry
    from pipelines.config import pipeline_registry

    for kind, names in (("criteria", registry.names("block")), ("controls", control_registry.control_names()[1:]),
                        ("pipelines", pipeline_registry.pipeline_names())):
        assert main(["info", "--list", kind]) == 0
        assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == list(names)


def test_bad_inputs_table(tmp_path, capsys):
    table = bad_inputs(tmp_path)
    assert len(table) >= 20
    for argv, expected in table:
        code = main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2, argv
        assert len(err) == 1 and expected in err[0], (argv, err)
        assert err[0].startswith(f"lottery {argv[0]}: error: ")


@pytest.mark.drill
@pytest.mark.slow
def test_the_installed_command_prints_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "--set", "pruning.p=-2"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == "lottery run: error: pruning.p must be an integer >= 0, got -2"


OPTUNA_BASE = "base: {pipeline: ticket_init, model: {name: resnet20}}\n"


def subprocess_inputs(tmp_path):
    """(argv, expected part of the one line, whether the input is refused before anything is written).

    Inputs the in-process table above does not hold, and which go wrong only in a fresh process
    (MLflow's loggers, imports) or only with files on disk."""
    (tmp_path / "latin1.yaml").write_bytes(b"model: {name: resnet20}\n# caf\xe9\n")
    (tmp_path / "twice.yaml").write_text("model: {name: resnet20}\nmodel: {name: resnet32}\n")
    (tmp_path / "a_folder.yaml").mkdir()
    (tmp_path / "a_file").write_text("")
    (tmp_path / "sweep_twice.yaml").write_text("name: s\nname: t\ngrid: [{pruning.p: 1}]\n")
    (tmp_path / "sweep_metric.yaml").write_text(
        OPTUNA_BASE + "optuna: {space: {pruning.p: {type: int, low: 1, high: 2}}, metrics: [accuracy], "
                      "modes: [max], num_samples: 2}\n")
    (tmp_path / "sweep_val.yaml").write_text(
        OPTUNA_BASE + "optuna: {space: {pruning.p: {type: int, low: 1, high: 2}}, metrics: [val_acc], "
                      "modes: [max], num_samples: 2}\n")
    (tmp_path / "sweep_key.yaml").write_text("name: s\ngrids: [{pruning.p: 1}]\n")
    damaged = tmp_path / "damaged" / "ray" / "cut"
    damaged.mkdir(parents=True)
    (damaged / "sweep.json").write_text('{"sweep": {"name": "cut", "base"')
    runs = str(tmp_path / "damaged")
    return [
        (["run", str(tmp_path / "latin1.yaml")], "not UTF-8 text", True),
        (["run", str(tmp_path / "a_folder.yaml")], "is a folder; give the path of a .yaml file", True),
        (["run", str(tmp_path / "twice.yaml")], "key 'model' is given twice (lines 1 and 2)", True),
        (["run", "--set", "training.lr=1e-3", "--set", "training.momentum=1.0"], "training.momentum must be a number in [0, 1), got 1.0",
         True),
        (["run", "--set", "training.milestones=[0.75,0.5]"], "training.milestones must be increasing fractions of the epochs in (0, 1], e.g. [0.5, 0.75], got [0.75, 0.5]", True),
        (["run", "--set", "training.gamma=0"], "training.gamma must be a number in (0, 1], got 0", True),
        (["run", "--set", "pruning.temperature=0"], "pruning.temperature must be a number in (0, inf), got 0", True),
        (["run", "--set", "device=tpu"], "device='tpu' is not allowed; choose auto, cpu, cuda or cuda:N", True),
        (["run", "--set", "device=cuda:7"], "device=cuda:7: ", True),
        (["run", "--set", "pipeline=ticket_rewind", "--set", "pruning.rewind_epoch=2"],
         "pruning.rewind_epoch=2 is not one of training.keep_epochs=[0, 25, 50, 75]", True),
        (["run", "--set", "tracking.tracking_uri=http://bob:hunter2@127.0.0.1:9"],
         "tracking.tracking_uri=http://bob:***@127.0.0.1:9 carries credentials", True),
        (["run", "--set", "tracking.tracking_uri=postgresql://127.0.0.1/db"], "needs the Python module", True),
        (["run", "--set", "tracking.tracking_uri=nosuchdb://h/db"], "SQLAlchemy knows no database 'nosuchdb'", True),
        (["run", "--results-dir", str(tmp_path / "a_file" / "x")], "cannot be created (Not a directory)", True),
        (["run", "--set", "training.epochs=0"], "training.epochs must be an integer >= 1, got 0", True),
        (["run", "--set", "training.pct_start=1.0"], "training.pct_start must be a number in (0, 1), got 1.0", True),
        (["run", "--set", "training.label_smoothing=1"], "training.label_smoothing must be a number in [0, 1), got 1",
         True),
        (["run", "--set", "pruning.criterion=synflow", "--set", "pruning.bn_mode=train"],
         "pruning: synflow needs bn_mode='eval' (it cannot score in train mode)", True),
        (["run", "--set", "pruning.criterion=pls", "--set", "pruning.components=0"],
         "pruning.components must be an integer >= 1, got 0", True),
        (["run", "--set", "model.shortcut=Z"], "unknown model.shortcut 'Z'; choose one of: A, B, conv", True),
        (["run", "--sett", "seed=1"], "unrecognized arguments: --sett", True),
        (["info", "resnet20", "--num-classes", "ten"], "argument --num-classes: invalid int value: 'ten'", True),
        (["report", "a'b"], "sweep name \"a'b\": use letters, digits", True),
        (["report", "../../x"], "sweep name '../../x'", True),
        (["report"], "no MLflow store in", True),
        (["ui", "--port", "99999"], "--port 99999 is not a TCP port; give 1 to 65535", True),
        (["ui"], "no MLflow store in", True),
        (["resume", "../../x"], "sweep name '../../x'", True),
        (["resume", "cut", "--results-dir", runs], "sweep.json is damaged (JSONDecodeError", False),
        (["sweep", str(tmp_path / "missing.yaml")], "sweep file not found", True),
        (["sweep", str(tmp_path / "sweep_twice.yaml")], "key 'name' is given twice", True),
        (["sweep", str(tmp_path / "sweep_key.yaml")], "unknown sweep key 'grids'", True),
        (["sweep", str(tmp_path / "sweep_metric.yaml")], "optuna metric 'accuracy': no run reports a metric", True),
        (["sweep", str(tmp_path / "sweep_val.yaml")], "optuna metric 'val_acc': val_acc needs data.val_size > 0",
         True),
        (["sweep", str(tmp_path / "sweep_key.yaml"), "--name", "a/b"], "unknown sweep key 'grids'", True),
        (["sweep", "tune/sweeps/demo.yaml", "--name", "a/b", "--dry-run"], "sweep name 'a/b'", True),
    ]


def _case(argv, results_dir) -> dict:
    """One command line for `tests.cli_batch`: its own results folder, no tracking URI from outside."""
    extra = [] if "--results-dir" in argv or argv[0] == "info" else ["--results-dir", str(results_dir)]
    return {"argv": [*argv, *extra], "cwd": str(Path(__file__).resolve().parents[1]),
            "env": {"LOTTERY_RESULTS_DIR": str(results_dir), "MLFLOW_TRACKING_URI": None}}


def run_batches(cases: list[dict]) -> list[dict]:
    """`cases` through `python -m tests.cli_batch` (see tests/cli_batch.py): the first case of each
    command cold, each lazy import afresh as in a new `lottery` process (split over two
    interpreters), the others in a warm interpreter; the three run at once."""
    import json

    repo = Path(__file__).resolve().parents[1]
    first = {}
    for i, case in enumerate(cases):
        first.setdefault(case["argv"][0], i)
    cold = sorted(first.values())
    groups = [(cold[0::2], []), (cold[1::2], []),
              ([i for i in range(len(cases)) if i not in first.values()], ["--warm"])]
    children = [(subprocess.Popen([sys.executable, "-m", "tests.cli_batch", *flags], cwd=repo, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), indices)
                for indices, flags in groups if indices]
    for child, indices in children:
        child.stdin.write(json.dumps([cases[i] for i in indices]))
        child.stdin.close()
    results = [None] * len(cases)
    for child, indices in children:
        out, err = child.stdout.read(), child.stderr.read()
        assert child.wait(timeout=600) == 0, err[-2000:]
        for i, result in zip(indices, json.loads(out), strict=True):
            results[i] = result
    return results


@pytest.mark.drill
@pytest.mark.slow
def test_every_bad_input_is_one_line_in_a_fresh_process(tmp_path):
    """Each input in a process of its own (forked from an interpreter that imported `pipelines.cli`
    and, for all but each command's first input, the libraries `lottery` imports lazily): exit status 2, one line
    `lottery CMD: error: ...` on stderr, no traceback, no password, and nothing written for an
    input refused before work starts."""
    inputs = [(argv, expected, True) for argv, expected in bad_inputs(tmp_path)
              if "--data-dir" not in argv and argv[0] != "report"] + subprocess_inputs(tmp_path)
    assert len(inputs) >= 40
    cases = []
    for i, (argv, expected, clean) in enumerate(inputs):
        home = tmp_path / f"case{i}"
        home.mkdir()
        cases.append((argv, expected, clean, home))
    results = run_batches([_case(argv, home / "runs") for argv, _, _, home in cases])
    for (argv, expected, clean, home), result in zip(cases, results, strict=True):
        lines = result["stderr"].strip().splitlines()
        assert result["code"] == 2, (argv, result["stderr"][-2000:])
        assert "Traceback" not in result["stderr"] and "hunter2" not in result["stderr"] + result["stdout"], argv
        assert len(lines) == 1 and expected in lines[0], (argv, lines)
        assert lines[0].startswith((f"lottery {argv[0]}: error: ", "lottery: error: ")), (argv, lines)
        if clean:
            assert not any(home.iterdir()), (argv, list(home.iterdir()))
