# Recipes for block tickets. `just --list` shows them. Python comes from ./.venv when it exists.
py := if path_exists(".venv/bin/python") == "true" { justfile_directory() / ".venv/bin/python" } else { "python3" }
lottery := py + " -m pipelines.cli"
data := env_var_or_default("LOTTERY_DATA_DIR", justfile_directory() / "../shared/data/cifar10")

# create ./.venv and install the project with its pinned dependencies
setup:
    test -x .venv/bin/python || python3.11 -m venv .venv
    .venv/bin/pip install -e '.[dev]'

# the whole test suite (about 26 minutes on 2 cores)
test *args:
    {{py}} -m pytest {{args}}

# the quick tier for everyday work (library, config, report, in-process CLI; about 3 minutes)
test-quick *args:
    {{py}} -m pytest -m "not slow" {{args}}

# the numerical tests as another CPU computes them: oneDNN's AVX2 kernels, then one thread
test-kernels *args:
    ONEDNN_MAX_CPU_ISA=AVX2 {{py}} -m pytest -m numerical {{args}}
    OMP_NUM_THREADS=1 {{py}} -m pytest -m numerical {{args}}

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

# a small real cluster here (S3, PostgreSQL + MLflow, Ray head + 2 workers), its drills, then the Slurm drill
cluster-drill *args:
    #!/usr/bin/env bash
    set -uo pipefail
    {{py}} -m scripts.cluster_drill {{args}}; cluster=$?
    {{py}} -m scripts.slurm_drill; slurm=$?
    exit $(( cluster || slurm ))

# the deciding reproduction (docs/results/README.md) as a sweep: 144 trials, two one-thread trials at
# a time (tune/sweeps/reproduction.yaml); finished identities are reused, never trained again. After
# an interruption `lottery resume reproduction-<time>` (the name it printed) finishes it; then, with
# the machine to itself, `just reproduce-finish` times every run, exports the records, writes the report
reproduce results="lottery-runs":
    {{lottery}} sweep tune/sweeps/reproduction.yaml --data-dir {{data}} --results-dir {{results}}
    {{just_executable()}} reproduce-finish {{results}}

# latency and one training step of every reproduction run (alone on the machine), records, report
reproduce-finish results="lottery-runs":
    {{lottery}} latency --experiment reproduction --results-dir {{results}} --threads 1 --train-batch 128 --repeats 5
    {{lottery}} records export --experiment reproduction --results-dir {{results}} --out docs/results/records
    {{lottery}} report --experiment reproduction --results-dir {{results}} --questions tune/sweeps/reproduction.yaml \
        --out docs/results

# the full CIFAR-10 study (docs/results/full-cifar10), on a CPU with native bf16 only: the committed
# records imported, then its declared sweep (tune/sweeps/full_cifar10.yaml); finished identities are
# reused, never trained again. After an interruption within a session `lottery resume <the name it
# printed>`; in a new session this recipe again. Export the records after each part (below)
full-cifar10 results="lottery-runs":
    #!/usr/bin/env bash
    set -euo pipefail
    for part in docs/results/full-cifar10/records/*/; do
        {{lottery}} records import "$part" --experiment full-cifar10 --results-dir {{results}}
    done
    {{lottery}} sweep tune/sweeps/full_cifar10.yaml --data-dir {{data}} --results-dir {{results}}

# the finished runs of the full CIFAR-10 study as records (commit them), after the ledger check
full-cifar10-export results="lottery-runs":
    {{lottery}} records check --experiment full-cifar10 --results-dir {{results}}
    {{lottery}} records export --experiment full-cifar10 --results-dir {{results}} --out docs/results/full-cifar10/records/study

# at the end, with the machine to itself: latency and one training step of every run, records, report,
# and the same report without the pilot's seeds 0-2 (a sensitivity analysis: the seed count came from them)
full-cifar10-finish results="lottery-runs":
    {{lottery}} latency --experiment full-cifar10 --results-dir {{results}} --threads 1 --train-batch 128 --repeats 5
    {{just_executable()}} full-cifar10-export {{results}}
    {{lottery}} report --experiment full-cifar10 --results-dir {{results}} --questions tune/sweeps/full_cifar10.yaml \
        --out docs/results/full-cifar10
    {{lottery}} report --experiment full-cifar10 --results-dir {{results}} --questions tune/sweeps/full_cifar10.yaml \
        --seeds 3 4 5 --out docs/results/full-cifar10/without-pilot-seeds
