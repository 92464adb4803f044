"""One epoch: SGD over the epoch's batches, and the evaluation of the held-out splits after it."""
import time

import torch
import torch.nn.functional as F

from lottery_core.data import eval_batches, train_batches
from lottery_core.errors import LotteryError
from lottery_core.evaluate import evaluate_batches
from lottery_core.train import checkpoint as ckpt
from lottery_core.train.runtime import autocast

NONFINITE_CHECK_EVERY = 50    # steps between non-finite checks on GPUs (CPU checks every step: it is free)
EVAL_BATCH = 500


def train_epoch(forward, model, data, settings, schedule, optimizer, seed, epoch, device, channels_last, amp,
                checkpoint_dir) -> dict:
    """SGD steps over epoch `epoch`'s batches; returns epoch, lr, train_loss, train_acc (%),
    train_time_s, images_per_s, steps. Loss and accuracy are summed on the device."""
    model.train()
    began = time.perf_counter()
    steps = schedule.steps_per_epoch
    losses = torch.zeros(steps, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    check_every = 1 if device.type == "cpu" else NONFINITE_CHECK_EVERY
    lr = schedule.set(epoch, 0)
    batches = train_batches(data, settings.batch_size, seed, epoch, augment=settings.augment, device=device,
                            channels_last=channels_last)
    for step, (x, y) in enumerate(batches):
        schedule.set(epoch, step)
        with autocast(device, amp):
            logits = forward(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=settings.label_smoothing)
        losses[step] = loss.detach()
        if (step + 1) % check_every == 0 or step + 1 == steps:
            _check_finite(losses, step, epoch, steps, checkpoint_dir)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        correct += (logits.detach().argmax(1) == y).sum()
        seen += len(y)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    train_time = time.perf_counter() - began
    return {"epoch": epoch, "lr": lr, "train_loss": float(losses.mean()), "train_acc": 100.0 * int(correct) / seen,
            "train_time_s": train_time, "images_per_s": seen / train_time, "steps": steps}


def _check_finite(losses: torch.Tensor, step: int, epoch: int, steps: int, checkpoint_dir) -> None:
    done = losses[: step + 1]
    if bool(torch.isfinite(done).all()):
        return
    bad = int((~torch.isfinite(done)).nonzero()[0])
    last = ckpt.latest_checkpoint(checkpoint_dir) if checkpoint_dir is not None else None
    kept = f"the last good checkpoint is {last}" if last else "no checkpoint was written"
    raise LotteryError(f"non-finite training loss ({float(done[bad])}) at epoch {epoch}, step {bad} of {steps} "
                       f"(both from 0); {kept}; try a lower learning rate")


def evaluate_splits(forward, model, data, device, channels_last, amp) -> dict:
    """`lottery_core.evaluate.evaluate_batches` of the test and (when it has images) validation
    split: test_acc, test_loss, test_top5, val_acc, ... The model is left in train mode."""
    def forward_amp(x):
        with autocast(device, amp):
            return forward(x)

    out = {}
    model.eval()
    try:
        for split in ("test", "val"):
            images, labels = getattr(data, f"{split}_images"), getattr(data, f"{split}_labels")
            if len(labels) == 0:
                continue
            batches = eval_batches(images, labels, data.mean, data.std, EVAL_BATCH, device, channels_last)
            out.update({f"{split}_{k}": v for k, v in evaluate_batches(forward_amp, batches).items()})
    finally:
        model.train()
    return out
