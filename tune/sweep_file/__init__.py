"""Sweep files: a base config plus a grid (or an Optuna search), resources, concurrency, retries.

    name: demo                      # optional; `lottery sweep --name` overrides; default: the file name
    base: ../../configs/quick/resnet32_ticket_init.yaml    # a config file (relative to this file),
                                    # a mapping, or a mapping with `from: <file>` plus overrides
    grid:                           # any dotted config field -> list of values (cartesian product);
      pipeline: [ticket_init]       # or a list of such mappings (their union)
      pruning.criterion: [grasp, snip]
      pruning.p: [1, 2, 3]
      seed: [0, 1, 2]
    resources: auto                 # default: sized at launch so that trials spread over every GPU
                                    # (tune.resources); or per trial {cpu: 2, gpu: 0.25}
    max_concurrent: 2               # 0 (default): as many as the resources allow
    retries: 1                      # a failed trial is retried from its last checkpoint, this many times
    storage: s3://bucket/sweeps     # Ray Tune's storage (default <results_dir>/ray)
    latency: {batch_sizes: [1, 128]}   # optional: once every trial has finished, time every run's
                                    # inference (pipelines.latency; also device, threads, repeats)

or, instead of `grid`, an Optuna search:

    optuna:
      space: {pruning.p: {type: int, low: 1, high: 5}, pruning.criterion: {type: categorical, choices: [grasp, snip]}}
      metrics: [acc, macs]          # final metrics of a run (see pipelines.evaluation)
      modes: [max, min]
      num_samples: 12

Every grid point is validated before anything starts; invalid points are all listed, none dropped.
The dense baselines the tickets compare against are added once per dense identity (model, data,
training, seed), never once per ticket, and start first; tickets that need a trained dense network
wait for it, the others train beside it (see `Sweep.phases`).

Every error is one line in the run config's format, naming the key (`resources.gpu must be a
fraction in [0, 1] or a whole number, got 1.5`). A point is validated once, into its frozen
RunConfig, and that object is what `Sweep.points` holds and the driver and its trials use.

One job per module: `sweep` (the Sweep and its record), `reading` (the file and its base config),
`settings` (resources, concurrency, retries, storage: declared like the run config's sections),
`points` (grid points: expanded, pinned, built, dense baselines first), `optuna_space` (an Optuna
search's space and metrics).
"""
from tune.sweep_file.reading import check_name, load_sweep
from tune.sweep_file.sweep import Sweep

__all__ = ["Sweep", "check_name", "load_sweep"]
