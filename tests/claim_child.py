"""A child process for the claim tests (tests/test_claim.py): one real process per claimant.

    python tests/claim_child.py run CONFIG.json MARKER PAUSE_EPOCH [GO]
        `pipelines.runner.run` of the config; after epoch PAUSE_EPOCH (logged and checkpointed) it
        writes its pid to MARKER and waits for the file GO (forever without GO: to be killed).
    python tests/claim_child.py hold CLAIM OWNER MARKER
        hold a claim on the file CLAIM as OWNER, write MARKER, then refresh until the claim is
        lost; print the ClaimLost message, exit 3.
    python tests/claim_child.py take CLAIM OWNER GO DONE
        wait for GO, then try to take the claim once (no waiting); print "won" or "busy";
        a winner holds it until DONE exists.
"""
import json
import sys
import time
from pathlib import Path

from pipelines.claim import Claim, ClaimBusy, ClaimLost


def await_file(path: Path, poll_s: float = 0.01) -> None:
    while not path.exists():
        time.sleep(poll_s)


class PauseAfter:
    """Epoch hook: after `epoch`, write our pid to `marker` and wait for `go` (forever without)."""

    def __init__(self, epoch: int, marker: Path, go: Path | None):
        self.epoch, self.marker, self.go = epoch, marker, go

    def on_epoch_end(self, epoch, metrics, state):
        if epoch != self.epoch:
            return
        import os

        self.marker.write_text(str(os.getpid()))
        if self.go is None:
            while True:
                time.sleep(1)
        await_file(self.go)


def main(argv: list[str]) -> int:
    mode = argv[0]
    if mode == "run":
        from pipelines.config import load_config
        from pipelines.runner import run

        config, marker, epoch = json.loads(Path(argv[1]).read_text()), Path(argv[2]), int(argv[3])
        go = Path(argv[4]) if len(argv) > 4 else None
        outcome = run(load_config(config), hooks=[PauseAfter(epoch, marker, go)])
        print(f"{outcome.status} {outcome.run_id}", flush=True)
        return 0
    if mode == "hold":
        claim = Claim(argv[1], owner=argv[2]).acquire()
        Path(argv[3]).write_text("held")
        while True:
            try:
                claim.refresh()
            except ClaimLost as err:
                print(err, flush=True)
                return 3
            time.sleep(0.05)
    if mode == "take":
        claim_path, owner, go, done = Path(argv[1]), argv[2], Path(argv[3]), Path(argv[4])
        await_file(go, poll_s=0.001)
        try:
            claim = Claim(claim_path, owner=owner, interval_s=30).acquire()
        except ClaimBusy:
            print("busy", flush=True)
            return 0
        print("won", flush=True)
        await_file(done)
        claim.release()
        return 0
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
