"""One line per trial event on the driver's console (`lottery sweep --verbose 1`), instead of
Ray Tune's tables of nested configs:

    [05:01:12] started   ticket_init resnet20 snip p=1 seed=0
    [05:01:40] epoch 3/8 ticket_init resnet20 snip p=1 seed=0  epoch_test_acc 38.2%  11.9 s
    [05:02:31] finished  ticket_init resnet20 snip p=1 seed=0  acc 45.1%  (7 of 9 done)
"""
import time

from ray import tune

from tune.trial import trial_config


def describe_trial(config: dict, configs: dict | None = None) -> str:
    """A trial's one-line name from its Tune config: its run's `RunConfig.describe()`, e.g.
    `ticket_init resnet20 snip p=1 seed=0` (the one description of a run), the config found in the
    sweep's table `configs` (`tune.trial.built_configs`), not rebuilt."""
    return trial_config(config, configs).describe()


class ProgressPrinter(tune.Callback):
    """A Tune callback: trial started / epoch / finished / failed, one line each."""

    def __init__(self, total: int | None = None, configs: dict | None = None):
        self.total = total
        self.configs = configs   # the sweep's built configs (`tune.trial.built_configs`)
        self.done = 0
        self._names: dict[str, tuple[str, int | str]] = {}

    def _say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    def _name(self, trial) -> tuple[str, int | str]:
        """The run's own `RunConfig.describe()` and its epochs, worked out once per trial."""
        if trial.trial_id not in self._names:
            try:
                cfg = trial_config(trial.config, self.configs)
                self._names[trial.trial_id] = (cfg.describe(), cfg.training.epochs)
            except Exception:  # a progress line never fails a sweep; the trial reports its own error
                self._names[trial.trial_id] = (str(trial), "?")
        return self._names[trial.trial_id]

    def on_trial_start(self, iteration, trials, trial, **info):
        self._say(f"started   {self._name(trial)[0]}")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if "mlflow_run_id" in result or "epoch" not in result:
            return
        name, epochs = self._name(trial)
        acc = f"  epoch_test_acc {result['epoch_test_acc']:.1f}%" if "epoch_test_acc" in result else ""
        took = f"  {result['epoch_wall_time_s']:.1f} s" if "epoch_wall_time_s" in result else ""
        self._say(f"epoch {int(result['epoch']) + 1}/{epochs} {name}{acc}{took}")

    def on_trial_complete(self, iteration, trials, trial, **info):
        # the trials Tune holds as finished, this one included: after `lottery resume` those that
        # finished before the interruption count too
        finished = {t.trial_id for t in trials if getattr(t, "status", None) == "TERMINATED"}
        self.done = max(self.done + 1, len(finished | {trial.trial_id}))
        result = trial.last_result or {}
        acc = f"  acc {result['acc']:.1f}%" if "acc" in result else ""
        existed = "  (finished before: not trained again)" if result.get("run_existed") else ""
        of = f" of {self.total}" if self.total else ""
        self._say(f"finished  {self._name(trial)[0]}{acc}{existed}  ({self.done}{of} done)")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._say(f"failed    {self._name(trial)[0]} (Ray Tune retries it if the sweep's retries allow)")
