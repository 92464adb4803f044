"""Physical block removal: a new, shallower network; weights copied and rewound by qualified name."""
import copy
import re
from collections.abc import Iterable, Mapping

import torch
import torch.nn as nn

from lottery_core.errors import LotteryError
from lottery_core.surgery.blocks import (
    DEFAULT_MIN_BLOCKS_PER_STAGE,
    block_stage,
    removable_blocks,
    residual_blocks,
    stage_budget,
)


def _check_names(model: nn.Module, names: Iterable[str], min_blocks_per_stage: int) -> list[str]:
    names = list(dict.fromkeys(names))
    allowed = removable_blocks(model, min_blocks_per_stage)
    for n in names:
        if n not in allowed:
            raise LotteryError(f"block {n!r} is not removable; removable blocks: {', '.join(allowed)}")
    budget, stage_of = stage_budget(model, min_blocks_per_stage), block_stage(model)
    for stage in {stage_of[n] for n in names}:
        chosen = [n for n in names if stage_of[n] == stage]
        if len(chosen) > budget[stage]:
            raise LotteryError(f"removing {len(chosen)} blocks from stage {stage} ({', '.join(chosen)}) leaves fewer "
                               f"than min_blocks_per_stage={min_blocks_per_stage}; at most {budget[stage]} may go")
    return names


def ticket_key_map(model: nn.Module, names: Iterable[str]) -> dict[str, str]:
    """Map every state-dict key of `model` that survives removing `names` to its key in the ticket.

    Blocks after a removed one shift down by one index in their container (`layer1.4.conv1.weight`
    becomes `layer1.3.conv1.weight` when `layer1.2` goes). Keys of removed blocks are absent.
    """
    removed = set(names)
    blocks = residual_blocks(model)
    containers: dict[str, list[int]] = {}
    for b in blocks:
        containers.setdefault(b.container, [])
    new_index: dict[tuple[str, int], int | None] = {}
    for container in containers:
        seq = model.get_submodule(container) if container else model
        kept = 0
        for i in range(len(seq)):
            name = f"{container}.{i}" if container else str(i)
            new_index[(container, i)] = None if name in removed else kept
            kept += name not in removed
    key_map: dict[str, str] = {}
    for key in model.state_dict():
        target = key
        for container in sorted(containers, key=len, reverse=True):
            prefix = re.escape(container + ".") if container else ""
            m = re.match(rf"^{prefix}(\d+)\.(.*)$", key)
            if m and (container, int(m.group(1))) in new_index:
                index = new_index[(container, int(m.group(1)))]
                target = None if index is None else f"{container + '.' if container else ''}{index}.{m.group(2)}"
                break
        if target is not None:
            key_map[key] = target
    return key_map


def ticket_block_names(model: nn.Module, names: Iterable[str]) -> dict[str, str]:
    """Map every residual block of `model` kept when `names` go to its name in the ticket
    (`layer1.4` -> `layer1.3` when `layer1.2` goes; the same shift as `ticket_key_map`).
    Removed blocks are absent. Invert it to name a ticket's blocks as the dense network's."""
    removed = set(names)
    blocks = residual_blocks(model)
    gone = [b for b in blocks if b.name in removed]
    out = {}
    for b in blocks:
        if b.name in removed:
            continue
        index = b.index - sum(1 for g in gone if g.container == b.container and g.index < b.index)
        out[b.name] = f"{b.container}.{index}" if b.container else str(index)
    return out


def remove_blocks(model: nn.Module, names: Iterable[str],
                  min_blocks_per_stage: int = DEFAULT_MIN_BLOCKS_PER_STAGE) -> nn.Module:
    """Return a new model without blocks `names`; `model` is untouched.

    The ticket is physically shallower (its containers hold fewer blocks, nothing masked). Every
    kept parameter and buffer is copied by qualified name through `ticket_key_map`; a kept key
    left uncopied raises. The ticket carries `removed_blocks` and `dense_key_map` (dense→ticket).
    """
    names = _check_names(model, names, min_blocks_per_stage)
    removed = set(names)
    ticket = copy.deepcopy(model)
    for container in {b.container for b in residual_blocks(model)}:
        seq = ticket.get_submodule(container) if container else ticket
        kept = [child for i, child in enumerate(seq)
                if (f"{container}.{i}" if container else str(i)) not in removed]
        if len(kept) != len(seq):
            _set_submodule(ticket, container, nn.Sequential(*kept))
    for p in ticket.parameters():
        p.grad = None
    key_map = ticket_key_map(model, names)
    load_by_key_map(ticket, model.state_dict(), key_map)
    ticket.removed_blocks = tuple(names)
    ticket.dense_key_map = key_map
    return ticket


def load_by_key_map(ticket: nn.Module, dense_state: Mapping[str, torch.Tensor],
                    key_map: Mapping[str, str]) -> None:
    """Copy `dense_state[k]` into the ticket's `key_map[k]` for every k; fail if any ticket key is left."""
    target = ticket.state_dict()
    missing = set(target) - set(key_map.values())
    if missing:
        raise LotteryError(f"ticket keys not covered by the key map: {sorted(missing)[:5]}")
    with torch.no_grad():
        for src, dst in key_map.items():
            if src not in dense_state:
                raise LotteryError(f"dense weights lack key {src!r} (a different architecture?)")
            if target[dst].shape != dense_state[src].shape:
                raise LotteryError(f"shape mismatch for {src!r} -> {dst!r}: "
                                   f"{tuple(dense_state[src].shape)} vs {tuple(target[dst].shape)}")
            target[dst].copy_(dense_state[src])


def rewind_to(ticket: nn.Module, dense_state: Mapping[str, torch.Tensor]) -> nn.Module:
    """Load the dense weights of another epoch (θ_i) into a ticket made by `remove_blocks`."""
    key_map = getattr(ticket, "dense_key_map", None)
    if key_map is None:
        raise LotteryError("rewind_to needs a ticket made by remove_blocks (it carries the key map)")
    load_by_key_map(ticket, dense_state, key_map)
    return ticket


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, attr, module)
