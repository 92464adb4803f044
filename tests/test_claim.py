"""One claim per identity (issue 11): real processes race for a run's claim file.

The claimants are fresh processes: `tests/claim_child.py` (a run with a pausing epoch hook, a bare
claim holder, a taker) and the `lottery run` command. The heartbeat interval is 0.5 s here
($LOTTERY_CLAIM_INTERVAL_S), so a claim expires 1.5 s after its holder's last heartbeat.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from lottery_core.errors import LotteryError
from lottery_core.filelock import exclusive_lock
from pipelines import layout
from pipelines.claim import (
    EXPIRE_AFTER,
    Claim,
    ClaimBusy,
    ClaimLost,
    interval_from_env,
    read_holder,
)
from pipelines.config import load_config
from pipelines.context import with_fingerprint
from pipelines.tracking import tracking_uri

ROOT = Path(__file__).resolve().parents[1]
CHILD = Path(__file__).with_name("claim_child.py")
INTERVAL_S = 0.5
ENV = {**os.environ, "LOTTERY_CLAIM_INTERVAL_S": str(INTERVAL_S), "PYTHONUNBUFFERED": "1",
       "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
ENV.pop("MLFLOW_TRACKING_URI", None)
DEADLINE_S = 240


def config_dict(data: Path, results: Path, epochs: int) -> dict:
    return {"pipeline": "dense", "model": {"name": "resnet20"}, "data": {"name": "folder", "root": str(data)},
            "training": {"epochs": epochs, "batch_size": 16, "lr": 0.05, "keep_epochs": [0]},
            "evaluation": {"corruptions": [], "attacks": [], "cka_images": 0},
            "tracking": {"results_dir": str(results), "experiment": "claims"}}


def setup_run(tmp_path: Path, data: Path, epochs: int):
    """(config dict, its JSON file, its YAML file, its claim file) of a tiny dense run."""
    config = config_dict(data, tmp_path / "runs", epochs)
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    cfg = with_fingerprint(load_config(config))
    claim = layout.claim_file(layout.checkpoint_dir(cfg.results_path(), cfg.identity()))
    return cfg, tmp_path / "config.json", tmp_path / "config.yaml", claim


def child(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(CHILD), *args], env=ENV, cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def lottery_run(config_yaml: Path, *extra: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run", str(config_yaml), *extra], env=ENV,
                            cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def await_file(path: Path, process: subprocess.Popen) -> None:
    """Wait until `path` exists; fail early with the process's output if it died first."""
    deadline = time.monotonic() + DEADLINE_S
    while not path.exists():
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"the claimant exited with {process.returncode} first: {out[-1500:]} {err[-3000:]}")
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def await_stderr_line(process: subprocess.Popen, text: str) -> str:
    """Read `process`'s stderr until a line holding `text` (the process says it is waiting)."""
    seen = []
    for line in process.stderr:
        seen.append(line)
        if text in line:
            return line
    pytest.fail(f"the process ended without saying {text!r}: {''.join(seen)[-3000:]}")


def runs_of(cfg) -> list:
    client = MlflowClient(tracking_uri(cfg))
    return client.search_runs([client.get_experiment_by_name("claims").experiment_id])


def steps(cfg, run_id: str, key: str) -> list[tuple[int, int]]:
    """(epoch, timestamp in ms) of every value of metric `key`, in epoch order."""
    return sorted((m.step, m.timestamp) for m in MlflowClient(tracking_uri(cfg)).get_metric_history(run_id, key))


@pytest.mark.slow
def test_a_second_process_is_refused_or_waits_and_one_run_exists(tmp_path, tiny_folder):
    cfg, config_json, config_yaml, claim = setup_run(tmp_path, tiny_folder, epochs=2)
    marker, go = tmp_path / "paused", tmp_path / "go"
    first = child("run", str(config_json), str(marker), "0", str(go))
    try:
        await_file(marker, first)                         # epoch 0 done, the claim held
        refused = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", str(config_yaml)], env=ENV,
                                 cwd=ROOT, capture_output=True, text=True, timeout=DEADLINE_S)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 2 and len(lines) == 1, refused.stderr[-3000:]
        assert lines[0].startswith(f"lottery run: error: identity {cfg.identity()} is claimed by pid {first.pid} "
                                   f"on host {socket.gethostname()}, last heartbeat "), lines[0]
        assert "--wait" in lines[0] and "Traceback" not in refused.stderr

        waiter = lottery_run(config_yaml, "--wait")
        announced = await_stderr_line(waiter, "waiting until it finishes")
        assert f"pid {first.pid}" in announced
        # the holder is paused in its epoch hook but alive: its heartbeats go on and keep the claim
        # through more than EXPIRE_AFTER intervals
        waited_from = read_holder(claim)[0].heartbeat
        while (holder := read_holder(claim)[0]).heartbeat < waited_from + (EXPIRE_AFTER + 1) * INTERVAL_S:
            time.sleep(0.05)
        assert holder.pid == first.pid and waiter.poll() is None
        go.touch()
        out, err = first.communicate(timeout=DEADLINE_S)
        assert first.returncode == 0, err[-3000:]
        status, run_id = out.split()[-2:]
        assert status == "finished"
        waited_out, waited_err = waiter.communicate(timeout=DEADLINE_S)
        assert waiter.returncode == 0, waited_err[-3000:]
        assert f"already finished: run {run_id}" in waited_out
    finally:
        for process in (first, locals().get("waiter")):
            if process is not None and process.poll() is None:
                process.kill()
    (only,) = runs_of(cfg)
    assert only.info.run_id == run_id and only.info.status == "FINISHED"
    assert not claim.exists()                             # released on finish


@pytest.mark.slow
def test_a_sigkilled_claimant_is_taken_over_after_three_missed_heartbeats(tmp_path, tiny_folder):
    cfg, config_json, config_yaml, claim = setup_run(tmp_path, tiny_folder, epochs=3)
    marker = tmp_path / "paused"
    first = child("run", str(config_json), str(marker), "1")   # pauses after epoch 1 until killed
    waiter = None
    try:
        await_file(marker, first)
        (started,) = runs_of(cfg)
        assert started.info.status == "RUNNING"
        waiter = lottery_run(config_yaml, "--wait")
        await_stderr_line(waiter, "waiting until it finishes")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        dead = read_holder(claim)[0]                          # the dead holder's file stays
        assert dead.pid == first.pid
        took_over = await_stderr_line(waiter, f"took over the claim of pid {first.pid}")
        taken_at = time.time()                                # (just after the waiter said so)
        assert taken_at >= dead.heartbeat + EXPIRE_AFTER * INTERVAL_S
        age = float(re.search(r"\(([0-9.]+) s ago\) \(expired\)$", took_over.strip()).group(1))
        assert age >= EXPIRE_AFTER * INTERVAL_S
        out, err = waiter.communicate(timeout=DEADLINE_S)
        assert waiter.returncode == 0, err[-3000:]
    finally:
        for process in (first, waiter):
            if process is not None and process.poll() is None:
                process.kill()
    (only,) = runs_of(cfg)                                    # the abandoned run, reopened
    assert only.info.run_id == started.info.run_id and only.info.status == "FINISHED"
    assert only.data.tags["resumed"] == "true"
    for key in ("train_loss", "epoch_test_acc"):
        assert [step for step, _ in steps(cfg, only.info.run_id, key)] == [0, 1, 2]   # every epoch once
    assert steps(cfg, only.info.run_id, "train_loss")[2][1] >= taken_at * 1000 - 1000   # epoch 2: the taker's
    assert not claim.exists()


def test_the_same_owner_takes_its_claim_over_at_once_and_the_old_holder_stops(tmp_path):
    path, marker = tmp_path / "x.claim", tmp_path / "held"
    holder = child("hold", str(path), "ray-trial:sweep:t_00001", str(marker))
    try:
        await_file(marker, holder)
        with pytest.raises(ClaimBusy, match=rf"is claimed by pid {holder.pid} on host "):
            Claim(path, owner="ray-trial:sweep:t_00002", interval_s=INTERVAL_S).acquire()
        assert not read_holder(path)[0].expired()             # a live holder: no expiry to wait for
        retry = Claim(path, owner="ray-trial:sweep:t_00001", interval_s=INTERVAL_S).acquire()
        assert read_holder(path)[0].token == retry.token
        out, _ = holder.communicate(timeout=60)
        assert holder.returncode == 3 and f"taken over by pid {os.getpid()}" in out, out
        retry.release()
        assert not path.exists()
    finally:
        if holder.poll() is None:
            holder.kill()


@pytest.mark.parametrize("round_", range(3))
def test_a_stale_claim_raced_by_many_takers_has_one_winner(tmp_path, round_):
    path, go, done = tmp_path / "x.claim", tmp_path / "go", tmp_path / "done"
    path.write_text(json.dumps({"owner": "dead", "host": "elsewhere", "pid": 1, "token": "old",
                                "heartbeat": time.time() - 60, "interval_s": INTERVAL_S}))
    takers = [child("take", str(path), f"taker-{i}", str(go), str(done)) for i in range(6)]
    try:
        go.touch()
        answers = [taker.stdout.readline().strip() for taker in takers]
        assert sorted(answers) == ["busy"] * 5 + ["won"], [t.stderr.read()[-2000:] for t in takers]
        winner = takers[answers.index("won")]
        assert read_holder(path)[0].pid == winner.pid
        done.touch()
        for taker in takers:
            assert taker.wait(timeout=60) == 0
    finally:
        for taker in takers:
            if taker.poll() is None:
                taker.kill()
    assert not path.exists()


# --- the atomic steps, in one process ------------------------------------------------------------

def stale_record(path: Path, age_s: float = 60) -> bytes:
    raw = json.dumps({"owner": "dead", "host": "elsewhere", "pid": 1, "token": "old",
                      "heartbeat": time.time() - age_s, "interval_s": INTERVAL_S}).encode()
    path.write_bytes(raw)
    return raw


def test_a_claim_refreshed_after_it_was_judged_stale_is_kept(tmp_path):
    path = tmp_path / "x.claim"
    judged = stale_record(path)
    refreshed = stale_record(path, age_s=0)                   # its holder woke up and wrote a heartbeat
    assert not Claim(path, interval_s=INTERVAL_S)._take_over(judged)
    assert path.read_bytes() == refreshed


def test_a_taker_waits_while_the_guard_is_held_and_removes_a_dead_ones(tmp_path):
    path = tmp_path / "x.claim"
    stale = stale_record(path)
    guard = tmp_path / "x.claim.takeover"
    guard.touch()                                             # another process is refreshing or taking over
    taker = Claim(path, interval_s=INTERVAL_S)
    waiting = threading.Thread(target=taker.acquire)
    waiting.start()
    waiting.join(timeout=0.5)
    assert path.read_bytes() == stale and not taker.held      # nothing changes while the guard is held
    guard.unlink()                                            # ... until that process is done
    waiting.join(timeout=60)
    assert taker.held and read_holder(path)[0].token == taker.token and not guard.exists()
    taker.release()
    stale_record(path)
    guard.touch()
    os.utime(guard, (time.time() - 3600, time.time() - 3600))  # its holder died holding it
    taker = Claim(path, interval_s=INTERVAL_S).acquire()
    assert read_holder(path)[0].token == taker.token and not guard.exists()
    taker.release()


def test_a_takeover_that_falls_inside_a_refresh_waits_for_it_and_keeps_the_claim(tmp_path, monkeypatch):
    """The refresh checks its token, then renames its record over the claim. A same-owner takeover
    started between the two waits for the refresh (the guard), then takes over the refreshed
    claim; without the guard the refresh would overwrite the taker's claim."""
    path = tmp_path / "x.claim"
    old = Claim(path, interval_s=60).acquire()
    retry = Claim(path, owner=old.owner, interval_s=60)
    taker = threading.Thread(target=retry.acquire)
    look = old._store.read

    def look_then_race():
        seen = look()
        if not taker.is_alive() and not retry.held:
            taker.start()
            taker.join(timeout=1.0)                           # the taker runs before the rename, if it can
        return seen

    monkeypatch.setattr(old._store, "read", look_then_race)
    old.refresh()
    taker.join(timeout=60)
    assert retry.held and read_holder(path)[0].token == retry.token
    with pytest.raises(ClaimLost, match="taken over by pid"):
        old.refresh()
    retry.release()
    assert not path.exists()


def test_a_holder_whose_claim_was_taken_over_stops_and_leaves_the_new_file(tmp_path):
    path = tmp_path / "x.claim"
    old = Claim(path, interval_s=60).acquire()
    new = Claim(path, owner=old.owner, interval_s=60).acquire()   # a retry of the same owner
    with pytest.raises(ClaimLost, match="taken over by pid"):
        old.on_epoch_end(0, {}, None)
    old.release()                                                  # not ours any more: left alone
    assert read_holder(path)[0].token == new.token
    new.release()
    assert not path.exists()


def test_an_unwritten_claim_file_counts_from_its_mtime(tmp_path):
    path = tmp_path / "x.claim"
    path.touch()                                   # its creator is between O_EXCL and the write
    with pytest.raises(ClaimBusy):
        Claim(path, interval_s=INTERVAL_S).acquire()
    os.utime(path, (time.time() - 3600, time.time() - 3600))   # ... or died there
    Claim(path, interval_s=INTERVAL_S).acquire().release()
    assert not path.exists()


def test_a_bad_heartbeat_interval_is_one_line(monkeypatch):
    monkeypatch.setenv("LOTTERY_CLAIM_INTERVAL_S", "0")
    with pytest.raises(LotteryError, match=r"^LOTTERY_CLAIM_INTERVAL_S='0': give the claim's heartbeat interval "
                                           r"in seconds, a number > 0 \(default 30\)$"):
        interval_from_env()
    monkeypatch.setenv("LOTTERY_CLAIM_INTERVAL_S", "2.5")
    assert interval_from_env() == 2.5


def test_the_file_lock_excludes_another_process_and_records_its_note(tmp_path):
    path = tmp_path / "sub" / "x.lock"
    probe = ("import fcntl, sys\nwith open(sys.argv[1], 'a') as f:\n    try:\n"
             "        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n        print('free')\n"
             "    except BlockingIOError:\n        print('held')\n")
    with exclusive_lock(path, note="/data/tree"):
        assert path.read_text() == "/data/tree\n"
        held = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=60)
        assert held.stdout.strip() == "held"
    free = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=60)
    assert free.stdout.strip() == "free"
