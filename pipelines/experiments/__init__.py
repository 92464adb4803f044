"""The pipeline registry: a new experiment is one file with `f(ctx) -> Trained` and
`needs_trained_dense(pruning) -> bool`, plus one line here."""
from pipelines.experiments import (
    dense,
    filter_ticket,
    iterative,
    reinit,
    ticket_init,
    ticket_rewind,
)
from pipelines.experiments.base import Trained

_MODULES = (dense, ticket_init, ticket_rewind, filter_ticket, reinit, iterative)
PIPELINES = {module.__name__.rsplit(".", 1)[1]: getattr(module, module.__name__.rsplit(".", 1)[1])
             for module in _MODULES}


def needs_trained_dense(cfg) -> bool:
    """Whether a run of `cfg` (a RunConfig) starts only once its dense run has finished (it reads
    θ_n or θ_i, or compares every round with it). A sweep schedules such runs after the dense
    baselines; every other run trains beside them."""
    module = _MODULES[list(PIPELINES).index(cfg.pipeline)]
    return module.needs_trained_dense(cfg.read_settings().pruning)


__all__ = ["PIPELINES", "Trained", "needs_trained_dense"]
