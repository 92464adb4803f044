"""Where a sweep lives, and the checks a cluster needs before anything is submitted.

Layout under the storage root (default `<results_dir>/ray`; a cloud URI or a shared path on a
cluster):

    <root>/<sweep>/sweep.json    the validated sweep, its MLflow parent run and tracking URI
    <root>/<sweep>/phase0/       Ray Tune's experiment of the dense baselines (`Tuner.restore` reads it)
    <root>/<sweep>/phase1/       ... of the tickets (or the Optuna search)
    <root>/<sweep>/report/       the report (local or shared storage)

Files are read and written through pyarrow's file systems, as Ray Tune does, so the same code
serves a local folder, an NFS path and `s3://` / `gs://` URIs.
"""
import json
import os
from pathlib import Path

from lottery_core.errors import LotteryError, first_line
from lottery_core.files import write_atomic
from pipelines import layout
from tune.ray_cluster import probe_address

CLOUD_SCHEMES = ("s3://", "gs://", "gcs://", "abfs://", "az://", "hdfs://")
META = "sweep.json"
META_KEYS = ("sweep", "parent_run_id", "tracking_uri", "experiment")


def storage_root(results_dir, storage: str | None = None) -> str:
    """Ray Tune's storage: a URI as given, a path made absolute, or `<results_dir>/ray`."""
    if storage:
        return storage.rstrip("/") if "://" in storage else str(Path(storage).expanduser().resolve())
    return str(layout.ray_storage(Path(results_dir).expanduser().resolve()))


def is_uri(root: str) -> bool:
    return "://" in root


def _fs(root: str):
    import pyarrow.fs

    if not is_uri(root):
        return pyarrow.fs.LocalFileSystem(), root
    try:
        return pyarrow.fs.FileSystem.from_uri(root)
    except Exception as err:  # pyarrow raises ArrowInvalid / OSError with a long message
        raise LotteryError(f"cannot open storage {root}: {first_line(err)}") from None


def sweep_exists(root: str, name: str) -> bool:
    import pyarrow.fs

    fs, path = _fs(root)
    return fs.get_file_info(f"{path}/{name}").type != pyarrow.fs.FileType.NotFound


def write_meta(root: str, name: str, meta: dict) -> None:
    """Write sweep.json atomically: a temporary file moved over it (a rename on local and NFS
    paths; object stores write whole objects), so a reader never sees half a file."""
    fs, path = _fs(root)
    fs.create_dir(f"{path}/{name}", recursive=True)
    body = json.dumps(meta, indent=2).encode()
    if is_uri(root):
        with fs.open_output_stream(f"{path}/{name}/{META}") as out:
            out.write(body)
        return
    write_atomic(Path(path) / name / META, body)


def read_meta(root: str, name: str) -> dict:
    """The sweep's metadata; a one-line error listing the known sweeps when there is none."""
    import pyarrow.fs

    fs, path = _fs(root)
    file = f"{path}/{name}/{META}"
    if fs.get_file_info(file).type == pyarrow.fs.FileType.NotFound:
        raise LotteryError(f"no sweep named {name!r} in {root}; known sweeps: {', '.join(known_sweeps(root)) or 'none'}")
    with fs.open_input_stream(file) as handle:
        body = handle.read()
    try:
        meta = json.loads(body.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LotteryError(f"{file} is damaged ({err.__class__.__name__}: {first_line(err)}); it is the "
                           f"sweep's record and cannot be guessed: start the sweep again under a new --name "
                           f"(finished runs are reused from MLflow, nothing is trained twice)") from None
    missing = [k for k in META_KEYS if k not in meta] if isinstance(meta, dict) else list(META_KEYS)
    if missing:
        raise LotteryError(f"{file} lacks {', '.join(missing)}: not a sweep record this version wrote; start "
                           "the sweep again under a new --name (finished runs are reused from MLflow)")
    return meta


def known_sweeps(root: str) -> list[str]:
    import pyarrow.fs

    fs, path = _fs(root)
    if fs.get_file_info(path).type != pyarrow.fs.FileType.Directory:
        return []
    found = fs.get_file_info(pyarrow.fs.FileSelector(path, recursive=False))
    return sorted(Path(info.path).name for info in found if info.type == pyarrow.fs.FileType.Directory
                  and fs.get_file_info(f"{info.path}/{META}").type == pyarrow.fs.FileType.File)


def cluster_address(address: str | None) -> str | None:
    """The cluster to join: `--address`, else $RAY_ADDRESS, else None (a local Ray)."""
    return address or os.environ.get("RAY_ADDRESS") or None


def check_cluster(address: str | None, uri: str) -> None:
    """Before joining a cluster: an MLflow server (every node logs to it), then the address itself.
    Whether the storage is shared is checked once Ray is up (`check_shared`)."""
    if not address:
        return
    if not uri.startswith(("http://", "https://")):
        raise LotteryError(f"on a cluster trials log to an MLflow tracking server, not {uri}: run one on the "
                           f"head node (the launch files in tune/cluster/ do) and set "
                           f"MLFLOW_TRACKING_URI=http://<head>:5000 (or tracking.tracking_uri)")
    probe_address(address)


MARKER_DIR = ".lottery-storage-check"


def check_shared(root: str) -> int:
    """Refuse, in one line, a storage that some node of the cluster cannot read: the driver writes a
    marker (a random token) under `root`, a Ray task pinned to every alive node reads it back
    (a node without CPUs, a head started with `--num-cpus 0`, too), and the marker is removed.
    Returns the number of nodes that read it. Needs an initialised Ray."""
    import uuid

    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    fs, path = _fs(root)
    token = uuid.uuid4().hex
    marker = f"{path}/{MARKER_DIR}/{token}"
    try:
        fs.create_dir(f"{path}/{MARKER_DIR}", recursive=True)
        with fs.open_output_stream(marker) as out:
            out.write(token.encode())
    except OSError as err:
        raise LotteryError(f"cannot write to storage {root}: {first_line(err)}") from None
    try:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        reader = ray.remote(num_cpus=0)(read_marker)
        answers = ray.get([reader.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                           .remote(root, f"{MARKER_DIR}/{token}") for n in nodes])
    finally:
        try:
            fs.delete_file(marker)
        except OSError:
            pass
    problem = not_shared(root, nodes, answers, token)
    if problem:
        raise LotteryError(problem)
    return len(nodes)


def not_shared(root: str, nodes: list[dict], answers: list[str], token: str) -> str | None:
    """The refusal (one line) for the first node (a `ray.nodes()` entry) whose answer is not the
    marker's `token`, or None when every node read it."""
    for node, answer in zip(nodes, answers, strict=True):
        if answer != token:
            return (f"storage {root} is not shared: node {node.get('NodeManagerAddress', '?')} "
                    f"(id {node['NodeID'][:12]}) cannot read the marker the driver wrote there "
                    f"({answer}); pass --storage s3://bucket/prefix (or gs://...), or a path every node mounts")
    return None


def read_marker(root: str, relative: str) -> str:
    """The token in `<root>/<relative>` as this node reads it, or what went wrong (runs on every node)."""
    try:
        fs, path = _fs(root)
        with fs.open_input_stream(f"{path}/{relative}") as handle:
            return handle.read().decode(errors="replace")
    except Exception as err:  # FileNotFoundError, pyarrow's OSError, credentials: all mean "cannot read"
        return f"{type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]}"
