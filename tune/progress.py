"""One line per trial event on the driver's console (`lottery sweep --verbose 1`), instead of
Ray Tune's tables of nested configs:

    [05:01:12] started   ticket_init resnet20 snip p=1 seed=0
    [05:01:40] epoch 3/8 ticket_init resnet20 snip p=1 seed=0  test_acc 38.2%  11.9 s
    [05:02:31] finished  ticket_init resnet20 snip p=1 seed=0  acc 45.1%  (7 of 9 done)
"""
import time

from ray import tune


class ProgressPrinter(tune.Callback):
    """A Tune callback: trial started / epoch / finished / failed, one line each."""

    def __init__(self, total: int | None = None):
        self.total = total
        self.done = 0

    def _say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    @staticmethod
    def _name(trial) -> str:
        from tune.trial import trial_point

        try:
            point = trial_point(trial.config)
            epochs = (point.get("training") or {}).get("epochs", "?")
            parts = [point.get("pipeline", "ticket_init"), (point.get("model") or {}).get("name", "")]
            if parts[0] != "dense":
                pruning = point.get("pruning") or {}
                parts += [str(pruning.get("criterion", "grasp")), f"p={pruning.get('p', 1)}"]
            return " ".join(parts + [f"seed={point.get('seed', 0)}"]), epochs
        except Exception:
            return str(trial), "?"

    def on_trial_start(self, iteration, trials, trial, **info):
        self._say(f"started   {self._name(trial)[0]}")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if "mlflow_run_id" in result or "epoch" not in result:
            return
        name, epochs = self._name(trial)
        acc = f"  test_acc {result['test_acc']:.1f}%" if "test_acc" in result else ""
        took = f"  {result['epoch_time_s']:.1f} s" if "epoch_time_s" in result else ""
        self._say(f"epoch {int(result['epoch']) + 1}/{epochs} {name}{acc}{took}")

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.done += 1
        result = trial.last_result or {}
        acc = f"  acc {result['acc']:.1f}%" if "acc" in result else ""
        existed = "  (finished before: not trained again)" if result.get("run_existed") else ""
        of = f" of {self.total}" if self.total else ""
        self._say(f"finished  {self._name(trial)[0]}{acc}{existed}  ({self.done}{of} done)")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._say(f"failed    {self._name(trial)[0]} (Ray Tune retries it if the sweep's retries allow)")
