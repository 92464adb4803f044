"""One claim per run identity: at most one live process trains a run, across processes and nodes.

    with Claim(layout.claim_file(checkpoints), owner="ray-trial:sweep:abc_00001").acquire(wait=True):
        ...   # train; the claim is refreshed in the background and at every epoch

MLflow has no compare-and-set, so the claim lives in the sweep's storage: a file system path
(local disk, NFS) or a bucket (`s3://bucket/key`; `claim_location(root, identity)` names it under a
storage root). The claim is a record, JSON {owner, host, pid, heartbeat (unix time, s),
interval_s, token}. The holder rewrites the heartbeat every `interval_s` seconds from a background
thread and at every epoch (`refresh`). A claim whose heartbeat is older than `EXPIRE_AFTER` of its
own intervals is expired: its holder died or hangs, and anyone may take it over. A taker whose
`owner` equals the holder's (a Ray retry or restore of the same trial: the owner is the trial id)
takes it over at once, without waiting for expiry. The heartbeat is read against the reader's
clock: the nodes' clocks must agree to well within an interval (NTP). A holder whose claim was
taken over notices at its next refresh (`ClaimLost`) and stops without touching the run.

The claim logic (`Claim`) is one; two small storage backends do its steps:

- a path (local disk, NFS v3 and later), `_FileStore`: the claim file is created with
  `O_CREAT | O_EXCL`, which is atomic there (the Linux NFS client sends an exclusive CREATE to the
  server). Every step that reads the claim and then changes it (a refresh, a takeover, a release)
  runs while holding the guard `<claim>.takeover`, itself made with O_EXCL, so those steps take
  turns: a process that finds the guard held waits the few file operations until it is gone. A
  refresh checks that the file still holds our token and renames a new record over it; a takeover
  removes the claim only when the file still holds exactly the bytes it judged stale (a holder that
  woke up and refreshed meanwhile keeps it) and then creates its own with O_EXCL; a release removes
  the file if it holds our token. A guard older than `GUARD_EXPIRE_S` was left by a process that
  died holding it and is removed; only that rare clean-up is not exclusive (two processes that
  both judged one guard dead may both go on).
- an `s3://bucket/key` URI, `_S3Store` (boto3; any S3 API with conditional writes: AWS S3, MinIO,
  ...): creating is `PutObject` with `If-None-Match: *` (412 PreconditionFailed, or 409
  ConditionalRequestConflict, when the key exists). A refresh is `PutObject` with `If-Match: <the
  ETag we last wrote>`, a compare-and-set: it fails once anyone else wrote the key (`ClaimLost`).
  Taking over is `PutObject` with `If-Match: <the ETag of the stale record we read>`: atomic, no
  guard object. Release reads the claim and, when it holds our token, deletes it with `If-Match:
  <its ETag>`, so that a claim taken over in between stays. A server that ignored If-Match on
  DeleteObject (older S3-compatible stores; AWS S3 honours it) would leave the small race of a
  read-compare-delete: a claim taken over between our read and our delete would be deleted, and
  its new holder would stop at its next refresh (`ClaimLost`: at worst the run pauses, never two
  holders). A conditional write whose answer was lost, and that boto3 sent again, fails its
  condition against our own first write: a refresh takes a record holding our token as ours (a
  create, as a claim of our own owner, taken over at once). The endpoint and
  credentials are boto3's own settings (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL,
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE, AWS_DEFAULT_REGION, AWS_MAX_ATTEMPTS,
  ...); a failure other than a failed condition (no such bucket, no credentials, endpoint
  unreachable) is a one-line `ClaimStorageError` naming the URI and what to set.

Two takers that see one stale claim at once thus give one winner on either backend; the other
finds a live claim.
"""
import json
import os
import socket
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

from lottery_core.errors import LotteryError

EXPIRE_AFTER = 3                 # missed heartbeats after which a claim is expired
DEFAULT_INTERVAL_S = 30.0        # seconds between heartbeats
INTERVAL_ENV = "LOTTERY_CLAIM_INTERVAL_S"   # sets the interval (tests use a fraction of a second)
TAKEOVER_SUFFIX = ".takeover"     # the file-store guard: `<claim>.takeover`
GUARD_EXPIRE_S = 10.0            # seconds after which a guard is one whose holder died holding it
GUARD_POLL_S = 0.01              # seconds between looks at a held guard
S3_SCHEME = "s3://"


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


class ClaimStorageError(LotteryError):
    """The claim's storage cannot be used (an S3 bucket missing, no credentials, no endpoint)."""


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


def claim_location(root: str, identity: str) -> str:
    """The claim of `identity` under the storage root `root` (a path, or an `s3://bucket/prefix`
    URI): `<root>/claims/<identity>.claim`."""
    if not identity or "/" in identity or identity in (".", ".."):
        raise LotteryError(f"identity {identity!r}: a claim's identity is one non-empty name, without '/'")
    name, root = f"{identity}.claim", str(root)
    if root.startswith(S3_SCHEME):
        if not root[len(S3_SCHEME):].split("/")[0]:
            raise LotteryError(f"storage root {root!r}: give a bucket as s3://BUCKET or s3://BUCKET/PREFIX")
        return f"{root.rstrip('/')}/claims/{name}"
    return str(Path(root) / "claims" / name)


# --- storage ------------------------------------------------------------------------------------

class _Seen(NamedTuple):
    """A claim as read: its bytes, when it was last written (unix time, s), and its version (what a
    conditional write compares: the bytes for a file, the ETag for S3)."""

    raw: bytes
    mtime: float
    version: object


class _FileStore:
    """A claim file on a file system (local or NFS)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.name = self.path.name

    def read(self) -> _Seen | None:
        try:
            raw = self.path.read_bytes()
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return None
        return _Seen(raw, mtime, raw)

    def create(self, record: bytes) -> bytes | None:
        """The O_EXCL create: its version when this process now holds the claim, else None."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._write(self.path, record)
        except FileExistsError:
            return None
        return record

    def refresh(self, record: bytes, version: object, token: str) -> bytes | None:
        """Rename our new record over the claim if it still holds `token`; None when not."""
        aside = self.path.with_name(f".{self.name}.{token}.tmp")
        self._write(aside, record, exclusive=False)
        with self._guard():
            current = self.read()
            if current is None or _holder(current).token != token:
                aside.unlink(missing_ok=True)
                return None
            os.replace(aside, self.path)
        return record

    def take_over(self, record: bytes, stale: object) -> bytes | None:
        """Replace the claim whose file holds `stale` by ours; None when it holds anything else."""
        with self._guard():
            current = self.read()
            if current is not None and current.raw != stale:
                return None                    # refreshed, or another taker's claim: not stale any more
            self.path.unlink(missing_ok=True)
            return self.create(record)

    def release(self, version: object, token: str) -> None:
        with self._guard():
            current = self.read()
            if current is not None and _holder(current).token == token:
                self.path.unlink(missing_ok=True)

    @contextmanager
    def _guard(self):
        """Hold `<claim>.takeover` (made with O_EXCL) for the body, waiting while another process
        holds it; a guard older than `GUARD_EXPIRE_S` is removed (its holder died holding it)."""
        guard = self.path.with_name(self.name + TAKEOVER_SUFFIX)   # its folder exists: a claim was there
        while True:
            try:
                os.close(os.open(guard, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
                break
            except FileExistsError:
                try:
                    if time.time() - guard.stat().st_mtime > GUARD_EXPIRE_S:
                        guard.unlink(missing_ok=True)
                        continue
                except FileNotFoundError:
                    continue                   # gone between our create and our look: try again
                time.sleep(GUARD_POLL_S)
        try:
            yield
        finally:
            guard.unlink(missing_ok=True)

    def _write(self, path: Path, record: bytes, exclusive: bool = True) -> None:
        """Write `record` to the file `path`, made with O_EXCL (FileExistsError when it exists)
        unless not `exclusive`, and flushed to the disk."""
        flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
        fd = os.open(path, flags, 0o644)
        try:
            os.write(fd, record)
            os.fsync(fd)
        finally:
            os.close(fd)


class _Refused(Exception):
    """An S3 condition failed: the key exists (If-None-Match), or is not the version we name, or
    is gone (If-Match)."""


_CLIENTS: dict[tuple, object] = {}
_CLIENTS_LOCK = threading.Lock()


class _S3Store:
    """A claim object in an S3 bucket, written with conditional requests."""

    def __init__(self, uri: str):
        bucket, _, key = uri[len(S3_SCHEME):].partition("/")
        if not bucket or not key or key.endswith("/"):
            raise ClaimStorageError(f"claim {uri}: give an S3 claim as s3://BUCKET/KEY")
        self.uri, self.bucket, self.key = uri, bucket, key
        self.name = key.rsplit("/", 1)[-1]
        self._client = None

    @property
    def client(self):
        if self._client is None:
            self._client = self._shared_client()
        return self._client

    def _shared_client(self):
        """boto3's S3 client as boto3's settings now say (making one takes a good part of a second;
        a client is thread-safe): one per process and per set of AWS_* variables."""
        settings = (os.getpid(), tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))))
        with _CLIENTS_LOCK:
            if settings not in _CLIENTS:
                import boto3  # only claims in a bucket need it

                try:
                    _CLIENTS[settings] = boto3.session.Session().client("s3")
                except Exception as err:   # e.g. a malformed AWS_ENDPOINT_URL, an unknown AWS_PROFILE
                    raise self._error("client setup", err) from None
            return _CLIENTS[settings]

    def read(self) -> _Seen | None:
        try:
            answer = self._call("get_object")
        except _Refused:
            return None
        body = answer["Body"]
        try:
            raw = body.read()
        except Exception as err:
            raise self._error("get_object", err) from None
        finally:
            body.close()
        modified = answer.get("LastModified")
        return _Seen(raw, modified.timestamp() if modified is not None else time.time(), answer["ETag"])

    def create(self, record: bytes) -> str | None:
        try:
            return self._call("put_object", Body=record, IfNoneMatch="*")["ETag"]
        except _Refused:
            return None

    def refresh(self, record: bytes, version: object, token: str) -> str | None:
        try:
            return self._call("put_object", Body=record, IfMatch=version)["ETag"]
        except _Refused:
            return self._ours(token)

    def take_over(self, record: bytes, stale: object) -> str | None:
        try:
            return self._call("put_object", Body=record, IfMatch=stale)["ETag"]
        except _Refused:
            return None

    def release(self, version: object, token: str) -> None:
        current = self.read()
        if current is not None and _holder(current).token == token:
            try:
                self._call("delete_object", IfMatch=current.version)
            except _Refused:
                pass                           # taken over since we read it: not ours to delete

    def _ours(self, token: str) -> str | None:
        """The claim's ETag if it holds our `token` (our own write, whose answer was lost and that
        boto3 sent again), else None."""
        current = self.read()
        if current is not None and _holder(current).token == token:
            return current.version
        return None

    def _call(self, operation: str, **kwargs) -> dict:
        """`operation` on our key; `_Refused` when its condition failed (or there is no such key),
        `ClaimStorageError` for any other failure."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.client
        try:
            return getattr(client, operation)(Bucket=self.bucket, Key=self.key, **kwargs)
        except ClientError as err:
            error = err.response.get("Error", {})
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if (error.get("Code") in ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey")
                    or status == 412):
                raise _Refused() from None
            raise self._error(operation, err) from None
        except BotoCoreError as err:
            raise self._error(operation, err) from None

    def _error(self, operation: str, err: Exception) -> ClaimStorageError:
        """The one-line error of a failed S3 request: what went wrong and what to set."""
        from botocore import exceptions as bx

        endpoint = getattr(getattr(self._client, "meta", None), "endpoint_url", None) or "the default endpoint"
        where = f"claim {self.uri}"
        endpoint_vars = "AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL)"
        credential_vars = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
        if isinstance(err, bx.NoCredentialsError | bx.PartialCredentialsError):
            message = f"{where}: no S3 credentials found: set {credential_vars}"
        elif isinstance(err, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ReadTimeoutError):
            message = (f"{where}: the S3 endpoint {endpoint} cannot be reached ({err}): set {endpoint_vars} "
                       f"to the storage's address")
        elif isinstance(err, bx.ClientError):
            code = err.response.get("Error", {}).get("Code", "?")
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "NoSuchBucket":
                message = (f"{where}: there is no bucket {self.bucket!r} at {endpoint}: create it, or set "
                           f"{endpoint_vars} to the storage that has it")
            elif status == 403 or code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                message = (f"{where}: S3 at {endpoint} refused access ({code}): set {credential_vars} to "
                           f"credentials that may read and write the bucket {self.bucket!r}")
            elif status == 501 or code == "NotImplemented":
                message = (f"{where}: the S3 endpoint {endpoint} does not support conditional requests "
                           f"({operation} with If-Match / If-None-Match), which claims need")
            else:
                text = err.response.get("Error", {}).get("Message", "")
                message = f"{where}: S3 {operation} failed at {endpoint}: {code} {text}".rstrip()
        else:
            message = f"{where}: S3 {operation} failed at {endpoint}: {type(err).__name__}: {err}"
        return ClaimStorageError(" ".join(message.split()))


def _store(location: str | os.PathLike) -> _FileStore | _S3Store:
    """The backend of a claim at `location`: an `s3://` URI, else a file system path."""
    if isinstance(location, str) and location.startswith(S3_SCHEME):
        return _S3Store(location)
    return _FileStore(location)


def _holder(seen: _Seen) -> Holder:
    """The holder a claim names. A record that is not (yet) whole (its creator is between the
    O_EXCL create and the write, or died there) reads as an anonymous holder whose heartbeat is
    the claim's mtime."""
    try:
        record = json.loads(seen.raw)
        return Holder(str(record["owner"]), str(record["host"]), int(record["pid"]), float(record["heartbeat"]),
                      float(record["interval_s"]), str(record["token"]))
    except (ValueError, KeyError, TypeError):
        return Holder("?", "?", 0, seen.mtime, DEFAULT_INTERVAL_S, "")


def read_holder(path: str | os.PathLike) -> tuple[Holder, bytes] | None:
    """(holder, raw bytes) of the claim at `path` (a path or an `s3://` URI), or None when there
    is none.

    A file that is not (yet) a whole record (its creator is between the O_EXCL create and the
    write, or died there) reads as an anonymous holder whose heartbeat is the file's mtime."""
    seen = _store(path).read()
    return None if seen is None else (_holder(seen), seen.raw)


class Claim:
    """A claim on one run, held by this process from `acquire` until `release` (or the `with` exit).

    `path`: the claim file, or an `s3://bucket/key` URI (a str; `.path` is then that str, else a
    Path). `owner`: who may take the claim
    over at once (a Ray trial passes its trial id, so that its retries do); default: unique to this
    Claim object. `interval_s`: seconds between heartbeats (default `interval_from_env()`).
    `label`: what is claimed, in messages (default the claim's name).
    """

    def __init__(self, path: str | os.PathLike, owner: str | None = None, interval_s: float | None = None,
                 label: str | None = None):
        self.interval_s = interval_from_env() if interval_s is None else float(interval_s)
        self._store = _store(path)
        self.path = self._store.uri if isinstance(self._store, _S3Store) else self._store.path
        self.label = label or self._store.name
        self.token = uuid.uuid4().hex
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.owner = owner or f"process:{self.host}:{self.pid}:{self.token[:8]}"
        self.held = False
        self.lost: str | None = None          # why the claim was lost, once it was
        self.replaced: Holder | None = None   # the expired (or same-owner) claim this one took over
        self._version: object = None          # what our last write left (bytes, or S3's ETag)
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
            seen = self._store.read()
            if seen is None:
                continue                       # released meanwhile: try again at once
            holder = _holder(seen)
            if self._may_take(holder):
                continue                       # changed between our look and our takeover: look again
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
        self._thread = threading.Thread(target=self._beat, name=f"claim-heartbeat-{self._store.name}", daemon=True)
        self._thread.start()
        return self

    def release(self) -> None:
        """Stop the heartbeat and remove the claim, if it is still ours."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if self.held:
            self.held = False
            self._store.release(self._version, self.token)

    def __enter__(self) -> "Claim":
        if not self.held:
            self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    # --- while held -----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Write a new heartbeat; `ClaimLost` when the claim is no longer ours (taken over)."""
        if not self.held:
            raise ClaimLost(f"claim {self.path} is not held by this process")
        with self._write_lock:
            if self.lost is None:
                version = self._store.refresh(self._record(), self._version, self.token)
                if version is not None:
                    self._version = version
                    return
                current = self._store.read()
                self.lost = ("it was removed" if current is None
                             else f"it was taken over by {_holder(current).describe()}")
            raise ClaimLost(f"this process's claim {self.path} is lost ({self.lost}; this process had missed "
                            f"{EXPIRE_AFTER} heartbeats); it stops and leaves the run to the new holder")

    def on_epoch_end(self, epoch: int, metrics: dict, state) -> None:
        """Epoch hook: refresh the claim, so that a run whose claim was taken over stops here."""
        self.refresh()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.refresh()
            except ClaimLost:
                return                         # the next epoch's refresh raises it in the run
            except (OSError, ClaimStorageError) as err:   # e.g. NFS or S3 away for a moment: try again
                print(f"claim {self.path}: heartbeat not written ({err})", file=sys.stderr)

    # --- the atomic steps -----------------------------------------------------------------------

    def _record(self) -> bytes:
        holder = Holder(self.owner, self.host, self.pid, time.time(), self.interval_s, self.token)
        return json.dumps(asdict(holder)).encode()

    def _create(self) -> bool:
        """The exclusive create: True when this process now holds the claim."""
        version = self._store.create(self._record())
        if version is None:
            return False
        self._version = version
        return True

    def _try_take(self) -> bool:
        if self._create():
            return True
        seen = self._store.read()
        if seen is None:
            return self._create()
        holder = _holder(seen)
        if self._may_take(holder) and self._take_over(seen.version):
            self.replaced = holder
            return True
        return False

    def _may_take(self, holder: Holder) -> bool:
        """Whether this claimant may take `holder`'s claim over now: it is ours (same owner) or expired."""
        return holder.owner == self.owner or holder.expired()

    def _take_over(self, stale: object) -> bool:
        """Replace the claim whose version is `stale` (a file's bytes, an S3 ETag) by ours, if it
        is still that one (and, on a file system, no other taker is at it)."""
        version = self._store.take_over(self._record(), stale)
        if version is None:
            return False
        self._version = version
        return True
