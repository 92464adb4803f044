"""Progress per epoch: a live line on a terminal, plain lines otherwise (logs, CI, Ray)."""
import sys


class EpochPrinter:
    """Epoch hook printing `epoch k/n  train_loss  epoch_test_acc  epoch wall time`, named as the run
    logs them (`pipelines.run_schema.EPOCH_KEYS`; the run's accuracy is the final `acc`)."""

    def __init__(self, epochs: int, stream=None):
        self.epochs, self.stream = epochs, stream or sys.stdout
        self.tty = self.stream.isatty()

    def on_epoch_end(self, epoch: int, metrics: dict, state) -> None:
        acc = metrics.get("test_acc", float("nan"))
        tested = f"{acc:.2f}%" if acc == acc else "—"  # NaN: not evaluated this epoch (training.eval_every)
        line = (f"epoch {epoch + 1}/{self.epochs}  train_loss {metrics.get('train_loss', float('nan')):.4f}  "
                f"epoch_test_acc {tested}  {metrics.get('epoch_time_s', 0):.1f}s")
        end = "\n" if not self.tty or epoch + 1 == self.epochs else ""
        print(("\r" if self.tty else "") + line, end=end, file=self.stream, flush=True)
