"""Claims in a bucket (`s3://bucket/key`): the behaviours of tests/test_claim.py against a real S3 API.

The S3 API is moto's server (`moto.server.ThreadedMotoServer`, in this process, on 127.0.0.1);
boto3 finds it through AWS_ENDPOINT_URL, as it would find a cluster's storage.

What moto 5.2.6 enforces (probed before these tests were written): `PutObject` with
`If-None-Match: *` on an existing key is refused (412 PreconditionFailed); `PutObject` with
`If-Match` is refused for a stale ETag (412) and for a missing key (404 NoSuchKey); `DeleteObject`
with `If-Match` is refused for a stale ETag (412). So every conditional step of the S3 backend is
checked by the server, and each test below fails if the claim drops its condition.

One difference from S3: moto checks a condition and then writes, as two steps with no lock, while
its server answers requests on several threads; S3 evaluates the condition and the write as one
atomic step. The server here therefore answers one request at a time (`OneAtATime`), which is
S3's atomicity, so that racing takers test the claim's logic and not moto's. The racing takers
(threads) all read the stale claim before any of them tries to take it over (a barrier after
each one's first read), so that the race is run every time, not only when the scheduler allows.
"""
import json
import os
import socket
import threading
import time
import uuid

import boto3
import pytest
from moto.moto_server import threaded_moto_server
from moto.server import ThreadedMotoServer

from lottery_core.errors import LotteryError
from pipelines.claim import (
    EXPIRE_AFTER,
    Claim,
    ClaimBusy,
    ClaimLost,
    ClaimStorageError,
    _S3Store,
    claim_location,
    read_holder,
)

# a moto server, and a boto3 client per set of AWS_* variables (~0.4 s each): 10-13 s here, on a
# shared 2-core machine (about 5.5 s of CPU), more than the quick tier's share
pytestmark = pytest.mark.slow

INTERVAL_S = 0.5
DEADLINE_S = 60
HERE = f"pid {os.getpid()} on host {socket.gethostname()}"


class OneAtATime:
    """A WSGI app that lets the wrapped one answer one request at a time (see the docstring)."""

    def __init__(self, app):
        self.app, self.lock = app, threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            return list(self.app(environ, start_response))


@pytest.fixture(scope="module")
def endpoint():
    """The URL of a moto S3 server that lives as long as this module's tests."""
    app_class = threaded_moto_server.DomainDispatcherApplication
    with pytest.MonkeyPatch.context() as patch:   # the server builds its app while it starts
        patch.setattr(threaded_moto_server, "DomainDispatcherApplication",
                      lambda *args, **kwargs: OneAtATime(app_class(*args, **kwargs)))
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def no_config(tmp_path_factory):
    """A folder without AWS config files (the same for every test: claims share boto3 clients
    between tests whose AWS_* variables are the same)."""
    return tmp_path_factory.mktemp("no-aws-config")


@pytest.fixture
def aws_env(endpoint, no_config, monkeypatch):
    """boto3's settings pointing at the moto server, with fake credentials (and no user config)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(no_config / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(no_config / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return endpoint


@pytest.fixture(scope="module")
def moto_client(endpoint):
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1",
                                          aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def s3(aws_env, moto_client):
    """A boto3 client of the moto server (and boto3's settings pointing at it)."""
    return moto_client


@pytest.fixture
def uri(s3) -> str:
    """The claim URI of one identity in a fresh bucket."""
    bucket = f"claims-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    return claim_location(f"s3://{bucket}/sweeps/one/", "abc123")


def split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def put_record(s3, uri: str, age_s: float = 60, token: str = "old", owner: str = "dead") -> str:
    """Write a claim record of another process (heartbeat `age_s` ago) unconditionally; its ETag."""
    bucket, key = split(uri)
    raw = json.dumps({"owner": owner, "host": "elsewhere", "pid": 1, "token": token,
                      "heartbeat": time.time() - age_s, "interval_s": INTERVAL_S}).encode()
    return s3.put_object(Bucket=bucket, Key=key, Body=raw)["ETag"]


def token(uri: str) -> str | None:
    """The token of the claim at `uri`, None when there is none."""
    seen = read_holder(uri)
    return None if seen is None else seen[0].token


def await_true(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_claim_location_names_the_claim_under_a_path_or_a_bucket(tmp_path):
    assert claim_location("s3://bucket/sweeps/one//", "abc") == "s3://bucket/sweeps/one/claims/abc.claim"
    assert claim_location("s3://bucket", "abc") == "s3://bucket/claims/abc.claim"
    assert claim_location(f"{tmp_path}/", "abc") == str(tmp_path / "claims" / "abc.claim")
    with pytest.raises(LotteryError, match="without '/'"):
        claim_location("s3://bucket", "a/b")
    with pytest.raises(LotteryError, match="give a bucket as s3://BUCKET"):
        claim_location("s3:///", "abc")
    with pytest.raises(LotteryError, match=r"^claim s3://bucket: give an S3 claim as s3://BUCKET/KEY$"):
        Claim("s3://bucket")


def test_a_claim_is_created_once_and_a_second_claimant_is_refused(s3, uri):
    first = Claim(uri, interval_s=60).acquire()
    assert first.label == "abc123.claim" and first.path == uri
    with pytest.raises(ClaimBusy, match=rf"^abc123.claim is claimed by {HERE}, last heartbeat ") as busy:
        Claim(uri, interval_s=60).acquire()
    assert busy.value.holder.token == first.token
    assert token(uri) == first.token          # the refused claimant wrote nothing
    first.release()
    assert read_holder(uri) is None
    with Claim(uri, interval_s=60) as again:                 # free again
        assert token(uri) == again.token
    assert read_holder(uri) is None


def test_a_holder_refreshes_its_claim_by_compare_and_set(s3, uri):
    holder = Claim(uri, interval_s=60).acquire()
    seen = [read_holder(uri)[1]]
    for epoch in range(3):                                   # each refresh names the ETag of the last
        holder.on_epoch_end(epoch, {}, None)
        seen.append(read_holder(uri)[1])
        assert json.loads(seen[-1])["token"] == holder.token
    assert len(set(seen)) == len(seen)
    holder.release()

    beating = Claim(uri, interval_s=0.05).acquire()          # and the heartbeat thread does too
    first = read_holder(uri)[1]
    await_true(lambda: read_holder(uri)[1] != first, "the heartbeat thread did not refresh the claim")
    beating.refresh()
    beating.release()
    assert read_holder(uri) is None


def test_the_same_owner_takes_its_claim_over_at_once_and_the_old_holder_stops(s3, uri):
    old = Claim(uri, owner="ray-trial:sweep:t_00001", interval_s=60).acquire()
    with pytest.raises(ClaimBusy, match=rf"is claimed by {HERE}"):
        Claim(uri, owner="ray-trial:sweep:t_00002", interval_s=60).acquire()
    retry = Claim(uri, owner="ray-trial:sweep:t_00001", interval_s=60).acquire()
    assert retry.replaced.token == old.token and not retry.replaced.expired()
    assert token(uri) == retry.token
    with pytest.raises(ClaimLost, match=rf"is lost \(it was taken over by {HERE}"):
        old.on_epoch_end(0, {}, None)
    old.release()                                            # not ours any more: left alone
    assert token(uri) == retry.token
    retry.release()
    assert read_holder(uri) is None


def test_an_expired_claim_is_taken_over_and_its_holder_stops(s3, uri):
    hung = Claim(uri, interval_s=0.05).acquire()
    with pytest.raises(ClaimBusy):
        Claim(uri, interval_s=0.05).acquire()                # alive: its heartbeats go on
    hung._stop.set()                                         # it hangs: no more heartbeats
    hung._thread.join()
    await_true(lambda: read_holder(uri)[0].expired(), "the claim did not expire")
    taker = Claim(uri, interval_s=60).acquire()
    assert taker.replaced.token == hung.token and taker.replaced.expired()
    assert token(uri) == taker.token
    with pytest.raises(ClaimLost, match="taken over by pid"):
        hung.refresh()                                       # it wakes up: the claim is gone
    hung.release()
    assert token(uri) == taker.token
    taker.release()

    put_record(s3, uri, age_s=EXPIRE_AFTER * INTERVAL_S + 60)   # a dead process's record
    reopened = Claim(uri, interval_s=INTERVAL_S).acquire()
    assert reopened.replaced.owner == "dead" and token(uri) == reopened.token
    reopened.release()


def test_a_claim_refreshed_after_it_was_judged_stale_is_kept(s3, uri):
    judged = put_record(s3, uri)
    put_record(s3, uri, age_s=0)                             # its holder woke up and wrote a heartbeat
    refreshed = read_holder(uri)[1]
    assert not Claim(uri, interval_s=INTERVAL_S)._take_over(judged)
    assert read_holder(uri)[1] == refreshed


def test_a_removed_claim_is_lost(s3, uri):
    holder = Claim(uri, interval_s=60).acquire()
    s3.delete_object(Bucket=split(uri)[0], Key=split(uri)[1])
    with pytest.raises(ClaimLost, match=r"is lost \(it was removed;"):
        holder.refresh()
    holder.release()
    assert read_holder(uri) is None


@pytest.mark.parametrize("round_", range(2))
def test_a_stale_claim_raced_by_many_takers_has_one_winner(s3, uri, round_):
    put_record(s3, uri)
    takers = 6
    barrier, local = threading.Barrier(takers, timeout=DEADLINE_S), threading.local()
    read = _S3Store.read

    def read_then_wait(store):        # every taker has judged the claim stale before any takes it
        seen = read(store)
        if not getattr(local, "waited", False):
            local.waited = True
            barrier.wait()
        return seen

    answers: dict[int, object] = {}

    def take(i: int) -> None:
        try:
            answers[i] = Claim(uri, owner=f"taker-{i}", interval_s=30).acquire()
        except Exception as err:   # noqa: BLE001 - ClaimBusy is the expected loss; others fail below
            answers[i] = err

    threads = [threading.Thread(target=take, args=(i,)) for i in range(takers)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_S3Store, "read", read_then_wait)
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=DEADLINE_S)
    winners = [a for a in answers.values() if isinstance(a, Claim)]
    losers = [a for a in answers.values() if isinstance(a, ClaimBusy)]
    assert len(winners) == 1 and len(losers) == takers - 1, answers
    (winner,) = winners
    assert winner.replaced.owner == "dead" and token(uri) == winner.token
    assert all(loser.holder.token == winner.token for loser in losers)
    winner.release()
    assert read_holder(uri) is None


def test_release_removes_only_our_own_claim(s3, uri):
    holder = Claim(uri, interval_s=60).acquire()
    holder._stop.set()
    put_record(s3, uri, age_s=0, token="theirs")              # taken over behind its back
    holder.release()
    assert token(uri) == "theirs"

    racing = Claim(uri, owner="dead", interval_s=60).acquire()   # a retry: takes "theirs" over
    read = _S3Store.read

    def read_then_taken_over(store):   # taken over between release's read and its delete
        seen = read(store)
        put_record(s3, uri, age_s=0, token="newer")
        return seen

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_S3Store, "read", read_then_taken_over)
        racing.release()
    assert token(uri) == "newer"


def test_a_missing_bucket_is_one_line(aws_env):
    uri = "s3://no-such-claims-bucket/sweeps/one/claims/abc.claim"
    expected = (rf"^claim {uri}: there is no bucket 'no-such-claims-bucket' at {aws_env}: create it, or set "
                r"AWS_ENDPOINT_URL_S3 \(or AWS_ENDPOINT_URL\) to the storage that has it$")
    with pytest.raises(ClaimStorageError, match=expected):
        Claim(uri, interval_s=INTERVAL_S).acquire()
    with pytest.raises(LotteryError, match=expected):
        read_holder(uri)


def test_no_credentials_or_no_endpoint_is_one_line(aws_env, monkeypatch):
    uri = "s3://claims/one.claim"
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ClaimStorageError, match=rf"^claim {uri}: no S3 credentials found: set AWS_ACCESS_KEY_ID "
                                                r"and AWS_SECRET_ACCESS_KEY \(or AWS_PROFILE\)$"):
        Claim(uri, interval_s=INTERVAL_S).acquire()

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{unused.getsockname()[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", nowhere)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(ClaimStorageError) as unreachable:
        Claim(uri, interval_s=INTERVAL_S).acquire()
    message = str(unreachable.value)
    assert message.startswith(f"claim {uri}: the S3 endpoint {nowhere} cannot be reached (")
    assert message.endswith("set AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL) to the storage's address")
    assert "\n" not in message
