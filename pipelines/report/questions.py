"""Declared questions: what a study asks, declared before it runs, and the report's answer to each.

A question names a family of comparisons, its endpoint and its margin ξ. It is declared with the
sweep (the sweep file's `questions:` key) or in a file beside the records (`lottery report
--questions FILE`):

    margin: 0.5            # ξ in accuracy points, for every question that gives none
    questions:
      - id: Q1
        ask: Do GraSP and SNIP block tickets at initialization win against the dense network?
        compare: ticket_vs_dense
        select: {pipeline: ticket_init, criterion: [grasp, snip]}
      - id: Q2
        ask: Does the criterion choose better blocks than the controls?
        compare: criterion_vs_control
        select: {pipeline: ticket_init, criterion: [grasp, snip], p: [3, 5]}
        controls: [random, same_stage_random, inverted, uniform]

`compare` is one of `COMPARISONS`, or a list of them whose tests are of one kind (a family may hold
criterion − control and iterative − one-shot: both ask whether the way blocks are chosen matters); `select` keeps the configurations whose columns (`SELECT_KEYS`)
have one of the values given; `endpoint` is `acc` (the default: the final fp32 evaluation on the
whole test split) or a robustness accuracy (`corruption_acc`, `adv_acc.<attack>.eps<k>`, …). Every
comparison a question selects is one member of its family: the Holm adjustment runs over them
(`stats.adjust`), and the answer's prose is generated from the adjusted verdicts (`Answer.prose`),
never written by hand. A comparison that no question selects is exploratory, and the report's
other tables say so.

Why ξ = 0.5 points by default: the paper calls a ticket winning when it matches the dense network,
and its effects are 0.1–1 point (Tables 1–2); half a point is the smallest difference a CIFAR
practitioner acts on, about the seed-to-seed SD of a fully trained CIFAR ResNet, and the binomial
standard error of one accuracy near 60 % on 10,000 test images. A study whose noise is larger says
so in its planning SD and the seeds it would need.
"""
import itertools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from lottery_core.criteria.control_registry import control_names, get_control
from lottery_core.errors import LotteryError
from pipelines.report import stats

DEFAULT_MARGIN = 0.5   # ξ, accuracy points (module docstring)
DEFAULT_ENDPOINT = "acc"
# the endpoints a question may declare: final accuracies of the trained network (run_schema)
ENDPOINT = re.compile(r"^(acc|corruption_acc(\.[a-z_]+)?|shifted_acc\.[a-z0-9_]+|adv_acc\.[a-z]+\.eps\d+)$")
SELECT_KEYS = ("pipeline", "model", "criterion", "control", "p", "rewind_epoch", "planned_stage_counts",
               "filter_match", "iterative")
# what a criterion is compared with: the random criterion, every registered control
# (`lottery_core.criteria.control_registry`, in its order), and the reinit pipeline of the same ticket
CONTROLS = ("random", *control_names()[1:], "reinit")
QUESTION_KEYS = ("id", "ask", "compare", "select", "controls", "margin", "endpoint")
TOP_KEYS = ("margin", "endpoint", "questions")


@dataclass(frozen=True)
class Question:
    """One declared question: its id, the question in words, the kind of comparison (`COMPARISONS`),
    which configurations it selects, the controls (criterion_vs_control), margin ξ (points) and
    endpoint (a final accuracy metric, %)."""

    id: str
    ask: str
    compare: tuple[str, ...]
    select: tuple[tuple[str, tuple], ...] = ()
    controls: tuple[str, ...] = ()
    margin: float = DEFAULT_MARGIN
    endpoint: str = DEFAULT_ENDPOINT

    def selects(self, row: Mapping) -> bool:
        """Whether a configuration (a mapping of `SELECT_KEYS` columns) is in this question's family."""
        return all(_text(row.get(key)) in {_text(v) for v in values} for key, values in self.select)

    def to_dict(self) -> dict:
        return {"id": self.id, "ask": self.ask, "compare": list(self.compare),
                "select": {k: list(v) for k, v in self.select}, "controls": list(self.controls),
                "margin": self.margin, "endpoint": self.endpoint}


def _text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def read_questions(raw, where: str = "questions") -> tuple[Question, ...]:
    """Validated questions from a mapping {margin?, endpoint?, questions: [...]} (or the list alone);
    a one-line LotteryError naming the key and what is allowed."""
    if raw is None:
        return ()
    if isinstance(raw, list):
        raw = {"questions": raw}
    if not isinstance(raw, Mapping):
        raise LotteryError(f"{where}: a mapping with keys {', '.join(TOP_KEYS)}, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        raise LotteryError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(TOP_KEYS)}")
    margin = _margin(raw.get("margin", DEFAULT_MARGIN), f"{where}.margin")
    endpoint = _endpoint(raw.get("endpoint", DEFAULT_ENDPOINT), f"{where}.endpoint")
    items = raw.get("questions")
    if not isinstance(items, list) or not items:
        raise LotteryError(f"{where}.questions: a non-empty list of questions (keys {', '.join(QUESTION_KEYS)})")
    out, seen = [], set()
    for i, item in enumerate(items):
        q = _question(item, f"{where}.questions[{i}]", margin, endpoint)
        if q.id in seen:
            raise LotteryError(f"{where}.questions[{i}].id: {q.id!r} is declared twice; give each question its own id")
        seen.add(q.id)
        out.append(q)
    return tuple(out)


def load_questions(path) -> tuple[Question, ...]:
    """Questions declared in a YAML file (`read_questions`): a sweep file's `questions:` key (a
    file with `grid`, `base` or `optuna`), else the file's own questions mapping."""
    from pipelines import yaml_strict

    path = Path(path)
    raw = yaml_strict.read_mapping(path, "questions", f"a mapping with keys {', '.join(TOP_KEYS)}, got {{got}}")
    if any(key in raw for key in ("grid", "base", "optuna")):   # a sweep file
        if raw.get("questions") is None:
            raise LotteryError(f"{path.name}: this sweep file declares no questions (its `questions:` key)")
        return read_questions(raw["questions"], f"{path.name}: questions")
    return read_questions(raw, path.name)


def _margin(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise LotteryError(f"{where}: a margin ξ in accuracy points, a number ≥ 0, got {value!r}")
    return float(value)


def _endpoint(value, where: str) -> str:
    if not isinstance(value, str) or not ENDPOINT.match(value):
        raise LotteryError(f"{where}: {value!r} is not a final accuracy; allowed: acc (the final fp32 evaluation on "
                           f"the test split), corruption_acc[.<corruption>], shifted_acc.<set>, adv_acc.<attack>.eps<k> "
                           f"(per-epoch accuracies are for curves only)")
    return value


def _question(item, where: str, margin: float, endpoint: str) -> Question:
    if not isinstance(item, Mapping):
        raise LotteryError(f"{where}: a mapping with keys {', '.join(QUESTION_KEYS)}, got {item!r}")
    unknown = sorted(set(item) - set(QUESTION_KEYS))
    if unknown:
        raise LotteryError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(QUESTION_KEYS)}")
    for key in ("id", "ask"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise LotteryError(f"{where}.{key}: required, a non-empty string")
    compare = item.get("compare")
    compare = tuple(compare) if isinstance(compare, list) else (compare,)
    for name in compare:
        if name not in COMPARISONS:
            raise LotteryError(f"{where}.compare: {name!r} is not a comparison; allowed: {', '.join(COMPARISONS)} "
                               f"(one, or a list of the same kind)")
    if len({COMPARISONS[name][1] for name in compare}) > 1:
        raise LotteryError(f"{where}.compare: {', '.join(compare)} are tested differently (ticket_vs_dense has a "
                           f"margin below dense, the others a difference); declare them as separate questions")
    select = item.get("select") or {}
    if not isinstance(select, Mapping):
        raise LotteryError(f"{where}.select: a mapping of {', '.join(SELECT_KEYS)} to a value or a list of values")
    bad = sorted(set(select) - set(SELECT_KEYS))
    if bad:
        raise LotteryError(f"{where}.select: unknown column {bad[0]!r}; allowed: {', '.join(SELECT_KEYS)}")
    chosen = tuple((k, tuple(v) if isinstance(v, list) else (v,)) for k, v in select.items())
    controls = item.get("controls") or []
    if not isinstance(controls, list) or any(c not in CONTROLS for c in controls):
        raise LotteryError(f"{where}.controls: a list of {', '.join(CONTROLS)}, got {controls!r}")
    if "criterion_vs_control" in compare and not controls:
        raise LotteryError(f"{where}.controls: criterion_vs_control needs the controls it compares with "
                           f"({', '.join(CONTROLS)})")
    return Question(item["id"].strip(), item["ask"].strip(), compare, chosen, tuple(controls),
                    _margin(item.get("margin", margin), f"{where}.margin"),
                    _endpoint(item.get("endpoint", endpoint), f"{where}.endpoint"))


# --- the comparisons a question can declare -------------------------------------------------


@dataclass
class Comparison:
    """One member of a family: what is compared (`label`, table columns), the per-seed differences
    (points, index = seed), and both arms' per-seed values (columns config, seed, value) for the
    planning SD."""

    label: dict
    diffs: pd.Series
    arms: pd.DataFrame
    key: tuple = ()
    extra: dict = field(default_factory=dict)   # columns appended to its row (e.g. the percentile among draws)


CONFIG_KEYS = ["pipeline", "model", "criterion", "control", "reinit_of", "p", "planned_stage_counts", "rewind_epoch",
               "iterative"]


def per_seed(g: pd.DataFrame, column: str) -> pd.Series:
    """`column` averaged over the rows of each seed (several random draws of one seed count once)."""
    if column not in g or not len(g):
        return pd.Series(dtype=float)
    return g.groupby("seed")[column].mean().dropna()


def config_name(cfg: Mapping) -> str:
    """A configuration in a few words: 'ticket_init grasp p=5', 'ticket_rewind kl p=3 θ2 (same_stage_random)'."""
    parts = [str(cfg.get("pipeline")), str(cfg.get("criterion"))]
    if cfg.get("pipeline") not in ("dense",):
        parts.append(f"p={cfg.get('p')}")
    if cfg.get("planned_stage_counts"):
        parts.append(f"({cfg['planned_stage_counts']})")
    if cfg.get("pipeline") == "ticket_rewind" or str(cfg.get("iterative", "")).startswith("rewind"):
        parts.append(f"θ{cfg.get('rewind_epoch')}")
    if cfg.get("iterative"):
        parts.append(str(cfg["iterative"]))
    if cfg.get("control") not in (None, "", "none") and cfg.get("control") != cfg.get("criterion"):
        parts.append(f"[{cfg['control']}]")
    if cfg.get("pipeline") == "reinit":
        parts.append(f"of {cfg.get('reinit_of') or 'ticket_init'}")
    if cfg.get("pipeline") == "filter_ticket" and cfg.get("filter_match"):
        parts.append(f"matched {cfg['filter_match']}")
    return " ".join(parts)


def _between(name: str, other: str, mine: pd.DataFrame, theirs: pd.DataFrame, endpoint: str, key: tuple,
             label: str | None = None) -> Comparison:
    """Arm `name` (runs `mine`) − arm `other` (runs `theirs`) per seed, over the seeds both have."""
    a, b = per_seed(mine, endpoint), per_seed(theirs, endpoint)
    common = a.index.intersection(b.index)
    return Comparison({"comparison": label or f"{name} − {other}"}, a[common] - b[common],
                      _arms((name, a[common]), (other, b[common])), key)


def _arms(*arms: tuple[str, pd.Series]) -> pd.DataFrame:
    rows = [{"config": name, "seed": seed, "value": value} for name, values in arms for seed, value in values.items()]
    return pd.DataFrame(rows, columns=["config", "seed", "value"])


def _key(cfg: Mapping) -> tuple[str, ...]:
    """A configuration as the text tuple that labels its comparisons (`membership`)."""
    return tuple(str(cfg.get(k, "")) for k in CONFIG_KEYS)


def _configs(pairs: pd.DataFrame, q: Question, where) -> list[tuple[dict, pd.DataFrame]]:
    df = pairs[where(pairs)] if len(pairs) else pairs
    if not len(df):
        return []
    keys = [k for k in CONFIG_KEYS + ["filter_match"] if k in df]
    out = []
    for key, g in df.fillna({k: "" for k in keys}).groupby(keys, sort=True):
        cfg = dict(zip(keys, key, strict=True))
        if q.selects(cfg):
            out.append((cfg, g))
    return out


def ticket_vs_dense(runs: pd.DataFrame, pairs: pd.DataFrame, q: Question) -> list[Comparison]:
    """Each selected ticket configuration against its dense runs: endpoint(ticket) − endpoint(dense)
    per seed (random draws of a seed averaged first)."""
    if not len(pairs) or "dense_missing" not in pairs:
        return []
    dense = runs[runs.pipeline == "dense"].drop_duplicates("identity").set_index("identity")
    if q.endpoint not in dense:
        return []
    out = []
    for cfg, g in _configs(pairs, q, lambda d: (d.pipeline != "dense") & (d.dense_missing == "")):
        g = g.assign(_ticket=g[q.endpoint] if q.endpoint in g else np.nan,
                     _dense=g.dense_identity.map(dense[q.endpoint]))
        g = g.assign(_diff=g._ticket - g._dense)
        name = config_name(cfg)
        out.append(Comparison({"comparison": f"{name} − dense"}, per_seed(g, "_diff"),
                              _arms((name, per_seed(g, "_ticket")), ("dense", per_seed(g, "_dense"))),
                              ("vs_dense", _key(cfg))))
    return out


def criterion_vs_control(runs: pd.DataFrame, pairs: pd.DataFrame, q: Question) -> list[Comparison]:
    """Each selected criterion configuration (control none, criterion not random/uniform) against
    each declared control at the same pipeline, model, p and rewind point: endpoint(criterion) −
    endpoint(control) per seed over the seeds both have (random draws of a seed averaged first)."""
    if not len(runs):
        return []
    tickets = runs[runs.pipeline.isin(["ticket_init", "ticket_rewind"])]
    out = []
    chosen = _configs(tickets, q, lambda d: (d.control == "none") & ~d.criterion.isin(["random", "uniform"]))
    for cfg, g in chosen:
        same = (runs.model == cfg["model"]) & (runs.p == cfg["p"])
        at = same & (runs.pipeline == cfg["pipeline"]) & (runs.rewind_epoch == cfg["rewind_epoch"])
        candidates = {"random": runs[at & (runs.criterion == "random") & (runs.control == "none")],
                      "reinit": runs[same & (runs.pipeline == "reinit") & (runs.criterion == cfg["criterion"])
                                     & (runs.reinit_of.replace("", "ticket_init") == cfg["pipeline"])]}
        for control in CONTROLS[1:-1]:
            candidates[control] = runs[at & (runs.control == control) & same_criterion(runs, cfg, control)]
        name = config_name(cfg)
        for control in q.controls:
            if len(candidates[control]):
                c = _between(name, f"{control} at {name}", g, candidates[control], q.endpoint,
                             ("control", _key(cfg), control), label=f"{name} − {control}")
                out.append(replace(c, extra=among_draws(g, candidates[control], q.endpoint)))
    return out


# what two criterion configurations must share to be compared (they differ in criterion, and so in
# their planned stage counts)
SHARED_BY_CRITERIA = ("pipeline", "model", "p", "rewind_epoch", "iterative")


def criterion_vs_criterion(runs: pd.DataFrame, pairs: pd.DataFrame, q: Question) -> list[Comparison]:
    """Each pair of selected criterion configurations (control none, criterion not random/uniform)
    at the same pipeline, model, p and rewind point: endpoint(a) − endpoint(b) per seed over the
    seeds both have, a before b in name order (GraSP − SNIP)."""
    if not len(runs):
        return []
    tickets = runs[runs.pipeline.isin(["ticket_init", "ticket_rewind"])]
    chosen = _configs(tickets, q, lambda d: (d.control == "none") & ~d.criterion.isin(["random", "uniform"]))
    out = []
    for (a, ga), (b, gb) in itertools.combinations(sorted(chosen, key=lambda c: c[0]["criterion"]), 2):
        if a["criterion"] == b["criterion"] or any(a.get(k) != b.get(k) for k in SHARED_BY_CRITERIA):
            continue
        out.append(_between(config_name(a), config_name(b), ga, gb, q.endpoint, ("criteria", _key(a), _key(b))))
    return out


def same_criterion(runs: pd.DataFrame, cfg: dict, control: str) -> pd.Series | bool:
    """Which runs of a registered control share the configuration's criterion (every run, when the
    control reads no criterion: uniform)."""
    return runs.criterion == cfg["criterion"] if get_control(control).reads_criterion else True


def among_draws(mine: pd.DataFrame, draws: pd.DataFrame, endpoint: str) -> dict:
    """Where the criterion's `endpoint` falls within the distribution of random draws of the same
    shape, seed by seed (`stats.percentile_among`), pooled as the mean percentile with a 90 %
    interval over the seeds: {"percentile among draws": "73 [58, 88] % (3 seeds × 4 draws)"}. Empty
    unless some seed has at least two draws (one draw is the paired comparison itself)."""
    if endpoint not in mine or endpoint not in draws or "draw" not in draws:
        return {}
    value = per_seed(mine, endpoint)
    by_seed = {s: g[endpoint].dropna().to_numpy() for s, g in draws.groupby("seed") if s in value.index}
    by_seed = {s: d for s, d in by_seed.items() if len(d)}
    if not by_seed or max(len(d) for d in by_seed.values()) < 2:
        return {}
    mean, low, high = stats.percentile_interval([stats.percentile_among(value[s], d) for s, d in by_seed.items()])
    counts = sorted({len(d) for d in by_seed.values()})
    shape = f"{len(by_seed)} seeds × {'/'.join(map(str, counts))} draws"
    interval = "" if math.isnan(low) else f" [{low:.0f}, {high:.0f}]"
    return {"percentile among draws": f"{mean:.0f}{interval} % ({shape})"}


def filter_vs_block(runs: pd.DataFrame, pairs: pd.DataFrame, q: Question) -> list[Comparison]:
    """Each selected filter-ticket configuration against the block ticket (ticket_init, control none)
    of the same criterion and p: endpoint(filter) − endpoint(block) per seed. A filter ticket is
    matched to the block ticket's filter count (`pruning.filter_match` filters) or MACs (macs):
    one row each, where those runs exist."""
    out = []
    blocks = runs[(runs.pipeline == "ticket_init") & (runs.control == "none")]
    for cfg, g in _configs(runs, q, lambda d: d.pipeline == "filter_ticket"):
        b = blocks[(blocks.model == cfg["model"]) & (blocks.criterion == cfg["criterion"]) & (blocks.p == cfg["p"])]
        if not len(b):
            continue
        out.append(_between(config_name(cfg), f"ticket_init {cfg['criterion']} p={cfg['p']}", g, b, q.endpoint,
                            ("filter", _key(cfg), cfg.get("filter_match", ""))))
    return out


def iterative_vs_oneshot(runs: pd.DataFrame, pairs: pd.DataFrame, q: Question) -> list[Comparison]:
    """Each selected iterative configuration's kept ticket against the one-shot ticket that removes
    as many blocks with the same criterion, seed and dense run (ticket_init at θ_0, ticket_rewind at
    the same θ_i): endpoint(iterative) − endpoint(one-shot) per seed."""
    out = []
    oneshot = runs[runs.pipeline.isin(["ticket_init", "ticket_rewind"]) & (runs.control == "none") & (runs.draw == 0)]
    for cfg, g in _configs(runs, q, lambda d: d.pipeline == "iterative"):
        rewind = str(cfg.get("iterative", "")).startswith("rewind")
        pipeline = "ticket_rewind" if rewind else "ticket_init"
        o = oneshot[(oneshot.pipeline == pipeline) & (oneshot.criterion == cfg["criterion"]) & (oneshot.p == cfg["p"])
                    & (oneshot.model == cfg["model"]) & (~rewind | (oneshot.rewind_epoch == cfg["rewind_epoch"]))]
        o = o[o.dense_identity.isin(set(g.dense_identity))]
        name, other = config_name(cfg), f"{pipeline} {cfg['criterion']} p={cfg['p']}"
        out.append(_between(name, other, g, o, q.endpoint, ("iterative", _key(cfg)),
                            label=f"{name} − one-shot {other}"))
    return out


# the comparisons a question can declare: name -> (builder, kind of test (stats.KINDS), what Δ is)
COMPARISONS: dict[str, tuple[Callable, str, str]] = {
    "ticket_vs_dense": (ticket_vs_dense, "vs_dense", "ticket − dense"),
    "criterion_vs_control": (criterion_vs_control, "difference", "criterion − control"),
    "criterion_vs_criterion": (criterion_vs_criterion, "difference", "criterion − criterion"),
    "filter_vs_block": (filter_vs_block, "difference", "filter ticket − block ticket"),
    "iterative_vs_oneshot": (iterative_vs_oneshot, "difference", "iterative − one-shot"),
}


# --- answers --------------------------------------------------------------------------------


@dataclass
class Answer:
    """A question's family with its estimates, Holm-adjusted p values and verdicts, the planning SD
    (residual SD of the endpoint over configuration × seed, points) and what the seeds can detect."""

    question: Question
    comparisons: list[Comparison] = field(default_factory=list)
    estimates: list[stats.Estimate] = field(default_factory=list)
    adjusted: list[dict] = field(default_factory=list)
    residual_sd: float = math.nan
    residual_df: int = 0

    @property
    def kind(self) -> str:
        return COMPARISONS[self.question.compare[0]][1]

    @property
    def m(self) -> int:
        """Comparisons in the family with an interval (the Holm m)."""
        return sum(e.n >= 2 for e in self.estimates)

    @property
    def alpha_first_step(self) -> float:
        """α/m: the one-sided level of Holm's first step over the family."""
        return stats.ALPHA / max(self.m, 1)

    @property
    def difference_sd(self) -> float:
        """The planning SD of one paired difference: √2 × the residual SD (points)."""
        return math.sqrt(2) * self.residual_sd

    def adjusted_verdicts(self) -> list[str]:
        return [stats.verdict(self.kind, adj, e.n) for e, adj in zip(self.estimates, self.adjusted, strict=True)]

    def seeds_needed(self) -> float:
        """Seeds per configuration that decide a distance of ξ from the null boundary with 80 % power
        at α/m (Holm's first step), with the planning SD."""
        return stats.seeds_needed(self.question.margin, self.difference_sd, self.alpha_first_step)

    def detectable(self, n: int) -> float:
        return stats.detectable(n, self.difference_sd, self.alpha_first_step)

    def table(self) -> pd.DataFrame:
        """One row per comparison: n, mean, 90 % interval, raw verdict, the deciding test's p, its
        Holm-adjusted p, the adjusted verdict, the sign-flip p (n ≥ 6), the seeds' detectable |Δ|."""
        rows = []
        for c, e, adj, final in zip(self.comparisons, self.estimates, self.adjusted, self.adjusted_verdicts(),
                                    strict=True):
            test = stats.deciding_test(self.kind, e.p)
            rows.append({**c.label, "n": e.n, "mean": e.mean_text(), "90% interval": e.interval(),
                         "verdict": e.verdict, "test": test or "", "p": _p(e.p.get(test)),
                         "Holm p": _p(adj.get(test)), "adjusted verdict": final,
                         "sign-flip p": _p(e.permutation_p.get(test)) if e.permutation_p else "n < 6",
                         "detectable |Δ|": _number(self.detectable(e.n)), **c.extra})
        return pd.DataFrame(rows)

    def intervals(self) -> pd.DataFrame:
        """One row per comparison with an interval (n ≥ 2), for the questions' figure: question id,
        comparison, n, mean, low and high of the 90 % interval (points), the margin ξ (points) and
        the adjusted verdict."""
        rows = [{"question": self.question.id, "comparison": c.label["comparison"], "n": e.n, "mean": e.mean,
                 "low": e.low, "high": e.high, "margin": self.question.margin, "adjusted verdict": final}
                for c, e, final in zip(self.comparisons, self.estimates, self.adjusted_verdicts(), strict=True)
                if e.n >= 2]
        return pd.DataFrame(rows, columns=["question", "comparison", "n", "mean", "low", "high", "margin",
                                           "adjusted verdict"])

    def prose(self) -> str:
        """The answer in words, generated from the adjusted verdicts (module docstring)."""
        q = self.question
        what = " and ".join(COMPARISONS[name][2] for name in q.compare)
        head = (f"**{q.id}. {q.ask}** ({len(self.comparisons)} comparison(s) of {what}, endpoint `{q.endpoint}`, "
                f"margin ξ = {q.margin:g} points, Holm over the {self.m} with an interval)")
        if not self.comparisons:
            return f"{head}: no runs of this family in this report."
        finals = self.adjusted_verdicts()
        counts = pd.Series(finals).value_counts()
        order = [w for _, w in stats.KINDS[self.kind]] + [stats.INCONCLUSIVE, *reversed(stats.NO_VERDICT)]
        tally = ", ".join(f"{counts[w]} with {w} (no interval, no verdict)" if w in stats.NO_VERDICT
                          else f"{counts[w]} {w}" for w in order if w in counts)
        parts = [f"{head}: {tally}."]
        undecided = (stats.INCONCLUSIVE, *stats.NO_VERDICT)
        decided = [(c, e, adj, f) for c, e, adj, f in zip(self.comparisons, self.estimates, self.adjusted, finals,
                                                          strict=True) if f not in undecided]
        if decided:
            parts.append("Decided after adjustment: " + "; ".join(
                f"{c.label['comparison']} {f} ({e.mean_text()} {e.interval()}, Holm p "
                f"{_p(adj.get(stats.deciding_test(self.kind, adj)))})" for c, e, adj, f in decided) + ".")
        raw_only = [(c, e) for c, e, f in zip(self.comparisons, self.estimates, finals, strict=True)
                    if e.verdict not in undecided and f == stats.INCONCLUSIVE]
        if raw_only:
            parts.append("Decided only before adjustment, so exploratory: " + "; ".join(
                f"{c.label['comparison']} {e.verdict} unadjusted ({e.mean_text()} {e.interval()}, "
                f"p {_p(e.p.get(stats.deciding_test(self.kind, e.p)))})" for c, e in raw_only) + ".")
        open_ = [e for e, f in zip(self.estimates, finals, strict=True) if f == stats.INCONCLUSIVE]
        if open_:
            seeds = sorted({e.n for e in open_})
            at = " or ".join(f"n = {n}" for n in seeds)
            parts.append(f"Not shown: {len(open_)} inconclusive at {at}" + (
                "." if math.isfinite(self.residual_sd) else
                " (too few seeds or configurations for a planning SD).") + " " + self.excluded(open_))
            if math.isfinite(self.residual_sd):
                need = self.seeds_needed()
                parts.append(
                    f"Planning SD: {self.residual_sd:.2f} points of "
                    f"`{q.endpoint}` per run (residual SD over configuration × seed, {self.residual_df} df), "
                    f"{self.difference_sd:.2f} for a paired difference; deciding a difference of ξ = "
                    f"{q.margin:g} points needs about {_number(need)} seeds per configuration (80 % power, "
                    f"one-sided α/m = {self.alpha_first_step:.4f}; "
                    f"{_number(stats.seeds_needed(q.margin, self.difference_sd))} for one comparison alone at α = "
                    f"{stats.ALPHA:g}); the seeds at hand detect about "
                    + ", ".join(f"{self.detectable(n):.2f} points at n = {n}" for n in seeds) + ".")
        return " ".join(parts)

    def excluded(self, estimates: list[stats.Estimate]) -> str:
        """What the `estimates` (the inconclusive ones) rule out, in words: the lowest lower and the
        highest upper bound among them, each one-sided at α/m (Bonferroni, so that every bound of
        the family holds at once with at least 1 − 2α confidence)."""
        level = self.alpha_first_step
        lows, highs = zip(*(e.bounds(level) for e in estimates), strict=True)
        they = "Together they exclude" if len(estimates) > 1 else "It excludes"
        return (f"{they} a difference below {min(lows):+.2f} or above {max(highs):+.2f} points "
                f"(each bound one-sided at α/m = {level:.4f}, Bonferroni: all bounds of the question hold at once "
                f"with at least {100 * (1 - 2 * stats.ALPHA):.0f} % confidence).")


def answer(question: Question, runs: pd.DataFrame, pairs: pd.DataFrame) -> Answer:
    """The family `question` selects from the report's runs and pairs, its estimates, Holm's
    adjustment and the planning SD."""
    kind = COMPARISONS[question.compare[0]][1]
    comparisons = [c for name in question.compare for c in COMPARISONS[name][0](runs, pairs, question)]
    estimates = [stats.estimate(c.diffs.tolist(), kind, question.margin) for c in comparisons]
    out = Answer(question, comparisons, estimates, stats.adjust(estimates))
    if comparisons:
        arms = pd.concat([c.arms for c in comparisons]).drop_duplicates(["config", "seed"])
        out.residual_sd, out.residual_df = stats.planning_sd(arms)
    return out


def answer_all(questions, runs: pd.DataFrame, pairs: pd.DataFrame) -> list[Answer]:
    return [answer(q, runs, pairs) for q in questions]


def membership(answers: list[Answer]) -> dict[tuple, tuple[str, str]]:
    """Comparison key -> (question id, adjusted verdict), for labelling the report's other tables."""
    out = {}
    for a in answers:
        for c, final in zip(a.comparisons, a.adjusted_verdicts(), strict=True):
            out.setdefault(c.key, (a.question.id, final))
    return out


def _p(value) -> str:
    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return ""
    return "< 0.0001" if value < 1e-4 else f"{value:.4f}" if value < 0.001 else f"{value:.3f}"


def _number(x: float) -> str:
    if not isinstance(x, int | float) or math.isnan(x):
        return ""
    if math.isinf(x):
        return "∞"
    return f"{x:.2f}" if x < 100 and not float(x).is_integer() else f"{x:.0f}"
