"""`just cluster-drill`: a small real cluster on this machine, then the cluster drills.

    .venv/bin/python -m scripts.cluster_drill [--only NAME ...] [--keep]

It builds, in a temporary folder (docs/cluster-drill.md):

- S3: moto's server on 127.0.0.1 with one bucket (the sweeps' storage, MLflow's artifacts, claims);
- PostgreSQL: a cluster of its own (initdb as `postgres`, its own port and socket folder) with a
  database for MLflow, and `mlflow server` on it with its artifacts in the bucket;
- Ray: a head (`--num-cpus 0`) and two workers, each worker in a mount namespace of its own with a
  tmpfs over the results folder (its own disk) and two fake GPUs, all with token authentication.

Then the drills (`drills.DRILLS`), each printing a table of its figures and its wall time; a drill
that fails prints one line and the next one runs. Everything started is stopped by its process
group at the end (also on Ctrl-C or a failure), unless --keep.

Modules: `commands` (the command lines and environments, pure), `cluster` (starting and stopping
the services), `checks` (MLflow, S3 and node-disk figures; the metric arithmetic), `drills`.
"""
