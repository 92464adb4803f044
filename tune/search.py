"""The Optuna search of a sweep, told the trials' final results only.

A trial reports each epoch to Ray under its per-epoch names (`epoch_val_acc`, `epoch_test_acc`, ...:
`pipelines.run_schema`, one meaning per key) and its final metrics (`val_acc`, `acc`, `macs`, ...)
once, in its last result. A search optimizes final metrics (`tune.sweep_file.optuna_space`), which
no epoch's result carries: Ray's `OptunaSearch` would fail on a single objective's first epoch
(`result[metric]`), and per-epoch values given to Optuna as intermediate values would mix the two
meanings again. Optuna gets each trial's final metrics when the trial completes.
"""
from ray.tune.search.optuna import OptunaSearch


class FinalResultOptunaSearch(OptunaSearch):
    """`OptunaSearch` that ignores intermediate (per-epoch) results; `on_trial_complete` gets the
    trial's last result, its final metrics."""

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        return None


__all__ = ["FinalResultOptunaSearch"]
