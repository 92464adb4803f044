"""The cluster of the drill: moto's S3, PostgreSQL, MLflow's server and a Ray head with two workers
in mount namespaces of their own. Every service runs in a process group of its own; `stop` SIGKILLs
each group and every process its members started (Ray's workers), never anything else (no
`ray stop`, which would end every Ray on the machine)."""
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from scripts.cluster_drill import commands as cmd


class ClusterError(RuntimeError):
    """A service did not start: one line saying which and why."""


def wait_port(port: int, timeout_s: float, process: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if process is not None and process.poll() is not None:
                break
            time.sleep(0.3)
    tail = log.read_text(errors="replace")[-1500:] if log and log.exists() else ""
    raise ClusterError(f"nothing listens on 127.0.0.1:{port} after {timeout_s:.0f} s; {tail}")


def group_processes(pgid: int) -> list[psutil.Process]:
    """The members of process group `pgid` and every process they started."""
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid:
                found[proc.pid] = proc
                for child in proc.children(recursive=True):
                    found[child.pid] = child
        except (psutil.Error, ProcessLookupError):
            pass
    return list(found.values())


def kill_tree(pgid: int, timeout_s: float = 30) -> int:
    """SIGKILL a process group and its descendants; the number of processes killed."""
    procs = group_processes(pgid)
    for proc in procs:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=timeout_s)
    return len(procs)


@dataclass
class Node:
    """A Ray node: its name, process group, folders, and (workers) the private folder under tmpfs."""

    name: str
    pgid: int
    folder: Path
    log: Path
    private: Path | None = None
    started_s: float = 0.0

    def processes(self) -> list[psutil.Process]:
        return group_processes(self.pgid)

    def raylet(self) -> psutil.Process | None:
        for proc in self.processes():
            try:
                if proc.name() == "raylet":
                    return proc
            except psutil.Error:
                pass
        return None

    def node_id(self) -> str:
        """Ray's id of this node (from its raylet's command line), "" when it is gone."""
        raylet = self.raylet()
        try:
            args = raylet.cmdline() if raylet is not None else []
        except psutil.Error:
            args = []
        return next((a.split("=", 1)[1] for a in args if a.startswith("--node_id=")), "")

    def private_view(self) -> Path | None:
        """The node's private folder as its processes see it (their mount namespace), through
        /proc/<raylet>/root; None when the node is gone."""
        raylet = self.raylet()
        if raylet is None or self.private is None:
            return None
        return Path(f"/proc/{raylet.pid}/root{self.private}")

    def runs_trial(self) -> bool:
        """Whether one of this node's Ray workers is running a Tune trial now."""
        for proc in self.processes():
            try:
                if "ImplicitFunc" in " ".join(proc.cmdline()):
                    return True
            except psutil.Error:
                pass
        return False


@dataclass
class Cluster:
    """Everything the drill starts, in `workdir`; `groups` names each service's process group."""

    workdir: Path
    keep: bool = False
    groups: dict[str, int] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    s3: cmd.S3 | None = None
    tracking_uri: str = ""
    mlflow_log: Path | None = None
    ray_address: str = ""
    token_file: Path | None = None
    private: Path | None = None
    cache_dir: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)
    node_names: dict[str, str] = field(default_factory=dict)   # Ray node id -> our name (w1, w2, ...)
    _pg_password: str = ""

    @classmethod
    def create(cls, keep: bool = False) -> "Cluster":
        # short: Ray's socket paths under the temp folders must fit 107 bytes
        workdir = Path(tempfile.mkdtemp(prefix="cd", dir="/tmp"))
        workdir.chmod(0o755)  # the postgres user reaches its folder
        cluster = cls(workdir, keep)
        cluster.private = workdir / "node-private"   # a tmpfs on each worker; a plain folder on the head
        cluster.private.mkdir()
        # the decoded CIFAR-10 cache, shared like a data mount (read-only input, not results)
        cluster.cache_dir = Path(os.environ.get("LOTTERY_CACHE_DIR") or
                                 Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lottery" / "data")
        return cluster

    # --- bookkeeping ------------------------------------------------------------------------------

    def _spawn(self, name: str, command: list[str], env: dict[str, str], log: Path, **kw) -> subprocess.Popen:
        process = subprocess.Popen(command, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True, **kw)
        self.groups[name] = process.pid
        self._save_groups()
        return process

    def _save_groups(self) -> None:
        (self.workdir / "groups.json").write_text(json.dumps(self.groups, indent=1))

    def env(self, name: str, token: bool = True) -> dict[str, str]:
        """The environment of node or driver `name`: its own HOME and Ray temp folder."""
        folder = self.workdir / name
        (folder / "home").mkdir(parents=True, exist_ok=True)
        return cmd.node_env(cmd.base_env(), home=folder / "home", token_file=self.token_file if token else None,
                            tracking_uri=self.tracking_uri, s3=self.s3, cache_dir=self.cache_dir,
                            temp_dir=folder / "ray")

    # --- services ---------------------------------------------------------------------------------

    def start_s3(self) -> None:
        started = time.time()
        self.s3 = cmd.S3(cmd.free_port())
        log = self.workdir / "moto.log"
        process = self._spawn("moto", cmd.moto_command(self.s3.port), {**cmd.base_env()}, log)
        wait_port(self.s3.port, 60, process, log)
        self.s3_client().create_bucket(Bucket=self.s3.bucket)
        self.timings["s3"] = time.time() - started

    def s3_client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.s3.endpoint, aws_access_key_id=self.s3.key_id,
                            aws_secret_access_key=self.s3.secret, region_name=cmd.REGION)

    def start_postgres(self) -> int:
        started = time.time()
        folder = self.workdir / "pg"
        (folder / "sockets").mkdir(parents=True)
        self._pg_password = secrets.token_hex(16)
        password_file = folder / "password"
        password_file.write_text(self._pg_password + "\n")
        shutil.chown(folder, "postgres", "postgres")
        shutil.chown(folder / "sockets", "postgres", "postgres")
        shutil.chown(password_file, "postgres", "postgres")
        port = cmd.free_port()
        pg = cmd.postgres_commands(folder / "data", folder / "sockets", port, password_file)
        log = self.workdir / "postgres.log"
        done = subprocess.run(pg["initdb"], capture_output=True, text=True, timeout=180)
        password_file.unlink()
        if done.returncode != 0:
            raise ClusterError(f"initdb failed: {(done.stderr or done.stdout).strip()[-800:]}")
        process = self._spawn("postgres", pg["server"], cmd.base_env(), log)
        wait_port(port, 60, process, log)
        for _ in range(20):  # it listens before it accepts connections
            made = subprocess.run(pg["createdb"], capture_output=True, text=True, timeout=60)
            if made.returncode == 0:
                break
            time.sleep(0.5)
        else:
            raise ClusterError(f"createdb failed: {made.stderr.strip()[-800:]}")
        self.timings["postgres"] = time.time() - started
        return port

    def start_mlflow(self, pg_port: int) -> None:
        started = time.time()
        port = cmd.free_port()
        self.mlflow_log = self.workdir / "mlflow-server.log"
        env = {**cmd.base_env(), **self.s3.env(), "PGPASSWORD": self._pg_password}
        process = self._spawn("mlflow", cmd.mlflow_command(port, cmd.postgres_uri(pg_port), self.s3.uri("mlflow")),
                              env, self.mlflow_log, cwd=self.workdir)
        wait_port(port, 180, process, self.mlflow_log)
        self.tracking_uri = f"http://127.0.0.1:{port}"
        self.timings["mlflow"] = time.time() - started

    def start_head(self) -> None:
        started = time.time()
        self.token_file = self.workdir / "token"
        self.token_file.write_text(secrets.token_hex(32))
        self.token_file.chmod(0o600)
        ports = cmd.node_ports(head=True)
        env = {**self.env("head"), **cmd.HEAD_TUNING}
        log = self.workdir / "head" / "ray-start.log"
        command = cmd.ray_head_command(self.workdir / "head" / "ray", ports)
        process = self._spawn("head", command, env, log)
        if process.wait(timeout=180) != 0:
            raise ClusterError(f"ray start --head failed: {log.read_text(errors='replace')[-1500:]}")
        self.ray_address = f"127.0.0.1:{ports['--port']}"
        self.nodes["head"] = Node("head", process.pid, self.workdir / "head", log, started_s=time.time() - started)
        self.node_names[self.nodes["head"].node_id()] = "head"
        self.timings["ray head"] = time.time() - started

    def start_worker(self, name: str) -> Node:
        """A worker in its own mount namespace: a tmpfs over the private folder, 2 CPUs, 2 fake GPUs."""
        started = time.time()
        folder = self.workdir / name
        ports = cmd.node_ports(head=False)
        env = self.env(name)
        log = folder / "ray-start.log"
        command = cmd.in_own_mount_namespace(cmd.ray_worker_command(self.ray_address, folder / "ray", ports),
                                             self.private)
        process = self._spawn(name, command, env, log)
        if process.wait(timeout=180) != 0:
            raise ClusterError(f"ray start of {name} failed: {log.read_text(errors='replace')[-1500:]}")
        node = Node(name, process.pid, folder, log, private=self.private, started_s=time.time() - started)
        self.nodes[name] = node
        self.node_names[node.node_id()] = name
        self.timings[f"ray {name}"] = time.time() - started
        return node

    def workers(self) -> list[Node]:
        """The worker nodes started and not killed."""
        return [n for name, n in self.nodes.items() if name != "head"]

    def kill_node(self, name: str) -> int:
        """SIGKILL a node's process group and every process its members started (a lost machine)."""
        node = self.nodes.pop(name)
        self.groups.pop(name, None)
        self._save_groups()
        return kill_tree(node.pgid)

    def name_of(self, node_id: str) -> str:
        return self.node_names.get(node_id, node_id[:8] or "?")

    def start(self, log=print) -> None:
        self.start_s3()
        log(f"  S3 (moto) at {self.s3.endpoint}, bucket {self.s3.bucket} ({self.timings['s3']:.1f} s)")
        pg_port = self.start_postgres()
        log(f"  PostgreSQL at 127.0.0.1:{pg_port}, database mlflow ({self.timings['postgres']:.1f} s)")
        self.start_mlflow(pg_port)
        log(f"  MLflow server {self.tracking_uri}: PostgreSQL store, artifacts in {self.s3.uri('mlflow')} "
            f"({self.timings['mlflow']:.1f} s)")
        self.start_head()
        log(f"  Ray head {self.ray_address} (0 CPUs, token auth) ({self.timings['ray head']:.1f} s)")
        for name in ("w1", "w2"):
            self.start_worker(name)
            log(f"  Ray worker {name}: own mount namespace, tmpfs on {self.private}, {cmd.NODE_CPUS} CPUs, "
                f"{cmd.NODE_GPUS} fake GPUs ({self.timings['ray ' + name]:.1f} s)")

    def stop(self) -> int:
        """Kill every group started (Ray first, the stores last); the folder goes too unless `keep`."""
        killed = stop_groups(self.groups)
        self.groups.clear()
        self._save_groups()
        if not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return killed


def stop_groups(groups: dict[str, int]) -> int:
    """Kill the named process groups, Ray's first, the stores last; PostgreSQL gets a fast shutdown
    first (it then removes its shared memory). The number of processes killed."""
    killed = 0
    stores = ("mlflow", "postgres", "moto")
    for name in [n for n in groups if n not in stores] + [n for n in stores if n in groups]:
        if name == "postgres":
            _signal_group(groups[name], signal.SIGINT)
            _wait_group(groups[name], 15)
        killed += kill_tree(groups[name])
    return killed


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_group(pgid: int, timeout_s: float) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline and group_processes(pgid):
        time.sleep(0.2)
