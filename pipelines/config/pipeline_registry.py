"""The pipeline registry: every experiment `lottery run` knows, declared once, with its settings.

A new pipeline is one file in `pipelines/experiments/` with `f(ctx) -> Trained` plus one
`register_pipeline` line below. The declaration says what the rest of the project derives:

    run                 "module:function", imported when a run starts (experiments import torch;
                        this module does not, so a config is validated before torch loads)
    prunes              False only for the dense run: its pruning section is not read
    level               the criterion level it scores at ("block", or "weight" for filter pruning)
    controls            it takes `pruning.control` (the control registry's values)
    options             its own settings (`Option`: type, default, range, help); `PruningConfig`
                        holds each as a field declared by them (`pruning.<name>`)
    reads(pruning)      which pipeline settings (any pipeline's `options`) a run reads: every other
                        one is put back to its default before the identity is hashed
    needs_trained_dense(pruning)   the run starts from a finished dense run (a sweep runs it later)
    label(pruning)      extra words of the run's name (`RunConfig.describe`)
    tags(pruning)       extra MLflow tags of its runs
    check(cfg)          its rules that span fields (one-line LotteryError)

`registry`-style like the criteria and controls: names in registration order, `get_pipeline(name)`.
"""
from collections.abc import Callable
from dataclasses import dataclass

from lottery_core.errors import LotteryError
from lottery_core.lazy import resolve
from lottery_core.options import Option

LEVELS = ("block", "weight")


def _nothing(pruning) -> tuple:
    return ()


def _never(pruning) -> bool:
    return False


@dataclass(frozen=True)
class Pipeline:
    """One registered pipeline (see the module doc for each field)."""

    name: str
    run: Callable | str
    summary: str
    prunes: bool = True
    level: str = "block"
    controls: bool = False
    options: tuple[Option, ...] = ()
    reads: Callable = _nothing
    needs_trained_dense: Callable = _never
    label: Callable = _nothing
    tags: Callable = lambda pruning: {}
    check: Callable | None = None

    @property
    def fn(self) -> Callable:
        """The pipeline function (imported here: experiments import torch)."""
        return resolve(self.run)


_PIPELINES: dict[str, Pipeline] = {}


def register_pipeline(pipeline: Pipeline) -> None:
    """Make `pipeline.name` a value of the config's `pipeline`."""
    if pipeline.name in _PIPELINES:
        raise LotteryError(f"pipeline {pipeline.name!r} is registered twice")
    if pipeline.level not in LEVELS:
        raise LotteryError(f"pipeline {pipeline.name!r}: level must be one of {', '.join(LEVELS)}")
    _PIPELINES[pipeline.name] = pipeline


def pipeline_names() -> tuple[str, ...]:
    """Every registered pipeline, in registration order (dense first)."""
    return tuple(_PIPELINES)


def get_pipeline(name: str) -> Pipeline:
    if name not in _PIPELINES:
        raise LotteryError(f"unknown pipeline {name!r}; choose one of: {', '.join(_PIPELINES)}")
    return _PIPELINES[name]


def pipeline_options() -> dict[str, Option]:
    """{name: declaration} of every pipeline's own settings."""
    return {o.name: o for p in _PIPELINES.values() for o in p.options}


def _at(module: str) -> str:
    return f"pipelines.experiments.{module}:{module}"


# --- the pipelines -------------------------------------------------------------------------------

REWIND_EPOCH = Option("rewind_epoch", int, 0, "ticket_rewind and iterative_mode=rewind: rewind point i (weights "
                      "θ_i, lr schedule from epoch i)", low=0)
ITERATIVE_MODES = ("init", "rewind")
ITERATIVE_OPTIONS = (
    Option("iterative_mode", str, "init", "iterative: init re-scores the current ticket at its θ_0 each round, "
           "no training between rounds, then trains the last ticket n epochs; rewind (Algorithm 1 per round) "
           "scores the trained ticket, removes k more, rewinds to the dense run's θ_i and trains n − i epochs",
           choices=ITERATIVE_MODES),
    Option("blocks_per_round", int, 1, "iterative: blocks removed per round, k (the last round removes fewer "
           "when p is not a multiple of k)", low=1),
    Option("macs_budget", float, None, "iterative: stop after the first round whose ticket has at most this "
           "fraction of the dense MACs (None = no budget)", low=0.0, high=1.0, low_open=True, optional=True),
    Option("stop_xi", float, None, "iterative: stop at the first round whose ticket loses to dense by more than "
           "this many points of validation accuracy (needs data.val_size > 0; in iterative_mode=init every "
           "round's ticket is then trained n epochs); the run keeps the round before it (None = no accuracy "
           "stop)", optional=True),
)


def _rewinds(p) -> bool:
    return p.iterative_mode == "rewind"


def _iterative_label(p) -> list[str]:
    return [f"k={p.blocks_per_round}", p.iterative_mode,
            *([f"macs<={p.macs_budget:g}"] if p.macs_budget is not None else []),
            *([f"xi={p.stop_xi:g}"] if p.stop_xi is not None else []),
            *([f"i={p.rewind_epoch}"] if _rewinds(p) else [])]


def _check_iterative(cfg) -> None:
    """Rounds of k blocks up to p; an accuracy stop needs a validation split to judge on."""
    p = cfg.pruning
    if p.stage_counts:
        raise LotteryError("pruning.stage_counts applies to one-shot tickets; pipeline=iterative removes "
                           "pruning.blocks_per_round blocks a round wherever the criterion scores lowest")
    if p.p < 1:
        raise LotteryError("pipeline=iterative needs pruning.p >= 1 (the most blocks its rounds remove in all)")
    if p.blocks_per_round > p.p:
        raise LotteryError(f"pruning.blocks_per_round={p.blocks_per_round} exceeds pruning.p={p.p}: one round "
                           "would remove more than all rounds together; lower k or raise p")
    if p.stop_xi is not None and cfg.data.val_size == 0:
        raise LotteryError(f"pruning.stop_xi={p.stop_xi} judges each round on the validation split, but "
                           "data.val_size=0; set data.val_size (e.g. 500) or drop pruning.stop_xi")


register_pipeline(Pipeline(
    "dense", _at("dense"), "train the unpruned network; keep θ_0 and the rewind epochs' weights", prunes=False))
register_pipeline(Pipeline(
    "ticket_init", _at("ticket_init"), "Algorithm 2: plan the ticket at θ_0, train it n epochs", controls=True))
register_pipeline(Pipeline(
    "ticket_rewind", _at("ticket_rewind"), "Algorithm 1: plan on the trained dense θ_n, rewind to θ_i, train n − i "
    "epochs", controls=True, options=(REWIND_EPOCH,), reads=lambda p: ("rewind_epoch",),
    needs_trained_dense=lambda p: True, label=lambda p: [f"i={p.rewind_epoch}"]))
register_pipeline(Pipeline(
    "filter_ticket", _at("filter_ticket"), "the same criterion at filter level, pruned to the block ticket's size",
    level="weight", options=(Option("filter_match", str, "filters", "filter_ticket: prune filters until the block "
                                    "ticket's filter count (the paper's Table 3) or its MACs is matched",
                                    choices=("filters", "macs")),),
    reads=lambda p: ("filter_match",)))
register_pipeline(Pipeline(
    "reinit", _at("reinit"), "the ticket's architecture with fresh weights (Liu et al.'s control)",
    options=(Option("reinit_of", str, "ticket_init", "reinit: the architecture of the ticket_init ticket (planned "
                    "at θ_0) or of the ticket_rewind ticket (planned on the trained dense θ_n)",
                    choices=("ticket_init", "ticket_rewind")),),
    reads=lambda p: ("reinit_of",), needs_trained_dense=lambda p: p.reinit_of == "ticket_rewind",
    label=lambda p: ["of=rewind"] if p.reinit_of == "ticket_rewind" else [],
    tags=lambda p: {"reinit_of": p.reinit_of}))
register_pipeline(Pipeline(
    "iterative", _at("iterative"), "a block ticket found in rounds of k blocks, at θ_0 or rewinding each round",
    options=ITERATIVE_OPTIONS,
    reads=lambda p: (*(o.name for o in ITERATIVE_OPTIONS), *(("rewind_epoch",) if _rewinds(p) else ())),
    needs_trained_dense=lambda p: _rewinds(p) or p.stop_xi is not None, label=_iterative_label,
    tags=lambda p: {"iterative_mode": p.iterative_mode, "blocks_per_round": str(p.blocks_per_round)},
    check=_check_iterative))
