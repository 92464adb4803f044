"""`lottery info MODEL`: the block view and cost of an architecture, as plain text; `lottery info
--list KIND`: what a registry holds."""
from lottery_core import accounting, models, surgery


def registered(kind: str) -> dict[str, str]:
    """{name: one-line summary} of the registered criteria, controls or pipelines."""
    from lottery_core.criteria import control_registry, registry
    from pipelines.config import pipeline_registry

    if kind == "criteria":
        return registry.describe("block")
    if kind == "controls":
        return control_registry.describe_controls()
    return {n: pipeline_registry.get_pipeline(n).summary for n in pipeline_registry.pipeline_names()}


def describe(name: str, num_classes: int = 10, min_blocks_per_stage: int = 2, **options) -> str:
    """Blocks by stage (removable ones marked), MACs, params, memory and filters of one model."""
    model = models.build(name, num_classes=num_classes, **options)
    cost = accounting.measure(model)
    lines = [f"{name} ({', '.join(f'{k}={v}' for k, v in options.items()) or 'default options'}), "
             f"{num_classes} classes, input 3x32x32",
             f"  MACs    {cost.macs:,}", f"  params  {cost.params:,}",
             f"  memory  {cost.memory_bytes / 2**20:.2f} MiB (activations of one image + params, 4 B each)",
             f"  filters {cost.filters:,}"]
    blocks = surgery.residual_blocks(model)
    if not blocks:
        lines.append("  no residual blocks: nothing removable")
        return "\n".join(lines)
    removable = set(surgery.removable_blocks(model, min_blocks_per_stage))
    lines.append(f"  residual blocks: {len(blocks)}, removable: {len(removable)} "
                 f"(min_blocks_per_stage={min_blocks_per_stage}; * = removable)")
    by_stage: dict[int, list[str]] = {}
    for b in blocks:
        by_stage.setdefault(b.stage, []).append(b.name + ("*" if b.name in removable else ""))
    budget = surgery.stage_budget(model, min_blocks_per_stage)
    for stage, names in by_stage.items():
        lines.append(f"  stage {stage}: {' '.join(names)}  (up to {budget[stage]} may go)")
    one = next(iter(sorted(removable)), None)
    if one is not None:
        ticket = surgery.remove_blocks(model, [one], min_blocks_per_stage)
        red = accounting.measure(ticket).reduction_vs(cost)
        lines.append(f"  removing {one}: {red['macs']:.2f}% fewer MACs, {red['memory_bytes']:.2f}% less memory")
    return "\n".join(lines)
