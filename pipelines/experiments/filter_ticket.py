"""filter_ticket: the same criterion at filter level, pruned to the filter count of the p-block ticket."""
from lottery_core import accounting, criteria, surgery
from pipelines import stages
from pipelines.context import RunContext
from pipelines.experiments.base import Trained


def filter_ticket(ctx: RunContext) -> Trained:
    theta_0 = stages.initial_model(ctx)
    batches = stages.scoring_batches(ctx)
    options = stages.criterion_options(ctx)
    block_plan = stages.plan_blocks(ctx, theta_0)           # the block ticket with the same p ...
    target = accounting.count_filters(stages.remove(ctx, theta_0, block_plan))  # ... sets the size
    weight_scores = criteria.score_weights(theta_0, ctx.cfg.pruning.criterion, batches, **options)
    scores = surgery.filter_scores(theta_0, weight_scores)
    ticket = surgery.prune_filters_to_count(theta_0, scores, target)
    ctx.log_json({"target_filters": target, "filters": accounting.count_filters(ticket),
                  "pruning_history": [list(h) for h in ticket.pruning_history]}, "filter_plan.json")
    ctx.save_weights(ticket, "theta_0")
    result = stages.train_model(ctx, ticket)
    return Trained(ticket, result, plan=block_plan)
