"""The drills, run in order on the cluster of `cluster.Cluster`. Each adds its figures with
`ctx.figure` and raises `DrillFailed` (one line) when a check fails; `run_drill` prints its table
and wall time either way. Every drill has its own MLflow experiment (a run found finished under
its identity is never trained again, so drills must not share identities) and its own sweep name.
"""
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml

from scripts.cluster_drill import checks
from scripts.cluster_drill import commands as cmd
from scripts.cluster_drill.cluster import Cluster, kill_tree

SHORT = 2        # epochs of the drills that need no kill window
LONG = 4         # epochs of the node- and driver-loss drills (killed after epoch 1)
LOAD_EPOCHS = 3  # and of the load drill, on twice the images: its four trials must overlap
TRAIN_IMAGES = 256
TOKEN_REFUSAL = "requires token authentication"
NODES_SCRIPT = """
import json, sys, ray
ray.init(address=sys.argv[1], log_to_driver=False)
print("NODES " + json.dumps([{"id": n["NodeID"], "alive": n["Alive"], "cpu": n["Resources"].get("CPU", 0),
                              "gpu": n["Resources"].get("GPU", 0)} for n in ray.nodes()]))
"""


class DrillFailed(Exception):
    """A check of a drill failed: one line saying what was seen."""


def expect(condition, message: str) -> None:
    if not condition:
        raise DrillFailed(message)


@dataclass
class Result:
    """A finished `lottery` process."""

    rc: int
    out: str
    err: str
    seconds: float
    log: Path

    def tail(self, n: int = 3) -> str:
        lines = [line for line in (self.out + "\n" + self.err).splitlines() if line.strip()]
        return " | ".join(lines[-n:])


@dataclass
class Context:
    """What every drill works with: the cluster, clients for MLflow and S3, `lottery` runners."""

    cluster: Cluster
    rows: list = field(default_factory=list)

    def figure(self, name: str, value) -> None:
        self.rows.append((name, value))

    @cached_property
    def mlflow(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(self.cluster.tracking_uri)

    @cached_property
    def s3(self):
        return self.cluster.s3_client()

    @property
    def bucket(self) -> str:
        return self.cluster.s3.bucket

    @property
    def storage(self) -> str:
        return self.cluster.s3.uri("sweeps")

    @property
    def address(self) -> str:
        return self.cluster.ray_address

    def logs(self) -> Path:
        folder = self.cluster.workdir / "logs"
        folder.mkdir(exist_ok=True)
        return folder

    def sweep_file(self, name: str, experiment: str, *, grid=None, optuna=None, epochs: int = SHORT,
                   device: str = "cpu", pipeline: str | None = None, seed: int | None = None,
                   train_size: int = TRAIN_IMAGES, **resources) -> Path:
        base = cmd.base_config(results_dir=self.cluster.private / "results", tracking_uri=self.cluster.tracking_uri,
                               experiment=experiment, epochs=epochs, train_size=train_size, device=device)
        if pipeline:
            base["pipeline"] = pipeline
        if seed is not None:
            base["seed"] = seed
        path = self.cluster.workdir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cmd.sweep_spec(base, grid=grid, optuna=optuna, **resources)))
        return path

    def driver_env(self, token: bool = True, **extra) -> dict[str, str]:
        env = self.cluster.env("driver" if token else "client", token=token)
        env.update(extra)
        return env

    def start_lottery(self, args: list[str], log_name: str, env: dict | None = None) -> subprocess.Popen:
        log = self.logs() / f"{log_name}.log"
        return subprocess.Popen(cmd.lottery(*args), cwd=cmd.ROOT, env=env or self.driver_env(),
                                stdout=open(log, "ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)

    def lottery(self, args: list[str], log_name: str, env: dict | None = None, timeout: float = 900) -> Result:
        """Run `lottery ARGS` to its end in a session of its own (killed after `timeout`)."""
        log = self.logs() / f"{log_name}.log"
        started = time.time()
        process = subprocess.Popen(cmd.lottery(*args), cwd=cmd.ROOT, env=env or self.driver_env(),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_tree(process.pid)
            out, err = process.communicate()
            err += f"\n(killed by the drill after {timeout:.0f} s)"
        finally:
            kill_tree(process.pid)
        log.write_text(f"$ lottery {' '.join(args)}\n--- stdout\n{out}\n--- stderr\n{err}\n")
        return Result(process.returncode, out, err, time.time() - started, log)

    def ray_nodes(self) -> list[dict]:
        """Ray's view of the nodes, from a client with the token: id, alive, CPUs, GPUs."""
        done = subprocess.run([sys.executable, "-c", NODES_SCRIPT, self.address], env=self.driver_env(),
                              capture_output=True, text=True, timeout=180, start_new_session=True)
        line = next((x for x in done.stdout.splitlines() if x.startswith("NODES ")), None)
        if line is None:
            raise DrillFailed(f"cannot list Ray's nodes: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
        return json.loads(line.removeprefix("NODES "))

    def alive_nodes(self) -> list[dict]:
        return [n for n in self.ray_nodes() if n["alive"]]

    def trials(self, sweep: str, phase: int | None = None) -> dict[str, list[dict]]:
        """Ray Tune's results of a sweep's trials (of one phase, or of all): trial folder -> rows."""
        return checks.trial_rows(self.s3, self.bucket, f"sweeps/{sweep}/" + ("" if phase is None else f"phase{phase}/"))

    def runs(self, experiment: str, sweep: str) -> list:
        return checks.sweep_runs(self.mlflow, experiment, sweep)

    def running_epochs(self, experiment: str) -> list[tuple[str, int]]:
        """(run id, epochs logged) of every RUNNING run of `experiment`."""
        found = self.mlflow.get_experiment_by_name(experiment)
        if found is None:
            return []
        runs = self.mlflow.search_runs([found.experiment_id], "attributes.status = 'RUNNING'")
        return [(r.info.run_id, len(self.mlflow.get_metric_history(r.info.run_id, "train_loss")))
                for r in runs if r.data.tags.get("sweep_parent") != "true"]

    def node_with_trial(self) -> str | None:
        busy = [n.name for n in self.cluster.workers() if n.runs_trial()]
        return busy[0] if len(busy) == 1 else None


# --- the checks several drills share ---------------------------------------------------------


def check_runs(ctx: Context, experiment: str, sweep: str, epochs: int, trials: int) -> list:
    """One FINISHED MLflow run per identity, none RUNNING, every epoch of every per-epoch metric
    logged exactly once; returns the runs."""
    runs = ctx.runs(experiment, sweep)
    identities = [r.data.tags.get("identity") for r in runs]
    ctx.figure("MLflow runs / identities", f"{len(runs)} / {len(set(identities))}")
    statuses = sorted(r.info.status for r in runs)
    ctx.figure("run statuses", ", ".join(f"{s} {statuses.count(s)}" for s in sorted(set(statuses))))
    starts = [first_epoch(r) for r in runs]
    points = checks.count_metric_points([checks.histories(ctx.mlflow, r) for r in runs], epochs, starts=starts)
    shape = f"{points['runs']} runs × {epochs} epochs × {points['keys']} keys" + \
        (f", less {sum(starts)} rewound epochs" if any(starts) else "")
    ctx.figure("per-epoch metric points", f"{points['logged']} logged of {points['expected']} expected "
               f"({shape}); {len(points['duplicates'])} steps twice, {len(points['missing'])} missing")
    expect(len(runs) == trials and len(set(identities)) == trials,
           f"{len(runs)} MLflow runs for {len(set(identities))} identities, expected {trials} and {trials}")
    expect(statuses == ["FINISHED"] * trials, f"run statuses {statuses}, expected all FINISHED")
    expect(not points["duplicates"], f"metric steps logged twice: {points['duplicates'][:5]}")
    expect(not points["missing"] and points["logged"] == points["expected"],
           f"metric points missing: {points['missing'][:5]}")
    return runs


def first_epoch(run) -> int:
    """The first epoch a run trains: 0, or i for a ticket rewound to θ_i (it starts at epoch i)."""
    if run.data.tags.get("pipeline") != "ticket_rewind":
        return 0
    return int(float(run.data.params.get("pruning.rewind_epoch", 0)))


def wait_driver_midway(ctx: Context, driver: subprocess.Popen, experiment: str, epochs: int,
                       timeout: float = 600) -> list[tuple[str, int]]:
    """Poll MLflow until a trial has logged 1 to epochs-1 epochs; the RUNNING runs' epochs then."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if driver.poll() is not None:
            raise DrillFailed(f"the sweep ended (exit status {driver.returncode}) before a trial was part-way")
        try:
            running = ctx.running_epochs(experiment)
        except Exception:   # the experiment is being created
            running = []
        if any(1 <= n < epochs for _, n in running):
            return running
        time.sleep(0.5)
    raise DrillFailed(f"no trial reached epoch 1 of {epochs} within {timeout:.0f} s")


def wait_nodes(ctx: Context, count: int, timeout: float = 120) -> list[dict]:
    deadline = time.time() + timeout
    alive = []
    while time.time() < deadline:
        alive = ctx.alive_nodes()
        if len(alive) == count:
            return alive
        time.sleep(2)
    raise DrillFailed(f"{len(alive)} Ray nodes alive after {timeout:.0f} s, expected {count}")


# --- the drills --------------------------------------------------------------------------------


def drill_auth(ctx: Context) -> None:
    """Workers joined with the token; a client without it (or with a wrong one) is refused."""
    nodes = ctx.alive_nodes()
    named = {ctx.cluster.name_of(n["id"]): n for n in nodes}
    ctx.figure("alive nodes", ", ".join(f"{name} ({n['cpu']:g} CPU, {n['gpu']:g} GPU)" for name, n in sorted(named.items())))
    expect(len(nodes) == 3, f"{len(nodes)} alive Ray nodes, expected 3 (head and two workers)")
    expect(all(named.get(w, {}).get("gpu") == cmd.NODE_GPUS for w in ("w1", "w2")),
           f"workers' GPUs: { {k: v['gpu'] for k, v in named.items()} }, expected {cmd.NODE_GPUS} each")
    path = ctx.sweep_file("auth", "drill-auth", grid={"pipeline": "dense", "seed": [90]})
    where = ["--address", ctx.address, "--storage", ctx.storage, "--verbose", "0"]
    token = ctx.cluster.token_file.read_text().strip()
    for label, env in (("no token", ctx.driver_env(token=False)),
                       ("wrong token", ctx.driver_env(token=False, RAY_AUTH_MODE="token",
                                                      RAY_AUTH_TOKEN=secrets.token_hex(32)))):
        name = "auth-" + label.replace(" ", "-")
        got = ctx.lottery(["sweep", str(path), "--name", name, *where], name, env=env, timeout=300)
        refusals = [line for line in got.err.splitlines() if line.startswith("lottery sweep: error:")]
        others = [line for line in got.err.splitlines() if line.strip() and line not in refusals]
        ctx.figure(f"{label}: exit status, time", f"{got.rc}, {got.seconds:.1f} s")
        ctx.figure(f"{label}: refusal", refusals[-1] if refusals else got.tail())
        ctx.figure(f"{label}: other stderr lines", f"{len(others)}" + (f" ({others[0][:70]})" if others else ""))
        expect(got.rc == 2 and len(refusals) == 1, f"{label}: exit status {got.rc}, {len(refusals)} refusal lines")
        expect(TOKEN_REFUSAL in refusals[0] or "refused" in refusals[0], f"{label}: refusal {refusals[0]!r}")
        expect(token not in got.out + got.err, f"{label}: the token was printed")
        expect(not checks.list_keys(ctx.s3, ctx.bucket, f"sweeps/{name}/"), f"{label}: the sweep wrote to the bucket")


def drill_sweep_gpu(ctx: Context) -> None:
    """Trials given (fake) GPUs with device auto fail in one line saying CUDA is unusable: they
    never fall back to training on the CPU."""
    path = ctx.sweep_file("gpu", "drill-gpu", grid={"pipeline": "dense", "seed": [100, 101]}, device="auto",
                          cpu=1, gpu=1, retries=0, max_concurrent=2)
    got = ctx.lottery(["sweep", str(path), "--name", "gpu", "--address", ctx.address, "--storage", ctx.storage],
                      "sweep-gpu", timeout=900)
    failed = [line for line in got.out.splitlines() if line.startswith("failed:")]
    ctx.figure("exit status, time", f"{got.rc}, {got.seconds:.0f} s")
    ctx.figure("trials failed", f"{len(failed)} of 2")
    if failed:
        ctx.figure("first failure", failed[0])
    runs = ctx.runs("drill-gpu", "gpu")
    trained = [r for r in runs if ctx.mlflow.get_metric_history(r.info.run_id, "train_loss")]
    kinds = sorted({r.data.tags.get("device_kind", "?") for r in runs})
    ctx.figure("MLflow runs / with epochs trained", f"{len(runs)} / {len(trained)} (device_kind {', '.join(kinds) or '-'})")
    ctx.figure("MLflow run statuses", ", ".join(sorted(r.info.status for r in runs)) or "-")
    tagged = [r.data.tags["failure"] for r in runs if r.data.tags.get("failure")]
    if tagged:
        ctx.figure("tag failure of a run", tagged[0])
    rows = ctx.trials("gpu")
    gpus = sorted({r.get("gpus_assigned") for rs in rows.values() for r in rs if "gpus_assigned" in r})
    if gpus:
        ctx.figure("GPUs Ray gave each trial", gpus)
    expect(not trained, f"{len(trained)} trial(s) given a GPU trained on the CPU instead of failing "
                        f"(device_kind {', '.join(kinds)}; exit status {got.rc})")
    expect(got.rc == 1 and len(failed) == 2, f"exit status {got.rc} with {len(failed)} failed trials, expected 1 and 2")
    expect(all("CUDA" in line for line in failed), f"a failure does not name CUDA: {failed[0]}")


def drill_sweep(ctx: Context) -> None:
    """dense, ticket_init, ticket_rewind on seeds 0 and 1 over both workers, storage in S3."""
    grid = [{"pipeline": "ticket_init", "seed": [0, 1]},
            {"pipeline": "ticket_rewind", "pruning.rewind_epoch": 1, "seed": [0, 1]}]
    path = ctx.sweep_file("sweep", "drill-sweep", grid=grid, cpu=1, gpu=0, max_concurrent=4)
    offset = ctx.cluster.mlflow_log.stat().st_size
    got = ctx.lottery(["sweep", str(path), "--name", "sweep", "--address", ctx.address, "--storage", ctx.storage],
                      "sweep", timeout=1200)
    ctx.figure("exit status, time", f"{got.rc}, {got.seconds:.0f} s")
    expect(got.rc == 0, f"the sweep failed (exit status {got.rc}): {got.tail()}")
    rows = ctx.trials("sweep")
    where = {}   # (pipeline, seed) -> node name
    for trial in rows.values():
        final = checks.final_row(trial)
        config = final.get("config", {}).get("run", {})
        nodes = checks.trial_nodes(trial)
        where[(config.get("pipeline"), config.get("seed"))] = ctx.cluster.name_of(nodes[-1]) if nodes else "?"
    per_node = {}
    for (pipeline, seed), node in sorted(where.items()):
        per_node.setdefault(node, []).append(f"{pipeline}/{seed}")
    ctx.figure("trials per node", "; ".join(f"{node}: {', '.join(v)}" for node, v in sorted(per_node.items())))
    expect(len(rows) == 6, f"{len(rows)} trials' results in S3, expected 6")
    expect(len(set(where.values()) - {"head"}) == 2, f"the trials ran on {sorted(set(where.values()))}, expected both workers")
    crossed = [s for s in (0, 1) if where.get(("ticket_rewind", s)) != where.get(("dense", s))]
    fetched = checks.downloads(checks.log_since(ctx.cluster.mlflow_log, offset), "/artifacts/weights/theta_1.pt")
    ctx.figure("ticket_rewind on another node than its dense run", f"{len(crossed)} of 2 (seeds {crossed})")
    ctx.figure("θ_1 downloads through MLflow (server log)", describe_downloads(fetched))
    expect(sum(fetched.values()) >= len(crossed), f"{len(crossed)} rewinds ran away from their dense run's θ_1, "
                                                  f"but MLflow gave θ_1 out {sum(fetched.values())} times")
    runs = check_runs(ctx, "drill-sweep", "sweep", SHORT, 6)
    experiment = ctx.mlflow.get_experiment_by_name("drill-sweep").experiment_id
    in_s3 = {key for key, _ in checks.list_keys(ctx.s3, ctx.bucket, f"mlflow/{experiment}/")}
    listed = missing = 0
    for run in runs:
        for artifact in checks.artifact_paths(ctx.mlflow, run.info.run_id):
            listed += 1
            missing += f"mlflow/{experiment}/{run.info.run_id}/artifacts/{artifact}" not in in_s3
    thetas = [r for r in runs if r.data.tags.get("pipeline") == "dense" and
              f"mlflow/{experiment}/{r.info.run_id}/artifacts/weights/theta_1.pt" in in_s3]
    ctx.figure("run artifacts (MLflow) / in S3", f"{listed} / {listed - missing}; objects under mlflow/: {len(in_s3)}")
    ctx.figure("dense θ_1 in S3", f"{len(thetas)} of 2")
    ctx.figure("objects under sweeps/sweep/", len(checks.list_keys(ctx.s3, ctx.bucket, "sweeps/sweep/")))
    expect(missing == 0, f"{missing} of {listed} artifacts are not in S3")
    expect(len(thetas) == 2, "a dense run's θ_1 is not in S3")
    rewinds = [r for r in runs if r.data.tags.get("pipeline") == "ticket_rewind"]
    expect(len(rewinds) == 2 and all("acc" in r.data.metrics for r in rewinds), "a ticket_rewind run has no result")
    report_disks(ctx)
    rewind_elsewhere(ctx)


def rewind_elsewhere(ctx: Context) -> None:
    """Ray may well place each rewind beside its dense run, which then reads θ_i from its own disk.
    So, as on nodes that never held the dense runs: empty the workers' weights/ folders, then
    rewind to θ_0 (a new identity; the dense runs are found finished): every θ_0 and trained
    dense network must come from MLflow's artifacts in S3, through the server."""
    for node in ctx.cluster.workers():
        view = node.private_view()
        if view is not None:
            shutil.rmtree(view / "results" / "weights", ignore_errors=True)
    offset = ctx.cluster.mlflow_log.stat().st_size
    grid = [{"pipeline": "ticket_rewind", "pruning.rewind_epoch": 0, "seed": [0, 1]}]
    path = ctx.sweep_file("sweep-rewind", "drill-sweep", grid=grid, cpu=1, gpu=0, max_concurrent=4)
    got = ctx.lottery(["sweep", str(path), "--name", "sweep-rewind", "--address", ctx.address,
                       "--storage", ctx.storage], "sweep-rewind", timeout=900)
    log = checks.log_since(ctx.cluster.mlflow_log, offset)
    theta = checks.downloads(log, "/artifacts/weights/theta_0.pt")
    final = checks.downloads(log, "/artifacts/weights/final.pt")
    ctx.figure("rewind to θ_0 with weights/ emptied", f"exit status {got.rc}, {got.seconds:.0f} s; downloads through "
                                                      f"MLflow: θ_0 {describe_downloads(theta)}; dense final "
                                                      f"{describe_downloads(final)}")
    theta, final = sum(theta.values()), sum(final.values())
    expect(got.rc == 0, f"the rewinds without local weights failed (exit status {got.rc}): {got.tail()}")
    runs = [r for r in ctx.runs("drill-sweep", "sweep-rewind") if r.data.tags.get("pipeline") == "ticket_rewind"]
    expect(len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs), f"{len(runs)} finished rewinds, expected 2")
    expect(theta >= 2 and final >= 2, f"θ_0 was downloaded {theta} times and the dense weights {final}, expected 2 each")


def describe_downloads(found: dict[str, int]) -> str:
    return f"{sum(found.values())} ({found['presigned']} by presigned S3 URL, {found['proxied']} proxied)"


def report_disks(ctx: Context) -> None:
    """What the sweep left on each node's results disk (the workers' tmpfs, the head's folder)."""
    left = 0
    for node in ctx.cluster.workers():
        kinds = checks.disk_inventory(node.private_view())
        left += sum(kinds.get(k, [0])[0] for k in ("checkpoints", "weights"))
        ctx.figure(f"{node.name} results disk (tmpfs)", checks.describe_inventory(kinds))
    kinds = checks.disk_inventory(ctx.cluster.private)
    left += sum(kinds.get(k, [0])[0] for k in ("checkpoints", "weights"))
    ctx.figure("head results disk", checks.describe_inventory(kinds))
    ctx.figure("checkpoint and weight files left on node disks", left)


def drill_node_loss(ctx: Context) -> None:
    """kill -9 of the worker that runs a trial, once its first epoch's checkpoint is in S3: the trial
    continues on the other worker from that checkpoint; then a replacement worker joins."""
    path = ctx.sweep_file("node-loss", "drill-node-loss", grid={"pipeline": "dense", "seed": [10]}, epochs=LONG,
                          cpu=1, gpu=0, retries=2, max_concurrent=1)
    driver = ctx.start_lottery(["sweep", str(path), "--name", "node-loss", "--address", ctx.address,
                                "--storage", ctx.storage], "node-loss")
    started = time.time()
    victim = None
    try:
        epochs_before, checkpoints = 0, []
        deadline = time.time() + 600
        while victim is None and time.time() < deadline:
            running = wait_driver_midway(ctx, driver, "drill-node-loss", LONG)
            # MLflow has the epoch before Ray has its checkpoint: wait for the checkpoint in S3
            checkpoints = sorted({k.split("/")[-2] for k, _ in checks.list_keys(ctx.s3, ctx.bucket, "sweeps/node-loss/")
                                  if "/checkpoint_" in k})
            victim = ctx.node_with_trial() if checkpoints else None
            epochs_before = max(n for _, n in running)
            if victim is None:
                time.sleep(0.5)
        expect(victim is not None, "could not tell which worker runs the trial")
        killed = ctx.cluster.kill_node(victim)
        killed_at = time.time()
        ctx.figure("killed", f"{victim} after {epochs_before} epoch(s) in MLflow, Ray checkpoints in S3 "
                             f"{', '.join(checkpoints)}: {killed} processes (kill -9), {killed_at - started:.0f} s "
                             f"into the sweep")
        next_epoch = None
        while driver.poll() is None and time.time() < killed_at + 900:
            if next_epoch is None and any(n > epochs_before for _, n in ctx.running_epochs("drill-node-loss")):
                next_epoch = time.time() - killed_at
            time.sleep(1)
        rc = driver.wait(timeout=60)
        ctx.figure("driver exit status, sweep time", f"{rc}, {time.time() - started:.0f} s")
        if next_epoch is not None:
            ctx.figure("next epoch logged after the kill", f"{next_epoch:.0f} s")
        expect(rc == 0, f"the sweep failed after the node loss (exit status {rc}); see {ctx.logs() / 'node-loss.log'}")
        trial = next(iter(ctx.trials("node-loss").values()), [])
        nodes = [ctx.cluster.name_of(n) for n in checks.trial_nodes(trial)]
        ctx.figure("the trial's nodes in its Ray results", " → ".join(nodes) or "?")
        (run,) = check_runs(ctx, "drill-node-loss", "node-loss", LONG, 1)
        resumed = run.data.metrics.get("resumed_from_epoch", 0)
        ctx.figure("resumed_from_epoch, tag resumed", f"{resumed:g}, {run.data.tags.get('resumed', '-')}")
        expect(nodes and nodes[-1] not in (victim, "head"), f"the trial ended on {nodes[-1:]}, not on the other worker")
        expect(resumed >= 1, f"resumed_from_epoch {resumed:g}: the trial started over instead of continuing")
    finally:
        kill_tree(driver.pid)
        if victim is not None:   # later drills need two workers
            replacement = next(f"w{i}" for i in range(3, 99) if f"w{i}" not in ctx.cluster.nodes
                               and not (ctx.cluster.workdir / f"w{i}").exists())
            began = time.time()
            ctx.cluster.start_worker(replacement)
            wait_nodes(ctx, 3)
            ctx.figure("replacement worker", f"{replacement} joined in {time.time() - began:.0f} s (3 nodes alive)")


def drill_driver_loss(ctx: Context) -> None:
    """SIGKILL of `lottery sweep` mid-sweep, then `lottery resume`: one run per identity, finished."""
    path = ctx.sweep_file("driver-loss", "drill-driver-loss", grid={"pipeline": "dense", "seed": [20, 21]},
                          epochs=LONG, cpu=1, gpu=0, retries=1, max_concurrent=2)
    driver = ctx.start_lottery(["sweep", str(path), "--name", "driver-loss", "--address", ctx.address,
                                "--storage", ctx.storage], "driver-loss")
    started = time.time()
    try:
        deadline = time.time() + 900
        while True:   # part-way, and Ray's experiment state in S3 knows each running trial's checkpoint
            running = wait_driver_midway(ctx, driver, "drill-driver-loss", LONG)
            midway = [n for _, n in running if 1 <= n < LONG]
            known, lag = checks.checkpoints_in_state(checks.list_objects(ctx.s3, ctx.bucket, "sweeps/driver-loss/"))
            if midway and known >= len(running):
                break
            expect(time.time() < deadline, "the trials never were part-way with their checkpoints in Ray's state")
            time.sleep(0.5)
        os.kill(driver.pid, signal.SIGKILL)
        killed_at = time.time()
        driver.wait(timeout=30)
    finally:
        kill_tree(driver.pid)
    ctx.figure("driver SIGKILLed", f"{killed_at - started:.0f} s in, trials' epochs then: "
                                   f"{sorted(n for _, n in running)}; Ray's state in S3 {lag:.0f} s newer than "
                                   f"the first checkpoint")
    while time.time() < killed_at + 60 and any(n.runs_trial() for n in ctx.cluster.workers()):
        time.sleep(1)
    busy = [n.name for n in ctx.cluster.workers() if n.runs_trial()]
    ctx.figure("trials still running after the kill", f"{busy or 'none'} ({time.time() - killed_at:.0f} s later)")
    got = ctx.lottery(["resume", "driver-loss", "--address", ctx.address, "--storage", ctx.storage],
                      "driver-loss-resume", timeout=900)
    ctx.figure("resume: exit status, time", f"{got.rc}, {got.seconds:.0f} s")
    expect(got.rc == 0, f"lottery resume failed (exit status {got.rc}): {got.tail()}")
    runs = check_runs(ctx, "drill-driver-loss", "driver-loss", LONG, 2)
    interrupted = {rid for rid, n in running if 1 <= n < LONG}
    resumed = {r.info.run_id: r.data.metrics.get("resumed_from_epoch", 0) for r in runs}
    ctx.figure("resumed_from_epoch per run", ", ".join(f"{v:g}" + (" (interrupted)" if k in interrupted else "")
                                                      for k, v in resumed.items()))
    expect(all(resumed.get(rid, 0) >= 1 for rid in interrupted),
           f"an interrupted run started over: resumed_from_epoch {resumed}")
    parent = [r for r in ctx.mlflow.search_runs(
        [ctx.mlflow.get_experiment_by_name("drill-driver-loss").experiment_id], "tags.sweep = 'driver-loss'")
        if r.data.tags.get("sweep_parent") == "true"]
    ctx.figure("parent run", ", ".join(r.info.status for r in parent))
    expect([r.info.status for r in parent] == ["FINISHED"], "the sweep's parent run is not FINISHED")


def drill_claims(ctx: Context) -> None:
    """An Optuna search whose samples are all one identity, two at a time on two workers: trained
    once, the other samples find the finished run (claims in S3, conditional writes)."""
    samples = 3
    # two metrics, as the shipped searches: a single-metric search ends its driver with KeyError 'acc'
    # (Ray's OptunaSearch reads the metric from every per-epoch result; see docs/cluster-drill.md)
    optuna = {"space": {"pruning.p": {"type": "categorical", "choices": [1]}}, "metrics": ["acc", "macs"],
              "modes": ["max", "min"], "num_samples": samples, "seed": 0}   # one identity: ticket_init p=1, seed 30
    # 2 CPUs a trial: two trials at once are on two workers
    # not "claims": a sweep of that name would share <storage>/claims/ with the claims themselves
    path = ctx.sweep_file("repeat", "drill-claims", optuna=optuna, pipeline="ticket_init", seed=30, cpu=2, gpu=0,
                          max_concurrent=2, retries=0)
    driver = ctx.start_lottery(["sweep", str(path), "--name", "repeat", "--address", ctx.address,
                                "--storage", ctx.storage], "claims")
    started = time.time()
    seen: set[str] = set()
    most = 0
    try:
        while driver.poll() is None and time.time() < started + 1200:
            claims = [k for k, _ in checks.list_keys(ctx.s3, ctx.bucket, "sweeps/claims/")
                      if k.endswith(".claim")]
            seen.update(claims)
            most = max(most, len(claims))
            time.sleep(1)
        rc = driver.wait(timeout=60)
    finally:
        kill_tree(driver.pid)
    ctx.figure("exit status, time", f"{rc}, {time.time() - started:.0f} s")
    ctx.figure("claim objects seen in S3 (sweeps/claims/)", f"{len(seen)} identities, at most {most} at once; "
                                                            f"left: {len(checks.list_keys(ctx.s3, ctx.bucket, 'sweeps/claims/'))}")
    expect(rc == 0, f"the search failed (exit status {rc}); see {ctx.logs() / 'claims.log'}")
    trials = {name: rows for name, rows in ctx.trials("repeat").items()
              if checks.final_row(rows).get("config", {}).get("run", {}).get("pipeline") != "dense"}
    finals = [checks.final_row(rows) for rows in trials.values()]
    existed = sum(1 for f in finals if f.get("run_existed") == 1)
    nodes = sorted({ctx.cluster.name_of(n) for rows in trials.values() for n in checks.trial_nodes(rows)})
    identity = {f.get("identity") for f in finals}
    ctx.figure("samples / trained / run_existed", f"{len(finals)} / {len(finals) - existed} / {existed}")
    ctx.figure("nodes of the samples", ", ".join(nodes))
    runs = [r for r in ctx.runs("drill-claims", "repeat") if r.data.tags.get("pipeline") == "ticket_init"]
    ctx.figure("MLflow runs of the identity", ", ".join(r.info.status for r in runs) or "none")
    expect(len(finals) == samples and len(identity) == 1, f"{len(finals)} samples of {len(identity)} identities")
    expect(len(runs) == 1 and runs[0].info.status == "FINISHED", f"{len(runs)} MLflow runs of the identity, expected 1")
    expect(existed == samples - 1, f"{existed} samples reported run_existed, expected {samples - 1}")
    expect(len(nodes) >= 2, f"the samples ran on {nodes} only: not across nodes")
    expect(seen, "no claim was seen in S3 under sweeps/claims/")


def drill_storage(ctx: Context) -> None:
    """A node-private folder as --storage is refused in one line before any trial starts: the
    driver's marker there is not what the workers read (each has its own tmpfs at that path)."""
    private = ctx.cluster.private / "storage"
    path = ctx.sweep_file("storage", "drill-storage", grid={"pipeline": "dense", "seed": [40]}, cpu=1, gpu=0)
    got = ctx.lottery(["sweep", str(path), "--name", "storage", "--address", ctx.address, "--storage", str(private)],
                      "storage", timeout=600)
    refusals = [line for line in got.err.splitlines() if line.startswith("lottery sweep: error:")]
    runs = ctx.runs("drill-storage", "storage")
    ctx.figure("exit status, time", f"{got.rc}, {got.seconds:.1f} s")
    ctx.figure("refusal", refusals[-1] if refusals else got.tail())
    named = [name for node_id, name in ctx.cluster.node_names.items() if node_id[:12] in (refusals or [""])[-1]]
    ctx.figure("node named in the refusal", ", ".join(named) or "-")
    ctx.figure("trials started (MLflow runs)", len(runs))
    expect(got.rc == 2 and len(refusals) == 1, f"exit status {got.rc} with {len(refusals)} refusal lines; {got.tail()}")
    expect("not shared" in refusals[0], f"the refusal does not say the storage is not shared: {refusals[0]}")
    expect(not runs, f"{len(runs)} trial(s) started before the refusal")


def drill_load(ctx: Context) -> None:
    """Four trials at once logging to the PostgreSQL-backed server: no 'database is locked', no
    HTTP 5xx in the server's log, no metric point lost."""
    log = ctx.cluster.mlflow_log
    offset = log.stat().st_size
    path = ctx.sweep_file("load", "drill-load", grid={"pipeline": "dense", "seed": [50, 51, 52, 53]}, cpu=1, gpu=0,
                          max_concurrent=4, epochs=LOAD_EPOCHS, train_size=2 * TRAIN_IMAGES)
    got = ctx.lottery(["sweep", str(path), "--name", "load", "--address", ctx.address, "--storage", ctx.storage],
                      "load", timeout=1200)
    problems = checks.server_log_problems(checks.log_since(log, offset))
    ctx.figure("exit status, time", f"{got.rc}, {got.seconds:.0f} s")
    finals = [checks.final_row(rows) for rows in ctx.trials("load").values()]
    spans = [(f["trial_started_at"], f["trial_ended_at"]) for f in finals if "trial_started_at" in f]
    ctx.figure("trials at once (most)", checks.max_overlap(spans))
    ctx.figure("server requests / HTTP 5xx", f"{problems['requests']} / {problems['http_5xx']}")
    ctx.figure("'database is locked' / tracebacks in the log", f"{problems['database_locked']} / {problems['tracebacks']}")
    expect(got.rc == 0, f"the sweep failed (exit status {got.rc}): {got.tail()}")
    check_runs(ctx, "drill-load", "load", LOAD_EPOCHS, 4)
    expect(problems["http_5xx"] == 0 and problems["database_locked"] == 0,
           f"{problems['http_5xx']} HTTP 5xx and {problems['database_locked']} 'database is locked' in the server log")
    expect(checks.max_overlap(spans) == 4, f"at most {checks.max_overlap(spans)} trials ran at once, expected 4")


@dataclass(frozen=True)
class Drill:
    name: str
    title: str
    run: object


DRILLS = (
    Drill("auth", "1 auth: token joins, a client without the token is refused", drill_auth),
    Drill("sweep-gpu", "2a sweep on fake GPUs: trials fail in one line, never train on the CPU", drill_sweep_gpu),
    Drill("sweep", "2b sweep on both workers, storage and artifacts in S3", drill_sweep),
    Drill("node-loss", "3 node loss: kill -9 of a worker mid-trial", drill_node_loss),
    Drill("driver-loss", "4 driver loss: SIGKILL of lottery sweep, then lottery resume", drill_driver_loss),
    Drill("claims", "5 claims across nodes: an Optuna search repeating one identity", drill_claims),
    Drill("storage", "6 storage check: a node-private --storage is refused", drill_storage),
    Drill("load", "7 load: four trials at once on the PostgreSQL-backed MLflow", drill_load),
)


def run_drill(ctx: Context, drill: Drill, say=print) -> tuple[bool, float, str]:
    """Run one drill, print its figures and wall time; (passed, seconds, failure line)."""
    say(f"\n== {drill.title}")
    ctx.rows = []
    started = time.time()
    failure = ""
    try:
        drill.run(ctx)
    except DrillFailed as err:
        failure = str(err)
    except Exception as err:   # the drill itself broke: still one line, and the next drill runs
        failure = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
    seconds = time.time() - started
    say(checks.table(ctx.rows))
    say(f"  {'FAILED: ' + failure if failure else 'passed'} ({seconds:.0f} s)")
    return not failure, seconds, failure
