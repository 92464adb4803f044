"""The results folder: where every file of a run lives (the one place these names are spelled).

    <results>/mlflow.db                       the default MLflow store (SQLite)
    <results>/mlflow.db.lock                  serialises the store's first-time creation
    <results>/artifacts/                      MLflow's artifacts beside a SQLite store
    <results>/weights/<identity>/theta_<i>.pt θ_i: the weights after i epochs (also MLflow
    <results>/weights/<identity>/final.pt     artifacts weights/theta_<i>.pt, weights/final.pt)
    <results>/checkpoints/<identity>/         the training loop's epoch checkpoints
    <results>/checkpoints/<identity>.claim    who runs this identity now (see `pipelines.claim`)
    <results>/checkpoints/<identity>.claim.takeover   held while the claim is refreshed, taken over or released
    <results>/reports/<name>/                 `lottery report`'s tables and plots
    <results>/ray/                            Ray Tune's storage of local sweeps (a sweep's own
                                              report: <storage>/<sweep>/report/)

`<identity>` is a run config's identity hash (`RunConfig.identity()`). Every function returns an
absolute path when given an absolute results folder (`RunConfig.results_path()` is absolute).
"""
from pathlib import Path

WEIGHTS = "weights"        # the folder under <results> and the MLflow artifact folder of θ_i files
FINAL = "final"            # the weights name of a trained network: final.pt
# MLflow artifact: penultimate features (float32, n x d) on the CKA images, for a CKA made later
CKA_FEATURES = "cka/penultimate_features.pt"


def store_database(results: Path) -> Path:
    """The default SQLite MLflow store."""
    return results / "mlflow.db"


def store_lock(database: Path) -> Path:
    """The lock file beside a SQLite store (first-time migrations of one file race)."""
    return database.with_name(database.name + ".lock")


def artifacts_dir(results: Path) -> Path:
    """MLflow's artifact root beside the default SQLite store."""
    return results / "artifacts"


def weights_name(epoch: int | str) -> str:
    """The file name of θ_epoch (`theta_3.pt`), or of named weights (`final` -> `final.pt`)."""
    return f"theta_{epoch}.pt" if isinstance(epoch, int) else f"{epoch}.pt"


def weights_dir(results: Path, identity: str) -> Path:
    """The local folder of a run's weights (the same files are logged under `weights/`)."""
    return results / WEIGHTS / identity


def weights_artifact(epoch: int | str) -> str:
    """The MLflow artifact path of θ_epoch or of named weights (`weights/theta_3.pt`)."""
    return f"{WEIGHTS}/{weights_name(epoch)}"


def checkpoint_dir(results: Path, identity: str) -> Path:
    """The training loop's checkpoint folder of one identity."""
    return results / "checkpoints" / identity


def claim_file(checkpoints: Path) -> Path:
    """The claim file of the run that writes the checkpoint folder `checkpoints` (its sibling)."""
    return checkpoints.with_name(checkpoints.name + ".claim")


def reports_dir(results: Path, name: str) -> Path:
    """Where `lottery report NAME` writes by default."""
    return results / "reports" / name


def ray_storage(results: Path) -> Path:
    """Ray Tune's storage folder of local sweeps."""
    return results / "ray"
