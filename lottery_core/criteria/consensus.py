"""A consensus of block criteria: rank fusion of several criteria's block scores (higher = keep).

    score_blocks(model, "consensus", batches, members=("kl", "cka", "snip"), fusion="borda")

Each member scores every removable block in its own default BatchNorm mode (`score_blocks`, so a
member behaves exactly as it does alone; weight-level members are aggregated per block with
`member_aggregate`). The members' scores are turned into ranks among the blocks being scored
(ties share their average rank) and fused:

- "borda": the mean over members of the block's normalized rank r/(n−1), r = 0 for the member's
  least important block; in [0, 1], 1 = every member ranks it most important.
- "rrf" (reciprocal rank fusion, Cormack et al. 2009): Σ over members of 1/(k + q), q = 1 for the
  member's most important block; a block many members rank near the top scores high.

Ranks make the members' units irrelevant (KL in nats, SNIP in |θ·g| summed over a block, GraSP
signed). The consensus of the follow-up work on layer pruning (arXiv 2411.14345) fuses criteria
in the same spirit; the members and the fusion rule here are settings, not its exact recipe.
A block that every member scores lowest (a silenced block under KL, CKA and SNIP) is the
consensus's lowest.
"""
from __future__ import annotations

from lottery_core.errors import LotteryError
from lottery_core.options import Option

FUSIONS = ("borda", "rrf")
DEFAULT_MEMBERS = ("kl", "cka", "snip")
DEFAULT_RRF_K = 60.0   # the constant of Cormack et al. (2009)


def declare(members: list[str]) -> tuple[Option, ...]:
    """The consensus's options; `members` are the criteria it may fuse (the registry's names when
    it registers the consensus, so the run config checks a member before anything runs)."""
    return (
        Option("members", str, DEFAULT_MEMBERS, "the block criteria whose rankings are fused (two or more)",
               choices=tuple(members), sequence=True, min_distinct=2,
               allowed_text=f"a list of two or more distinct of: {', '.join(members)}"),
        Option("fusion", str, "borda", "rank fusion rule: borda (mean normalized rank) or rrf "
               "(reciprocal rank fusion)", choices=FUSIONS),
        Option("rrf_k", float, DEFAULT_RRF_K, "the constant k of reciprocal rank fusion, 1/(k + rank)",
               low=0.0),
        Option("member_aggregate", str, "mean", "how a weight-level member's scores are aggregated per block "
               "(mean: per weight, free of the block-size bias of sum)", choices=("sum", "mean")),
    )


def consensus(model, blocks: list[str], batches, *, members: tuple[str, ...] = DEFAULT_MEMBERS,
              fusion: str = "borda", rrf_k: float = DEFAULT_RRF_K, member_aggregate: str = "mean") -> dict[str, float]:
    """The fused score of each block in `blocks` (see the module docstring)."""
    from lottery_core.criteria.score import check_applies, score_blocks

    for member in dict.fromkeys(members):   # refuse before any member has scored
        check_applies(member, model)
    tables = []
    for member in dict.fromkeys(members):
        # min_blocks_per_stage=1 scores a superset of `blocks`; ranks are taken among `blocks` only
        scores = score_blocks(model, member, batches, min_blocks_per_stage=1, aggregate=member_aggregate)
        tables.append({b: scores[b] for b in blocks})
    return fuse(tables, fusion, rrf_k)


def fuse(tables: list[dict[str, float]], fusion: str = "borda", rrf_k: float = DEFAULT_RRF_K) -> dict[str, float]:
    """Fuse score tables over the same blocks (higher = keep) into one; see the module docstring.

    >>> fuse([{"a": 1.0, "b": 5.0, "c": 3.0}, {"a": 0.1, "b": 0.3, "c": 0.2}])
    {'a': 0.0, 'b': 1.0, 'c': 0.5}
    """
    from scipy.stats import rankdata

    if fusion not in FUSIONS:
        raise LotteryError(f"unknown fusion {fusion!r}; choose one of: {', '.join(FUSIONS)}")
    blocks = list(tables[0])
    if any(list(t) != blocks for t in tables):
        raise LotteryError("the fused score tables must score the same blocks in the same order")
    n = len(blocks)
    fused = dict.fromkeys(blocks, 0.0)
    for table in tables:
        ascending = rankdata([table[b] for b in blocks], method="average")   # 1 = least important
        for b, r in zip(blocks, ascending, strict=True):
            if fusion == "borda":
                fused[b] += ((r - 1) / (n - 1) if n > 1 else 0.5) / len(tables)
            else:
                fused[b] += 1.0 / (rrf_k + (n + 1 - r))   # n + 1 - r: 1 = most important
    return {b: float(s) for b, s in fused.items()}
