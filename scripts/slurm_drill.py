"""The Slurm drill: `tune/cluster/slurm/lottery.sbatch` on a real single-node Slurm on this machine.

    .venv/bin/python -m scripts.slurm_drill [--epochs 3] [--train-size 500] [--snapshot] [--graceful] [--keep]

What it does (as root, which a single-node Slurm needs here):

1. installs Debian's `slurm-wlm` and `munge` when they are missing (it says so);
2. starts a Slurm of its own in a temporary folder: a munge key and `munged` on a private socket,
   a `slurm.conf` for this host alone (its CPUs and memory as `slurmd -C` reports them,
   `ProctrackType=proctrack/linuxproc` and `TaskPlugin=task/none`: no cgroups in this container;
   free ports; a random first job id), `slurmctld` and `slurmd` in the foreground, each in a
   process group of its own;
3. job A: `sbatch lottery.sbatch SWEEP` with a tiny sweep (dense + ticket_init, ResNet20, 2 seeds,
   500 CIFAR-10 images, `device: cpu`, `resources: {cpu: 1, gpu: 0}`) and waits for it:
   the job COMPLETED, sweep.json is in the storage, every MLflow run FINISHED with every epoch;
4. job B: the same sweep with two other seeds under a new name, `scancel` as soon as a trial has
   reported an epoch;
   job C: `LOTTERY_RESUME=<B> sbatch lottery.sbatch` finishes it: one MLflow run per identity,
   none RUNNING, every epoch logged once;
5. prints its figures (the time of each step, runs, resumed epochs) as a table, and stops what it
   started: its jobs (scancel), then slurmd, slurmctld and munged by process group, then any
   process left that carries the drill's marker in its environment (by pid).

The MLflow server is the one the batch script starts on the job's node, on SQLite in the drill's
temporary "shared" folder (the PostgreSQL server belongs to the cluster drill). `--snapshot` runs
the jobs on a copy of this checkout made at the start (its tracked and untracked files, first on
the jobs' PYTHONPATH), so that edits made in the working tree while the drill runs do not reach
them. `--graceful` stops job B with `scancel --signal=INT --batch` (the batch script interrupts the
driver, which lets Ray Tune save its state) instead of a plain `scancel`. Exit status 0 when every
check holds, 1 otherwise (the temporary folder is then kept).
"""
import argparse
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SBATCH = ROOT / "tune" / "cluster" / "slurm" / "lottery.sbatch"
VENV = Path(sys.prefix)
DATA = Path(os.environ.get("LOTTERY_DATA_DIR") or ROOT.parent / "shared" / "data" / "cifar10")
PACKAGES = ("slurm-wlm", "munge")
DAEMONS = ("slurmctld", "slurmd", "munged", "sbatch")
MARKER = "LOTTERY_SLURM_DRILL"
EXPERIMENT = "slurm-drill"


class DrillError(Exception):
    """A check that failed: its message is the drill's last line."""


def log(message: str) -> None:
    print(f"[slurm drill {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def ensure_packages() -> float | None:
    """Install slurm-wlm and munge from Debian when a daemon is missing; the seconds it took, or None."""
    if all(shutil.which(name) for name in DAEMONS):
        log("slurm-wlm and munge are installed")
        return None
    if os.geteuid() != 0:
        raise DrillError("slurm-wlm and munge are missing and installing them needs root")
    log(f"installing {' and '.join(PACKAGES)} from Debian (apt-get install) ...")
    started = time.perf_counter()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "text": True, "env": env}
    done = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES], **quiet)
    if done.returncode != 0:   # a stale package list: update it once and try again
        subprocess.run(["apt-get", "update"], **quiet)
        done = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES], **quiet)
    if done.returncode != 0 or not all(shutil.which(name) for name in DAEMONS):
        raise DrillError(f"apt-get install {' '.join(PACKAGES)} failed: {done.stderr.strip()[-500:]}")
    seconds = time.perf_counter() - started
    log(f"installed in {seconds:.0f} s")
    return seconds


class LocalSlurm:
    """munged, slurmctld and slurmd for this host alone, everything under `folder`."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.processes: dict[str, subprocess.Popen] = {}
        for sub in ("etc", "state", "spool", "log", "run", "munge"):
            (folder / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        self.conf = folder / "etc" / "slurm.conf"
        self.socket = folder / "munge" / "munge.socket"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def node_line(self) -> str:
        """This host as `slurmd -C` sees it (name, CPUs, sockets, cores, threads, memory)."""
        found = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
        line = next(line for line in found.splitlines() if line.startswith("NodeName="))
        return f"{line} NodeAddr=127.0.0.1 State=UNKNOWN"

    @property
    def cpus(self) -> int:
        return int(next(p for p in self.node_line().split() if p.startswith("CPUs=")).split("=")[1])

    def write_conf(self) -> None:
        f = self.folder
        node = self.node_line()
        name = node.split()[0].split("=")[1]
        (f / "etc" / "plugstack.conf").write_text("")
        self.conf.write_text("\n".join([
            "# a single-node Slurm for scripts/slurm_drill.py (no cgroups in this container)",
            "ClusterName=lotterydrill",
            f"SlurmctldHost={name}(127.0.0.1)",
            f"SlurmctldPort={free_port()}",
            f"SlurmdPort={free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.socket}",
            f"StateSaveLocation={f / 'state'}",
            f"SlurmdSpoolDir={f / 'spool'}",
            f"SlurmctldPidFile={f / 'run' / 'slurmctld.pid'}",
            f"SlurmdPidFile={f / 'run' / 'slurmd.pid'}",
            f"SlurmctldLogFile={f / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={f / 'log' / 'slurmd.log'}",
            f"PlugStackConfig={f / 'etc' / 'plugstack.conf'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "SchedulerType=sched/backfill",
            "MpiDefault=none",
            "ReturnToService=2",
            "KillWait=30",
            "MinJobAge=3600",
            f"FirstJobId={secrets.randbelow(800_000) + 100_000}",
            node,
            f"PartitionName=drill Nodes={name} Default=YES MaxTime=INFINITE State=UP",
            ""]))

    def start(self) -> None:
        self.write_conf()
        key = self.folder / "munge" / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)
        m = self.folder / "munge"
        self._spawn("munged", ["munged", "--foreground", "--force", f"--socket={self.socket}", f"--key-file={key}",
                               f"--pid-file={m / 'munged.pid'}", f"--log-file={m / 'munged.log'}",
                               f"--seed-file={m / 'munged.seed'}"])
        self._wait(lambda: self.socket.exists(), 30, "munged did not open its socket", "munged")
        self._spawn("slurmctld", ["slurmctld", "-D", "-c", "-f", str(self.conf)])
        self._wait(lambda: self.run(["scontrol", "ping"], check=False).returncode == 0, 60,
                   "slurmctld does not answer", "slurmctld")
        self._spawn("slurmd", ["slurmd", "-D", "-f", str(self.conf)])
        self._wait(lambda: self.run(["sinfo", "-h", "-o", "%t"], check=False).stdout.strip() == "idle", 90,
                   "the node did not become idle", "slurmd")

    def _spawn(self, name: str, command: list[str]) -> None:
        out = open(self.folder / "log" / f"{name}.console", "ab")
        self.processes[name] = subprocess.Popen(command, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                                start_new_session=True)

    def _wait(self, ready, seconds: float, problem: str, daemon: str) -> None:
        deadline = time.time() + seconds
        while time.time() < deadline:
            if ready():
                return
            if self.processes[daemon].poll() is not None:
                break
            time.sleep(0.5)
        logs = [self.folder / "log" / f"{daemon}.console", self.folder / "log" / f"{daemon}.log",
                self.folder / "munge" / "munged.log"]
        tail = "\n".join(p.read_text(errors="replace")[-1500:] for p in logs if p.exists())
        raise DrillError(f"{problem} within {seconds:.0f} s:\n{tail}")

    def run(self, command: list[str], check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(command, env=self.env, capture_output=True, text=True)
        if check and done.returncode != 0:
            raise DrillError(f"{' '.join(command)}: {done.stderr.strip() or done.stdout.strip()}")
        return done

    def job(self, job_id: str) -> dict[str, str]:
        """`scontrol show job` as a dict (JobState, ExitCode, NodeList, ...)."""
        text = self.run(["scontrol", "show", "job", "-o", job_id]).stdout
        return dict(part.split("=", 1) for part in text.split() if "=" in part)

    def stop(self) -> None:
        """Cancel every job, then stop slurmd, slurmctld and munged (SIGTERM, then SIGKILL) by process group."""
        if "slurmctld" in self.processes and self.processes["slurmctld"].poll() is None:
            self.run(["scancel", "--partition=drill", "--full"], check=False)
            deadline = time.time() + 60
            while time.time() < deadline and self.run(["squeue", "-h"], check=False).stdout.strip():
                time.sleep(1)
        for name in ("slurmd", "slurmctld", "munged"):
            process = self.processes.get(name)
            if process is None:
                continue
            for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
                try:
                    os.killpg(process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    process.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue


def marked_processes(token: str) -> list[int]:
    """Pids of processes whose environment holds this drill's marker (the jobs' scripts, Ray, MLflow)."""
    wanted = f"{MARKER}={token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if wanted in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            pass
    return found


def kill_pids(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def snapshot(root: Path, target: Path) -> Path:
    """Copy the checkout's tracked and untracked (not ignored) files to `target`."""
    listed = subprocess.run(["git", "-C", str(root), "ls-files", "-co", "--exclude-standard", "-z"],
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = root / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    log(f"jobs run on a snapshot of {root}: {target}")
    return target


def sweep_file(folder: Path, epochs: int, train_size: int, experiment: str, seeds: tuple[int, int]) -> Path:
    """dense + ticket_init (SNIP, p = 1), ResNet20, two seeds (4 trials in 2 phases), on the CPU, in an MLflow
    experiment of its own. Each sweep of the drill has seeds of its own: a run whose identity finished
    before, in the same experiment or the same results folder, is not trained again."""
    path = folder / f"{experiment}.yaml"
    path.write_text(f"""\
# the Slurm drill's sweep: 2 dense baselines, then 2 tickets; {train_size} CIFAR-10 images, {epochs} epochs
name: slurm-drill
base:
  model: {{name: resnet20, shortcut: A, init: torch}}
  device: cpu
  data: {{name: cifar10, train_size: {train_size}, test_size: 200}}
  training: {{epochs: {epochs}, batch_size: 64, lr: 0.1, nesterov: true, schedule: onecycle, keep_epochs: [0]}}
  pruning: {{images_per_class: 2}}
  evaluation: {{corruptions: [], attacks: [], cka_images: 0}}
  tracking: {{experiment: {experiment}}}
grid:
  - {{pipeline: ticket_init, pruning.criterion: snip, pruning.p: 1, seed: [{seeds[0]}, {seeds[1]}]}}
resources: {{cpu: 1, gpu: 0}}
max_concurrent: 2
retries: 1
""")
    return path


class Store:
    """The sweep's MLflow store, read straight from its SQLite file (no server needed between jobs)."""

    def __init__(self, database: Path):
        self.uri = f"sqlite:///{database}"
        self.database = database
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(self.uri)
        return self._client

    def runs(self, sweep: str) -> list:
        if not self.database.exists():
            return []
        experiment = self.client.get_experiment_by_name(f"{EXPERIMENT}-{sweep}")
        if experiment is None:
            return []
        return self.client.search_runs([experiment.experiment_id], f"tags.sweep = '{sweep}'", max_results=1000)

    def epochs(self, run) -> list[int]:
        return sorted(m.step for m in self.client.get_metric_history(run.info.run_id, "train_loss"))


def check_finished(store: Store, sweep: str, trials: int, epochs: int) -> tuple[list, list]:
    """Every run of the sweep FINISHED, one child per identity, every epoch logged once: (parent, children)."""
    runs = store.runs(sweep)
    parents = [r for r in runs if r.data.tags.get("sweep_parent") == "true"]
    children = [r for r in runs if r.data.tags.get("sweep_parent") != "true"]
    identities = [r.data.tags.get("identity") for r in children]
    if len(parents) != 1 or len(children) != trials or len(set(identities)) != trials:
        raise DrillError(f"sweep {sweep}: {len(parents)} parent run(s), {len(children)} child runs for "
                         f"{len(set(identities))} identities; expected 1 parent and {trials} children, one per identity")
    statuses = sorted({r.info.status for r in runs})
    if statuses != ["FINISHED"]:
        raise DrillError(f"sweep {sweep}: run statuses {statuses}, expected FINISHED only")
    for run in children:
        if store.epochs(run) != list(range(epochs)):
            raise DrillError(f"sweep {sweep}: run {run.info.run_id} logged epochs {store.epochs(run)}, "
                             f"expected {list(range(epochs))}")
    return parents, children


class Drill:
    def __init__(self, args):
        self.args = args
        self.token = secrets.token_hex(8)
        self.folder = Path(tempfile.mkdtemp(prefix="slurm-drill-", dir="/tmp"))
        self.code = snapshot(ROOT, self.folder / "code") if args.snapshot else ROOT
        self.shared = self.folder / "shared"
        self.slurm = LocalSlurm(self.folder / "slurm")
        self.store = Store(self.shared / "mlflow" / "mlflow.db")
        self.figures: list[tuple[str, str, str]] = []   # (step, seconds, detail)
        self.jobs: list[str] = []
        self.shown: dict[str, int] = {}   # lines of each job's output printed so far

    def figure(self, step: str, seconds: float | None, detail: str = "") -> None:
        self.figures.append((step, "-" if seconds is None else f"{seconds:.0f}", detail))
        log(f"{step}: {'-' if seconds is None else f'{seconds:.0f} s'} {detail}".rstrip())

    def env(self, **extra) -> dict[str, str]:
        env = {k: v for k, v in self.slurm.env.items()
               if not k.startswith(("RAY_", "MLFLOW_", "LOTTERY_", "SLURM_")) or k == "SLURM_CONF"}
        if self.code != ROOT:
            env["PYTHONPATH"] = os.pathsep.join([str(self.code), *filter(None, [env.get("PYTHONPATH")])])
        env.update({"LOTTERY_SHARED": str(self.shared), "LOTTERY_VENV": str(VENV),
                    "LOTTERY_DATA_DIR": str(DATA), "LOTTERY_CONFIG_DIR": str(self.folder / "config"),
                    MARKER: self.token, **extra})
        return env

    def sbatch(self, args: list[str], **extra) -> str:
        (self.folder / "jobs").mkdir(exist_ok=True)
        command = ["sbatch", "--parsable", f"--chdir={self.code}", f"--output={self.folder / 'jobs' / '%j.out'}",
                   "--nodes=1", f"--cpus-per-task={self.slurm.cpus}", "--time=30",
                   str(self.code / SBATCH.relative_to(ROOT)), *args]
        done = subprocess.run(command, env=self.env(**extra), capture_output=True, text=True)
        if done.returncode != 0:
            raise DrillError(f"sbatch: {done.stderr.strip()}")
        job = done.stdout.strip().split(";")[0]
        self.jobs.append(job)
        return job

    def follow(self, job: str) -> None:
        """Print the job's new output lines (its batch script's progress) as they come."""
        lines = self.job_log(job).splitlines()
        for line in lines[self.shown.get(job, 0):]:
            print(f"    {job} | {line}", flush=True)
        self.shown[job] = len(lines)

    def wait_state(self, job: str, states: tuple[str, ...], seconds: float) -> dict[str, str]:
        deadline = time.time() + seconds
        while time.time() < deadline:
            self.follow(job)
            info = self.slurm.job(job)
            if info.get("JobState") in states:
                self.follow(job)
                return info
            time.sleep(1)
        raise DrillError(f"job {job} is {self.slurm.job(job).get('JobState')} after {seconds:.0f} s, not "
                         f"{' or '.join(states)}")

    def phases(self, job: str) -> str:
        """Where a job's time went, from its batch script's time-stamped lines: MLflow up, Ray up, driver."""
        stamps = {}
        for line in self.job_log(job).splitlines():
            found = re.match(r"\[lottery\.sbatch (\d\d):(\d\d):(\d\d)\] (\S+)", line)
            if found:
                h, m, sec, word = found.groups()
                stamps.setdefault(word.rstrip(":"), int(h) * 3600 + int(m) * 60 + int(sec))
        order = [("job", "MLflow", "MLflow up"), ("MLflow", "Ray", "Ray up"), ("running", "stopped", "driver")]
        parts = [f"{label} {(stamps[b] - stamps[a]) % 86400} s" for a, b, label in order if a in stamps and b in stamps]
        return ", ".join(parts)

    def job_log(self, job: str) -> str:
        path = self.folder / "jobs" / f"{job}.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def finish(self, job: str, seconds: float) -> dict[str, str]:
        info = self.wait_state(job, ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"),
                               seconds)
        if info["JobState"] != "COMPLETED" or info.get("ExitCode") != "0:0":
            raise DrillError(f"job {job} ended {info['JobState']} (exit {info.get('ExitCode')}):\n"
                             f"{self.job_log(job)[-3000:]}")
        return info

    def no_leftovers(self, job: str) -> None:
        """Nothing the job started survives it (its batch script's trap and Slurm's step ends)."""
        deadline = time.time() + 45
        while time.time() < deadline and marked_processes(self.token):
            time.sleep(1)
        left = marked_processes(self.token)
        if left:
            names = [Path(f"/proc/{p}/comm").read_text().strip() for p in left if Path(f"/proc/{p}").exists()]
            kill_pids(left)
            raise DrillError(f"job {job} left {len(left)} process(es) running after it ended: {names}")
        if (self.shared / "slurm" / job / "ray-token").exists():
            raise DrillError(f"job {job} left its Ray token in {self.shared / 'slurm' / job}")

    def run(self) -> None:
        a = self.args
        started = time.perf_counter()
        installed = ensure_packages()
        self.figure("install slurm-wlm + munge", installed, "already installed" if installed is None else "apt-get")
        t = time.perf_counter()
        self.slurm.start()
        release = subprocess.run(["slurmd", "-V"], capture_output=True, text=True).stdout.strip()
        self.figure("Slurm up: munged, slurmctld, slurmd, node idle", time.perf_counter() - t,
                    f"{release}, {self.slurm.cpus} CPUs, linuxproc, task/none; load average {os.getloadavg()[0]:.1f}")
        trials = 4

        # job A: a whole sweep
        t = time.perf_counter()
        job = self.sbatch([str(sweep_file(self.folder, a.epochs, a.train_size, f"{EXPERIMENT}-drill-a", (0, 1))),
                           "--name", "drill-a"])
        self.wait_state(job, ("RUNNING", "COMPLETED", "FAILED"), 120)
        queued = time.perf_counter() - t
        self.finish(job, a.timeout)
        took = time.perf_counter() - t
        if not (self.shared / "ray" / "drill-a" / "sweep.json").exists():
            raise DrillError("job A finished but left no sweep.json in the storage")
        _, children = check_finished(self.store, "drill-a", trials, a.epochs)
        self.no_leftovers(job)
        self.figure("job A: sbatch -> COMPLETED (whole sweep)", took,
                    f"{len(children)} runs FINISHED, {a.epochs} epochs each; queued {queued:.0f} s; {self.phases(job)}")

        # job B: cancelled once a trial has reported an epoch
        t = time.perf_counter()
        job = self.sbatch([str(sweep_file(self.folder, a.epochs, a.train_size, f"{EXPERIMENT}-drill-b", (2, 3))),
                           "--name", "drill-b"])
        deadline = time.time() + a.timeout
        while time.time() < deadline:
            self.follow(job)
            info = self.slurm.job(job)
            if info.get("JobState") not in ("PENDING", "RUNNING", "CONFIGURING"):
                raise DrillError(f"job B ended {info.get('JobState')} before any epoch:\n{self.job_log(job)[-3000:]}")
            try:
                running = [r for r in self.store.runs("drill-b") if r.info.status == "RUNNING"
                           and r.data.tags.get("sweep_parent") != "true"]
                if any(self.store.epochs(r) for r in running):
                    break
            except Exception:   # the server is writing the SQLite file: read again
                pass
            time.sleep(0.5)
        else:
            raise DrillError("job B reported no epoch in time")
        first_epoch = time.perf_counter() - t
        before = {r.data.tags.get("identity"): len(self.store.epochs(r)) for r in self.store.runs("drill-b")
                  if r.data.tags.get("sweep_parent") != "true"}
        t = time.perf_counter()
        self.slurm.run(["scancel", "--signal=INT", "--batch", job] if a.graceful else ["scancel", job])
        info = self.wait_state(job, ("CANCELLED", "COMPLETED", "FAILED"), 300)
        cancelled = time.perf_counter() - t
        expected = "FAILED" if a.graceful else "CANCELLED"   # an interrupted sweep exits 1
        if info["JobState"] != expected:
            raise DrillError(f"job B ended {info['JobState']} instead of {expected}:\n{self.job_log(job)[-2000:]}")
        if a.graceful and "interrupted" not in self.job_log(job):
            raise DrillError(f"job B's driver did not stop as interrupted:\n{self.job_log(job)[-2000:]}")
        self.no_leftovers(job)
        self.figure("job B: sbatch -> first epoch reported", first_epoch,
                    f"{sum(before.values())} epoch(s) of {len(before)} run(s) logged")
        how = "scancel --signal=INT --batch" if a.graceful else "scancel"
        self.figure(f"job B: {how} -> job ended", cancelled, f"{info['JobState']}, no process left, no token file")

        # job C: LOTTERY_RESUME finishes B
        t = time.perf_counter()
        job = self.sbatch([], LOTTERY_RESUME="drill-b")
        self.finish(job, a.timeout)
        took = time.perf_counter() - t
        _, children = check_finished(self.store, "drill-b", trials, a.epochs)
        self.no_leftovers(job)
        resumed = [r for r in children if r.data.tags.get("resumed") == "true"]
        after = trials * a.epochs - sum(before.values())
        self.figure("job C: LOTTERY_RESUME -> COMPLETED", took,
                    f"1 run per identity ({len(children)}), none RUNNING; {len(resumed)} run(s) resumed, "
                    f"{after} epoch(s) trained after the resume; {self.phases(job)}")
        if "resume drill-b" not in self.job_log(job):
            raise DrillError("job C did not run `lottery resume drill-b`")
        self.total = time.perf_counter() - started
        self.figure("whole drill (install, Slurm up, jobs A, B, C)", self.total,
                    f"machine load average now {os.getloadavg()[0]:.1f} (shared with other work)")

    def table(self) -> str:
        rows = [("step", "s", "detail"), *self.figures]
        widths = [max(len(r[i]) for r in rows) for i in range(2)]
        lines = [f"| {r[0]:<{widths[0]}} | {r[1]:>{widths[1]}} | {r[2]} |" for r in rows]
        lines.insert(1, f"|{'-' * (widths[0] + 2)}|{'-' * (widths[1] + 1)}:|---|")
        return "\n".join(lines)

    def teardown(self) -> float:
        t = time.perf_counter()
        self.slurm.stop()
        kill_pids(marked_processes(self.token))
        for job in self.jobs:
            shutil.rmtree(f"/tmp/ray-{job}", ignore_errors=True)   # the jobs' node-local Ray folders
        return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.slurm_drill", description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per trial (default 3)")
    parser.add_argument("--train-size", type=int, default=500, help="CIFAR-10 training images (default 500)")
    parser.add_argument("--timeout", type=float, default=1500, help="seconds a job may take (default 1500)")
    parser.add_argument("--snapshot", action="store_true",
                        help="run the jobs on a copy of this checkout made at the start (edits made meanwhile stay out)")
    parser.add_argument("--graceful", action="store_true",
                        help="stop job B with `scancel --signal=INT --batch` (the driver saves and stops) instead of scancel")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, store) afterwards")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("slurm drill: error: run it as root (a single-node Slurm needs root here)", file=sys.stderr)
        return 2
    if not (DATA / "train").is_dir():
        print(f"slurm drill: error: no CIFAR-10 image folder at {DATA}: set LOTTERY_DATA_DIR", file=sys.stderr)
        return 2
    drill = Drill(args)
    broken = subprocess.run([sys.executable, "-c", "import tune.launch, tune.trial"], cwd=drill.code,
                            env=drill.env(), capture_output=True, text=True)
    if broken.returncode != 0:   # a working tree mid-edit: say so now, not in every trial minutes later
        print(f"slurm drill: error: {drill.code} does not import: {broken.stderr.strip().splitlines()[-1]}",
              file=sys.stderr)
        shutil.rmtree(drill.folder, ignore_errors=True)
        return 2
    log(f"folder {drill.folder}; sweep file, shared folder, Slurm and job logs are there")
    ok = False
    try:
        drill.run()
        ok = True
    except DrillError as err:
        log(f"FAILED: {err}")
    except KeyboardInterrupt:
        log("interrupted")
    finally:
        drill.figure("teardown: jobs, slurmd, slurmctld, munged, leftovers", drill.teardown())
    print()
    print(drill.table())
    if ok:
        print(f"\nslurm drill passed in {drill.total:.0f} s: sbatch, scancel and LOTTERY_RESUME on a single-node Slurm")
    if ok and not args.keep:
        shutil.rmtree(drill.folder, ignore_errors=True)
    else:
        print(f"kept {drill.folder}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
