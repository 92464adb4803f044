"""filter_ticket: the same criterion at filter level, pruned to the size of the p-block ticket.

Size is the filter count (`pruning.filter_match=filters`, the paper's Table 3) or the MACs
(`filter_match=macs`) of the block ticket with the same criterion and p.
"""
from lottery_core import accounting, criteria, surgery
from pipelines import steps
from pipelines.context import RunContext
from pipelines.experiments.base import Trained


def filter_ticket(ctx: RunContext) -> Trained:
    theta_0 = steps.initial_model(ctx)
    batches = steps.scoring_batches(ctx)
    options = steps.criterion_options(ctx)
    block_plan = steps.plan_blocks(ctx, theta_0)           # the block ticket with the same p ...
    block_ticket = steps.remove(ctx, theta_0, block_plan)  # ... sets the size
    weight_scores = criteria.score_weights(theta_0, ctx.cfg.pruning.criterion, batches, **options)
    scores = surgery.filter_scores(theta_0, weight_scores)
    input_size = tuple(ctx.data.test_images.shape[1:])
    if ctx.cfg.pruning.filter_match == "macs":
        target = accounting.count_macs(block_ticket, input_size)
        ticket = surgery.prune_filters_to_macs(theta_0, scores, target, input_size)
    else:
        target = accounting.count_filters(block_ticket)
        ticket = surgery.prune_filters_to_count(theta_0, scores, target)
    ctx.log_json({"match": ctx.cfg.pruning.filter_match, "target": target,
                  "filters": accounting.count_filters(ticket), "macs": accounting.count_macs(ticket, input_size),
                  "pruning_history": [list(h) for h in ticket.pruning_history]}, "filter_plan.json")
    ctx.save_weights(ticket, 0)
    result = steps.train_model(ctx, ticket)
    return Trained(ticket, result, plan=block_plan)
