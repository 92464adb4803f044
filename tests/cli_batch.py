"""Run many `lottery` command lines, each in its own forked process, from one fresh interpreter.

    python -m tests.cli_batch [--warm] < cases.json > results.json

cases.json: [{"argv": [...], "cwd": "...", "env": {...}}, ...]; results.json: [{"code", "stdout",
"stderr"}, ...] in the same order. The parent imports `pipelines.cli` (what `python -m
pipelines.cli` imports before it parses its arguments) and forks once per case: every case runs
`main` in a process of its own, with its own exit status, standard streams, working folder and
environment. Cold (the default), every lazy import (MLflow, Ray, torch) is done afresh in each
case, as in a new `lottery` process, so what they print on import is seen; `--warm` imports them
once in the parent first (`WARM`), for the many cases whose point is the refusal itself. A case
that raises prints its traceback, as an uncaught exception would.
"""
import json
import os
import sys
import tempfile
import traceback

from pipelines.cli import main

WARM = ("torch", "mlflow", "mlflow.tracking", "sqlalchemy", "ray", "ray.tune", "optuna", "pipelines.config",
        "pipelines.tracking", "pipelines.runner", "tune.commands", "tune.launch")


def run_case(case: dict, out_path: str, err_path: str) -> None:
    """In the forked child: redirect the standard streams to files, run `main`, exit with its status."""
    code = 1
    try:
        with open(out_path, "w") as out, open(err_path, "w") as err:
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
        os.chdir(case["cwd"])
        for key, value in case.get("env", {}).items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        try:
            code = main(case["argv"])
        except SystemExit as stop:   # argparse's own exit
            code = stop.code if isinstance(stop.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_all(cases: list[dict]) -> list[dict]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(cases):
            out_path, err_path = os.path.join(tmp, f"{i}.out"), os.path.join(tmp, f"{i}.err")
            pid = os.fork()
            if pid == 0:
                run_case(case, out_path, err_path)
            _, status = os.waitpid(pid, 0)
            with open(out_path) as out, open(err_path) as err:
                results.append({"code": os.waitstatus_to_exitcode(status), "stdout": out.read(), "stderr": err.read()})
    return results


if __name__ == "__main__":
    if "--warm" in sys.argv[1:]:
        import importlib

        for module in WARM:
            importlib.import_module(module)
    json.dump(run_all(json.load(sys.stdin)), sys.stdout)
