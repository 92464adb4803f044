"""The pipeline registry: a new experiment is one file with `f(ctx) -> Trained` plus one line here."""
from pipelines.experiments.base import Trained
from pipelines.experiments.dense import dense
from pipelines.experiments.filter_ticket import filter_ticket
from pipelines.experiments.iterative import iterative
from pipelines.experiments.reinit import reinit
from pipelines.experiments.ticket_init import ticket_init
from pipelines.experiments.ticket_rewind import ticket_rewind

PIPELINES = {
    "dense": dense,
    "ticket_init": ticket_init,
    "ticket_rewind": ticket_rewind,
    "filter_ticket": filter_ticket,
    "reinit": reinit,
    "iterative": iterative,
}

__all__ = ["PIPELINES", "Trained"]
