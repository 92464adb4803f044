"""Fault injection and probes for sweep tests, plugged into every trial through the sweep's Python
API (`launch(..., epoch_hooks=["tests.drills:FaultOnce"])`, see `tune.trial.epoch_hook`). Nothing
in the production code knows about them.

- `FaultOnce`: `<results_dir>/DRILL_ONCE` holding `fail k` raises, `kill k` SIGKILLs the trial's
  worker, in the first trial that finishes epoch k (0-based), once (the file is consumed).

A driver that must be SIGKILLed runs in its own process: `python -m tests.drills SWEEP_FILE NAME
RESULTS_DIR` runs the sweep with `FaultOnce` and prints its outcome.
"""
import os
import signal
import sys
from pathlib import Path

from lottery_core.errors import LotteryError

DRILL_FILE = "DRILL_ONCE"
FAULT_ONCE = "tests.drills:FaultOnce"


def results_dir(state) -> Path | None:
    """<results> from the epoch's checkpoint <results>/checkpoints/<identity>/<file>."""
    return Path(state.checkpoint_path).parents[2] if state.checkpoint_path is not None else None


class FaultOnce:
    """Epoch hook: the fault written in <results_dir>/DRILL_ONCE, once."""

    def on_epoch_end(self, epoch: int, metrics: dict, state) -> None:
        folder = results_dir(state)
        if folder is None:
            return
        file = folder / DRILL_FILE
        try:
            action, at = file.read_text().split()
        except (OSError, ValueError):
            return
        if int(at) != epoch:
            return
        try:
            file.unlink()
        except FileNotFoundError:
            return  # another trial took it
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise LotteryError(f"drill: failure injected after epoch {epoch}")




def main(argv: list[str]) -> int:
    """Run a sweep file with `FaultOnce` in every trial (a driver the drills can SIGKILL)."""
    from tune.launch import launch
    from tune.sweep_file import load_sweep

    path, name, results = argv
    outcome = launch(load_sweep(path, name=name), results_dir=results, epoch_hooks=[FAULT_ONCE])
    print(f"sweep {name}: {outcome.trials} trials, ok={outcome.ok}, errors={outcome.errors}", flush=True)
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
