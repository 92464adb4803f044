"""One claim per run identity: at most one live process trains a run, across processes and nodes.

    with Claim(layout.claim_file(checkpoints), owner="ray-trial:sweep:abc_00001").acquire(wait=True):
        ...   # train; the claim is refreshed in the background and at every epoch

MLflow has no compare-and-set, so the claim lives beside the checkpoints, in the results folder.
The mechanism depends on the storage:

- local disk and NFS (v3 and later): a file created with `O_CREAT | O_EXCL`, which is atomic
  there (the Linux NFS client sends an exclusive CREATE to the server). This is what is
  implemented: the results folder is a file system path (the checkpoints are files), shared
  between the nodes of a cluster.
- a bucket (S3, GCS): a conditional write (`If-None-Match: *`) would play the part of O_EXCL.
  Not implemented: the results folder cannot be a bucket today.

The file `<results>/checkpoints/<identity>.claim` holds JSON {owner, host, pid, heartbeat (unix
time, s), interval_s, token}. The holder rewrites the heartbeat every `interval_s` seconds from a
background thread and at every epoch (`refresh`). A claim whose heartbeat is older than
`EXPIRE_AFTER` of its own intervals is expired: its holder died or hangs, and anyone may take it
over. A taker whose `owner` equals the holder's (a Ray retry or restore of the same trial: the
owner is the trial id) takes it over at once, without waiting for expiry. The heartbeat is read
against the reader's clock: the nodes' clocks must agree to well within an interval (NTP).

Taking over is atomic too: only the process that creates `<claim>.takeover` (O_EXCL) may remove
a claim, and only when the file still holds exactly the bytes it judged stale (a holder that woke
up and refreshed meanwhile keeps it); it then creates its own claim with O_EXCL. Two takers that
see one stale claim at once thus give one winner; the other finds a live claim. A holder whose
claim was taken over notices at its next refresh (`ClaimLost`) and stops without touching the run.
"""
import json
import os
import socket
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from lottery_core.errors import LotteryError

EXPIRE_AFTER = 3                 # missed heartbeats after which a claim is expired
DEFAULT_INTERVAL_S = 30.0        # seconds between heartbeats
INTERVAL_ENV = "LOTTERY_CLAIM_INTERVAL_S"   # sets the interval (tests use a fraction of a second)
TAKEOVER_SUFFIX = ".takeover"


@dataclass(frozen=True)
class Holder:
    """What a claim file says: who holds it and when it last said so (`heartbeat`, unix time in s)."""

    owner: str
    host: str
    pid: int
    heartbeat: float
    interval_s: float
    token: str

    def age_s(self, now: float | None = None) -> float:
        """Seconds since the heartbeat (0 when the holder's clock is ahead of ours)."""
        return max(0.0, (time.time() if now is None else now) - self.heartbeat)

    def expired(self, now: float | None = None) -> bool:
        """True when `EXPIRE_AFTER` heartbeats are missed: the holder is dead or hangs."""
        return self.age_s(now) > EXPIRE_AFTER * self.interval_s

    def describe(self) -> str:
        """'pid 4242 on host node-1, last heartbeat 19:04:05 UTC (3.2 s ago)'."""
        seen = time.strftime("%H:%M:%S UTC", time.gmtime(self.heartbeat))
        return f"pid {self.pid} on host {self.host}, last heartbeat {seen} ({self.age_s():.1f} s ago)"


class ClaimBusy(LotteryError):
    """The identity is claimed by a live holder (and the caller would not wait)."""

    def __init__(self, message: str, holder: Holder):
        super().__init__(message)
        self.holder = holder


class ClaimLost(LotteryError):
    """This process's claim was taken over (it had missed its heartbeats): it must stop."""


def interval_from_env() -> float:
    """The heartbeat interval in seconds: $LOTTERY_CLAIM_INTERVAL_S, else `DEFAULT_INTERVAL_S`."""
    text = os.environ.get(INTERVAL_ENV, "").strip()
    if not text:
        return DEFAULT_INTERVAL_S
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise LotteryError(f"{INTERVAL_ENV}={text!r}: give the claim's heartbeat interval in seconds, "
                           f"a number > 0 (default {DEFAULT_INTERVAL_S:g})")
    return value


def read_holder(path: Path) -> tuple[Holder, bytes] | None:
    """(holder, raw bytes) of the claim file at `path`, or None when there is none.

    A file that is not (yet) a whole record (its creator is between the O_EXCL create and the
    write, or died there) reads as an anonymous holder whose heartbeat is the file's mtime."""
    try:
        raw = path.read_bytes()
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return None
    try:
        record = json.loads(raw)
        return Holder(str(record["owner"]), str(record["host"]), int(record["pid"]), float(record["heartbeat"]),
                      float(record["interval_s"]), str(record["token"])), raw
    except (ValueError, KeyError, TypeError):
        return Holder("?", "?", 0, mtime, DEFAULT_INTERVAL_S, ""), raw


class Claim:
    """A claim on one run, held by this process from `acquire` until `release` (or the `with` exit).

    `owner`: who may take the claim over at once (a Ray trial passes its trial id, so that its
    retries do); default: unique to this Claim object. `interval_s`: seconds between heartbeats
    (default `interval_from_env()`). `label`: what is claimed, in messages (default the file's name).
    """

    def __init__(self, path: str | os.PathLike, owner: str | None = None, interval_s: float | None = None,
                 label: str | None = None):
        self.path = Path(path)
        self.label = label or self.path.name
        self.token = uuid.uuid4().hex
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.owner = owner or f"process:{self.host}:{self.pid}:{self.token[:8]}"
        self.interval_s = interval_from_env() if interval_s is None else float(interval_s)
        self.held = False
        self.lost: str | None = None          # why the claim was lost, once it was
        self.replaced: Holder | None = None   # the expired (or same-owner) claim this one took over
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._write_lock = threading.Lock()   # the heartbeat thread and the epoch hook both refresh

    # --- taking and giving back -----------------------------------------------------------------

    def acquire(self, wait: bool = False, on_wait=None) -> "Claim":
        """Take the claim; returns self (`replaced` names the claim it took over, if any). A live
        holder: `ClaimBusy` (one line naming it), or with `wait`, poll until it releases or
        expires (`on_wait(holder)` is called once, first)."""
        announced = False
        while not self._try_take():
            seen = read_holder(self.path)
            if seen is None:
                continue                       # released meanwhile: try again at once
            holder = seen[0]
            if not wait:
                raise ClaimBusy(f"{self.label} is claimed by {holder.describe()}; "
                                f"it is taken over after {EXPIRE_AFTER} missed heartbeats "
                                f"({EXPIRE_AFTER * holder.interval_s:g} s): stop that process, or wait for it "
                                f"with --wait", holder)
            if not announced and on_wait is not None:
                on_wait(holder)
                announced = True
            self._stop.wait(min(1.0, max(0.05, holder.interval_s / 4)))
        self.held, self.lost = True, None
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name=f"claim-heartbeat-{self.path.name}", daemon=True)
        self._thread.start()
        return self

    def release(self) -> None:
        """Stop the heartbeat and remove the claim file, if it is still ours."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if self.held:
            self.held = False
            current = read_holder(self.path)
            if current is not None and current[0].token == self.token:
                self.path.unlink(missing_ok=True)

    def __enter__(self) -> "Claim":
        if not self.held:
            self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    # --- while held -----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Write a new heartbeat; `ClaimLost` when the file is no longer ours (taken over)."""
        if not self.held:
            raise ClaimLost(f"claim {self.path} is not held by this process")
        with self._write_lock:
            if self.lost is None:
                current = read_holder(self.path)
                if current is None or current[0].token != self.token:
                    self.lost = ("it was removed" if current is None
                                 else f"it was taken over by {current[0].describe()}")
            if self.lost is not None:
                raise ClaimLost(f"this process's claim {self.path} is lost ({self.lost}; this process had missed "
                                f"{EXPIRE_AFTER} heartbeats); it stops and leaves the run to the new holder")
            self._write(self.path.with_name(f".{self.path.name}.{self.token}.tmp"), replace=True)

    def on_epoch_end(self, epoch: int, metrics: dict, state) -> None:
        """Epoch hook: refresh the claim, so that a run whose claim was taken over stops here."""
        self.refresh()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.refresh()
            except ClaimLost:
                return                         # the next epoch's refresh raises it in the run
            except OSError as err:             # e.g. NFS away for a moment: try again next interval
                print(f"claim {self.path}: heartbeat not written ({err})", file=sys.stderr)

    # --- the atomic steps -----------------------------------------------------------------------

    def _record(self) -> bytes:
        holder = Holder(self.owner, self.host, self.pid, time.time(), self.interval_s, self.token)
        return json.dumps(asdict(holder)).encode()

    def _write(self, path: Path, replace: bool) -> None:
        """Write our record to `path`: created with O_EXCL (FileExistsError when it exists), or
        written aside and renamed over it (`replace`)."""
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
        fd = os.open(path, flags, 0o644)
        try:
            os.write(fd, self._record())
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(path, self.path)

    def _create(self) -> bool:
        """The O_EXCL create: True when this process now holds the claim."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._write(self.path, replace=False)
        except FileExistsError:
            return False
        return True

    def _try_take(self) -> bool:
        if self._create():
            return True
        seen = read_holder(self.path)
        if seen is None:
            return self._create()
        holder, raw = seen
        if (holder.owner == self.owner or holder.expired()) and self._take_over(raw):
            self.replaced = holder
            return True
        return False

    def _take_over(self, stale: bytes) -> bool:
        """Replace the claim whose file holds `stale` by ours, if no other taker is at it."""
        guard = self.path.with_name(self.path.name + TAKEOVER_SUFFIX)
        try:
            os.close(os.open(guard, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            try:   # a taker that died mid-takeover leaves its guard: gone after a while
                if time.time() - guard.stat().st_mtime > max(10.0, EXPIRE_AFTER * self.interval_s):
                    guard.unlink(missing_ok=True)
            except FileNotFoundError:
                pass
            return False
        try:
            current = read_holder(self.path)
            if current is not None and current[1] != stale:
                return False                   # refreshed, or another taker's claim: not stale any more
            self.path.unlink(missing_ok=True)
            return self._create()
        finally:
            guard.unlink(missing_ok=True)
