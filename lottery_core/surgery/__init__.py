"""The block view of a network and the surgery on it.

    removable_blocks(model)            names of blocks that may go ("layer1.3", "encoder.layers.2", ...)
    silencers(model, name)             modules whose zeroed weight and bias make a block the identity
    stage_budget(model)                {stage: blocks it may lose}: the one rule for p (max_removable sums it)
    remove_blocks(model, names)        a new, physically shallower model (weights copied by name)
    rewind_to(ticket, dense_state)     load θ_i of the dense network into a ticket
    ticket_block_names(model, names)   dense block name -> its name in the ticket (indices shift)
    prune_filters(model, scores, n)    filter tickets through Torch-Pruning's dependency graph
    prune_filters_to_count / _to_macs  filter tickets matched to a block ticket's filters or MACs
"""
from lottery_core.lazy import lazy_attributes
from lottery_core.surgery.blocks import (
    BLOCK_KINDS,
    DEFAULT_MIN_BLOCKS_PER_STAGE,
    Block,
    BlockKind,
    block_parameters,
    block_stage,
    has_branch_bn,
    is_silenced,
    last_bn,
    max_removable,
    removable_blocks,
    removable_by_stage,
    residual_blocks,
    silencers,
    stage_budget,
)
from lottery_core.surgery.bypass import bypass_blocks
from lottery_core.surgery.remove import (
    load_by_key_map,
    remove_blocks,
    rewind_to,
    ticket_block_names,
    ticket_key_map,
)

# filter pruning loads Torch-Pruning and torch's FLOP counter (a second of imports): on first use,
# so that the run config's check of a model's stage budget does not wait for them
__getattr__ = lazy_attributes(__name__, dict.fromkeys(
    ("filter_scores", "prunable_convs", "prune_filters", "prune_filters_to_count", "prune_filters_to_macs",
     "replay_pruning"), "filters"))

__all__ = [
    "BLOCK_KINDS", "DEFAULT_MIN_BLOCKS_PER_STAGE", "Block", "BlockKind", "block_parameters",
    "block_stage", "bypass_blocks", "filter_scores", "has_branch_bn", "is_silenced", "last_bn", "load_by_key_map",
    "max_removable",
    "prunable_convs", "prune_filters", "prune_filters_to_count", "prune_filters_to_macs", "removable_blocks",
    "removable_by_stage", "replay_pruning", "remove_blocks",
    "residual_blocks", "rewind_to", "silencers", "stage_budget", "ticket_block_names", "ticket_key_map",
]
