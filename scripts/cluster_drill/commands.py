"""The command lines, environments and sweep files of the cluster drill: pure functions, no process
is started here (tests/test_cluster_drill.py checks them)."""
import os
import random
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent                 # the virtualenv's bin: ray, mlflow, moto_server
BUCKET = "lottery-drill"
REGION = "us-east-1"
# what a client must not inherit when it is meant to have no token (and what every node is given anew)
TOKEN_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
# variables of the calling shell that would point a node elsewhere
FOREIGN_VARS = (*TOKEN_VARS, "RAY_ADDRESS", "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME",
                "MLFLOW_TRACKING_PASSWORD", "AWS_PROFILE", "AWS_SESSION_TOKEN", "LOTTERY_RESULTS_DIR")
NODE_GPUS = 2            # fake GPUs per worker (there is no CUDA here: Ray only counts them)
NODE_CPUS = 2
OBJECT_STORE_BYTES = 200 * 1024 * 1024
RAY_PORT_FLAGS = ("--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
                  "--dashboard-agent-grpc-port", "--metrics-export-port", "--runtime-env-agent-port")
HEAD_PORT_FLAGS = ("--port", "--dashboard-port")
WORKER_PORTS = 40        # ports per node for Ray's worker processes
# a dead node is noticed in ~5 s instead of ~30 s (GCS health checks: every 1 s, 5 misses)
HEAD_TUNING = {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "5"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_range(count: int, low: int = 20000, high: int = 40000, tries: int = 200) -> int:
    """The first of `count` consecutive ports that are all free now."""
    rng = random.Random()
    for _ in range(tries):
        start = rng.randrange(low, high - count)
        if all(_port_free(p) for p in range(start, start + count)):
            return start
    raise RuntimeError(f"no {count} consecutive free ports between {low} and {high}")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class S3:
    """moto's S3 on 127.0.0.1: endpoint, bucket and the (made-up) credentials every process uses."""

    port: int
    bucket: str = BUCKET
    key_id: str = "drill"
    secret: str = field(default_factory=lambda: os.urandom(12).hex())

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def uri(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}"

    def env(self) -> dict[str, str]:
        """boto3 (claims), pyarrow (Ray's storage) and MLflow's S3 client all read these."""
        return {"AWS_ACCESS_KEY_ID": self.key_id, "AWS_SECRET_ACCESS_KEY": self.secret,
                "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_ENDPOINT_URL_S3": self.endpoint, "MLFLOW_S3_ENDPOINT_URL": self.endpoint,
                "AWS_EC2_METADATA_DISABLED": "true"}


def base_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without what would point a child at another cluster, server or token."""
    environ = dict(os.environ if environ is None else environ)
    return {k: v for k, v in environ.items() if k not in FOREIGN_VARS and not k.startswith("AWS_")}


def node_env(base: dict[str, str], *, home: Path, token_file: Path | None, tracking_uri: str, s3: S3,
             cache_dir: Path, temp_dir: Path) -> dict[str, str]:
    """The environment of a Ray node (and so of its trials) or of a driver: its own HOME and Ray temp
    folder, the token (RAY_AUTH_MODE=token and the token's file; None: no token at all), MLflow's
    server, S3, the shared data cache, the repository on the path."""
    env = {k: v for k, v in base.items() if k not in FOREIGN_VARS}
    env.update({"HOME": str(home), "RAY_TMPDIR": str(temp_dir), "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [base.get("PYTHONPATH")])]),
                "MLFLOW_TRACKING_URI": tracking_uri, "LOTTERY_CACHE_DIR": str(cache_dir),
                "RAY_USAGE_STATS_ENABLED": "0", "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
                **s3.env()})
    if token_file is not None:
        env.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_file)})
    return env


def port_flags(flags: tuple[str, ...], ports: dict[str, int]) -> list[str]:
    out = []
    for flag in flags:
        out += [flag, str(ports[flag])]
    return out


def node_ports(head: bool) -> dict[str, int]:
    """Free ports for every port flag a node takes, and the start of its worker port range."""
    flags = RAY_PORT_FLAGS + (HEAD_PORT_FLAGS if head else ())
    ports = {flag: free_port() for flag in flags}
    ports["workers"] = free_port_range(WORKER_PORTS)
    return ports


def ray_head_command(temp_dir: Path, ports: dict[str, int]) -> list[str]:
    """`ray start --head` that trains nothing (no CPUs, no GPUs), on its own ports and temp folder."""
    return [str(BIN / "ray"), "start", "--head", "--num-cpus", "0", "--num-gpus", "0",
            "--node-ip-address", "127.0.0.1", "--include-dashboard", "false", "--disable-usage-stats",
            "--temp-dir", str(temp_dir), "--object-store-memory", str(OBJECT_STORE_BYTES),
            *port_flags(RAY_PORT_FLAGS + HEAD_PORT_FLAGS, ports),
            "--min-worker-port", str(ports["workers"]), "--max-worker-port", str(ports["workers"] + WORKER_PORTS - 1)]


def ray_worker_command(address: str, temp_dir: Path, ports: dict[str, int], *, cpus: int = NODE_CPUS,
                       gpus: int = NODE_GPUS) -> list[str]:
    """`ray start --address` of a worker with `cpus` CPUs and `gpus` (fake) GPUs."""
    return [str(BIN / "ray"), "start", "--address", address, "--num-cpus", str(cpus), "--num-gpus", str(gpus),
            "--node-ip-address", "127.0.0.1", "--disable-usage-stats", "--temp-dir", str(temp_dir),
            "--object-store-memory", str(OBJECT_STORE_BYTES), *port_flags(RAY_PORT_FLAGS, ports),
            "--min-worker-port", str(ports["workers"]), "--max-worker-port", str(ports["workers"] + WORKER_PORTS - 1)]


def in_own_mount_namespace(command: list[str], private: Path, size: str = "2g") -> list[str]:
    """`command` in a new mount namespace (private propagation) where a fresh tmpfs covers
    `private`: what the process and everything it starts write there is that node's alone."""
    mount = 'mount -t tmpfs -o size="$1",mode=0755 lottery-node-private "$2" && shift 2 && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", mount, "sh", size, str(private),
            *command]


def moto_command(port: int) -> list[str]:
    return [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]


def postgres_commands(data: Path, sockets: Path, port: int, password_file: Path) -> dict[str, list[str]]:
    """initdb and the server, both run as the `postgres` user; TCP on 127.0.0.1 needs the password."""
    run_as = ["runuser", "-u", "postgres", "--"]
    initdb = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)), Path("initdb"))
    return {
        "initdb": [*run_as, str(initdb), "-D", str(data), "-U", "postgres", "--auth-local=trust",
                   "--auth-host=scram-sha-256", f"--pwfile={password_file}", "-E", "UTF8", "--no-sync"],
        "server": [*run_as, str(initdb.with_name("postgres")), "-D", str(data), "-p", str(port),
                   "-k", str(sockets), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                   "-c", "max_connections=100"],
        "createdb": [*run_as, str(initdb.with_name("createdb")), "-h", str(sockets), "-p", str(port),
                     "-U", "postgres", "mlflow"],
    }


def postgres_uri(port: int) -> str:
    """The backend store URI without its password (the server reads PGPASSWORD)."""
    return f"postgresql+psycopg2://postgres@127.0.0.1:{port}/mlflow"


def mlflow_command(port: int, backend_uri: str, artifacts: str, workers: int = 2) -> list[str]:
    return [str(BIN / "mlflow"), "server", "--backend-store-uri", backend_uri, "--artifacts-destination", artifacts,
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]


def lottery(*args: str) -> list[str]:
    """`lottery ARGS` in this interpreter."""
    return [sys.executable, "-m", "pipelines.cli", *args]


# --- sweep files --------------------------------------------------------------------------------

DATA_DIR = Path(os.environ.get("LOTTERY_DATA_DIR") or ROOT.parent / "shared" / "data" / "cifar10")


def base_config(*, results_dir: Path, tracking_uri: str, experiment: str, epochs: int = 3, train_size: int = 500,
                device: str = "cpu", data_dir: Path = DATA_DIR) -> dict:
    """A tiny run: ResNet20 on `train_size` CIFAR-10 images for `epochs` epochs, no robustness pass;
    θ_0 and θ_1 kept (ticket_rewind rewinds to θ_1)."""
    return {"device": device, "model": {"name": "resnet20", "shortcut": "A", "init": "torch"},
            "data": {"name": "cifar10", "root": str(data_dir), "train_size": train_size, "test_size": 200},
            "training": {"epochs": epochs, "batch_size": 64, "lr": 0.05, "keep_epochs": [0, 1]},
            "pruning": {"images_per_class": 2},
            "evaluation": {"corruptions": [], "attacks": [], "cka_images": 0},
            "tracking": {"results_dir": str(results_dir), "tracking_uri": tracking_uri, "experiment": experiment}}


def sweep_spec(base: dict, *, grid=None, optuna=None, cpu: float = 1, gpu: float = 0, max_concurrent: int = 4,
               retries: int = 1) -> dict:
    spec = {"base": base, "resources": {"cpu": cpu, "gpu": gpu}, "max_concurrent": max_concurrent,
            "retries": retries}
    spec.update({"grid": grid} if optuna is None else {"optuna": optuna})
    return spec
