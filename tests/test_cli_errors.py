"""The drill table: bad inputs through the `lottery` command, each one line, non-zero exit, no traceback."""
import subprocess
import sys

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
        (["run", str(tmp_path / "missing.yaml")], "config file not found"),
        (["run", str(tmp_path / "not_a_mapping.yaml")], "expected a mapping of sections"),
        (["run", str(tmp_path / "broken.yaml")], "not valid YAML"),
        (["run", str(tmp_path / "unknown_section.yaml")], "unknown config key 'optimizer'"),
        (["run", "--set", "pruning.p=-2"], "pruning.p=-2 is below the minimum 0"),
        (["run", "--set", "pipeline=prune_all"], "pipeline='prune_all' is not allowed; choose one of: dense"),
        (["run", "--set", "pruning.criterion=grasp2"], "unknown criterion 'grasp2'"),
        (["run", "--set", "pipeline=filter_ticket", "--set", "pruning.criterion=hrank"], "filter level"),
        (["run", "--set", "model.name=resnet20", "--set", "pruning.p=4"], "p=4 exceeds"),
        (["run", "--set", "pipeline=ticket_rewind", "--set", "training.epochs=10", "--set", "pruning.rewind_epoch=10"],
         "rewind_epoch=10 must be below training.epochs=10"),
        (["run", "--set", "training.milestones=[1.5]"], "milestones=[1.5] must be fractions"),
        (["run", "--set", "evaluation.severities=[6]"], "severities are 1 to 5"),
        (["run", "--set", "evaluation.epsilons=[-0.1]"], "epsilons are in [0, 1]"),
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
def test_the_installed_command_prints_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "--set", "pruning.p=-2"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == "lottery run: error: pruning.p=-2 is below the minimum 0"
