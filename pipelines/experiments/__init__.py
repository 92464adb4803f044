"""The experiments: one file per pipeline with `f(ctx) -> Trained`, each declared once, with its
settings, in `pipelines.config.pipeline_registry` (one `register_pipeline` line)."""
from pipelines.config.pipeline_registry import get_pipeline
from pipelines.experiments.base import Trained


def needs_trained_dense(cfg) -> bool:
    """Whether a run of `cfg` (a RunConfig) starts only once its dense run has finished (it reads
    θ_n or θ_i, or compares every round with it). A sweep schedules such runs after the dense
    baselines; every other run trains beside them."""
    return get_pipeline(cfg.pipeline).needs_trained_dense(cfg.read_settings().pruning)


__all__ = ["Trained", "needs_trained_dense"]
