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

from lottery_core.errors import LotteryError
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
        raise LotteryError(f"cannot open storage {root}: {str(err).splitlines()[0]}") from None


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
    target = Path(path) / name / META
    partial = target.with_name(f".{META}.{os.getpid()}.partial")
    with open(partial, "wb") as out:
        out.write(body)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, target)


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
        raise LotteryError(f"{file} is damaged ({err.__class__.__name__}: {str(err).splitlines()[0]}); it is the "
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


def check_cluster(address: str | None, root: str, shared: bool, uri: str) -> None:
    """Before submitting to a cluster: shared storage and an MLflow server (then the address itself)."""
    if not address:
        return
    if not is_uri(root) and not shared:
        raise LotteryError(f"on a cluster every node must reach the sweep's storage, and {root} is a local path: "
                           f"pass --storage s3://bucket/sweeps (or gs://...), or a path every node mounts "
                           f"with --shared-storage")
    if not uri.startswith(("http://", "https://")):
        raise LotteryError(f"on a cluster trials log to an MLflow tracking server, not {uri}: run one on the "
                           f"head node (the launch files in tune/cluster/ do) and set "
                           f"MLFLOW_TRACKING_URI=http://<head>:5000 (or tracking.tracking_uri)")
    probe_address(address)
