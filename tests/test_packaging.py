import pathlib
import tomllib

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_environment_yml_pins_exactly_what_pyproject_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip_section) - {"-e ."} == pins
    assert all("==" in p for p in pins)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text().splitlines()
    test_command = next(line.strip() for line in readme[:30] if line.strip().endswith("just test"))
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_lower_layers_never_import_upper_ones():
    for layer, forbidden in [("lottery_core", ("ray", "mlflow", "optuna", "pipelines", "tune")),
                             ("pipelines", ("ray", "tune"))]:
        for path in (ROOT / layer).rglob("*.py"):
            for line in path.read_text().splitlines():
                words = line.split()
                if words[:1] in (["import"], ["from"]) and len(words) > 1:
                    assert words[1].split(".")[0] not in forbidden, f"{path}: {line}"


def test_printed_hints_call_lottery_as_this_shell_can(monkeypatch, tmp_path):
    import sys

    from pipelines.cli import lottery_command

    script = pathlib.Path(sys.prefix) / "bin" / "lottery"  # pip install -e . wrote it
    assert script.exists()
    monkeypatch.setenv("PATH", str(script.parent))
    assert lottery_command() == "lottery"
    monkeypatch.setenv("PATH", str(tmp_path))  # a venv that is not activated
    monkeypatch.chdir(pathlib.Path(sys.prefix).parent)
    assert lottery_command() == str(pathlib.Path(sys.prefix).name + "/bin/lottery")
