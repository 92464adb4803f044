# Recipes for block tickets. `just --list` shows them. Python comes from ./.venv when it exists.
py := if path_exists(".venv/bin/python") == "true" { justfile_directory() / ".venv/bin/python" } else { "python3" }
lottery := py + " -m pipelines.cli"
data := env_var_or_default("LOTTERY_DATA_DIR", justfile_directory() / "../shared/data/cifar10")

# create ./.venv and install the project with its pinned dependencies
setup:
    test -x .venv/bin/python || python3.11 -m venv .venv
    .venv/bin/pip install -e '.[dev]'

# the whole test suite (well under 15 minutes on 2 cores)
test *args:
    {{py}} -m pytest {{args}}

# ruff on everything
lint:
    {{py}} -m ruff check lottery_core pipelines tune tests benchmarks

# every benchmark in benchmarks/, results in benchmarks/results.json and benchmarks/results.md
bench:
    {{py}} -m benchmarks.run_all

# the GPU check (benchmarks/gpu_check.py): <= 5 min on one GPU; a tiny smoke run on a CPU
gpu-check *args:
    test -f benchmarks/gpu/cifar10_subset.npz || {{py}} -m benchmarks.pack_cifar --data-dir {{data}}
    {{py}} -m benchmarks.gpu_check {{args}}

# the reduced paper sweep on a CIFAR-10 subset (<= 15 min on 2 cores), then the report
demo:
    {{lottery}} sweep tune/sweeps/demo.yaml --data-dir {{data}}

# a sweep file on local Ray (or --address for a cluster)
sweep file *args:
    {{lottery}} sweep {{file}} {{args}}

# finish an interrupted or partly failed sweep
resume name *args:
    {{lottery}} resume {{name}} {{args}}

# paper-style tables and plots of a sweep
report name *args:
    {{lottery}} report {{name}} {{args}}

# the MLflow UI on the local store
ui *args:
    {{lottery}} ui {{args}}

# the fault drills (worker and driver SIGKILL, corrupt checkpoint, bad inputs)
drill:
    {{py}} -m pytest tests -m drill -q
