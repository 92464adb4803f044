"""How much of the cluster each trial asks Ray for: `resources: auto`, and what an explicit request leaves idle.

    nodes = alive_nodes()                                  # [{"CPU": 16.0, "GPU": 8.0}, ...] from Ray
    size_trials(nodes, concurrent=12)                      # {"cpu": 2, "gpu": 0.5}
    idle_gpus(nodes, {"cpu": 2, "gpu": 0.25}, trials=99, max_concurrent=0)   # a one-line warning, or None

Ray packs fractional GPU requests: it fills one GPU with them before it uses the next (8 tasks of
0.25 GPU on a 4-GPU node all land on GPUs 0 and 1). So a fraction spreads trials over GPUs only
when there are more trials at once than GPUs. The rule of `resources: auto`, for k trials at once
(the largest phase, capped by `max_concurrent`) on a cluster with G GPUs in all:

- k <= G: one whole GPU per trial (every trial has its own GPU: its CUDA_VISIBLE_DEVICES differs);
- k > G: 1/m of a GPU with m = floor(k' / G) trials per GPU, where k' = min(k, the CPUs of the GPU
  nodes) is how many can run at once with at least one CPU each: every GPU holds exactly m trials,
  and the fewer than G left over wait for a free slot. (m = ceil(k' / G) would run them all at once
  but, packed, on only ceil(k' / m) GPUs: 17 trials on 8 GPUs as 3+3+3+3+3+2 with two GPUs idle.)
- no GPU: none;
- CPUs: the most whole CPUs per trial with which every GPU slot (or, without GPUs, every one of the
  k trials) still finds its CPUs on its node; at least 1.

Nodes without CPUs (a head started with `--num-cpus 0`) hold no trial and are left out.
"""
import math


def trial_slots(node: dict, cpu: float, gpu: float) -> int:
    """How many trials asking {cpu, gpu} fit on one node of resources {"CPU": c, "GPU": g}."""
    cpus, gpus = float(node.get("CPU", 0)), float(node.get("GPU", 0))
    by_cpu = math.floor(cpus / cpu + 1e-9) if cpu > 0 else math.inf
    if gpu <= 0:
        by_gpu = math.inf
    elif gpu < 1:
        by_gpu = math.floor(gpus) * math.floor(1 / gpu + 1e-9)   # fractions never straddle two GPUs
    else:
        by_gpu = math.floor(gpus / gpu + 1e-9)
    slots = min(by_cpu, by_gpu)
    return 0 if slots == math.inf else int(slots)


def size_trials(nodes: list[dict], concurrent: int) -> dict:
    """The per-trial request of `resources: auto` for `concurrent` trials at once (rule: module doc)."""
    nodes = [n for n in nodes if float(n.get("CPU", 0)) >= 1]
    concurrent = max(1, concurrent)
    gpu_nodes = [n for n in nodes if math.floor(float(n.get("GPU", 0))) >= 1]
    total_gpus = sum(math.floor(float(n["GPU"])) for n in gpu_nodes)
    if total_gpus == 0:
        cpu = 1
        while sum(trial_slots(n, cpu + 1, 0) for n in nodes) >= concurrent:
            cpu += 1
        return {"cpu": cpu, "gpu": 0}
    at_once = min(concurrent, sum(math.floor(float(n["CPU"])) for n in gpu_nodes))   # >= 1 CPU each
    per_gpu = max(1, at_once // total_gpus)
    gpu = 1 if per_gpu == 1 else math.floor(10_000 / per_gpu) / 10_000   # Ray keeps 4 decimals
    cpu = max(1, min(math.floor(float(n["CPU"]) / (math.floor(float(n["GPU"])) * per_gpu)) for n in gpu_nodes))
    return {"cpu": cpu, "gpu": gpu}


def busy_gpus(node: dict, trials: int, gpu: float) -> int:
    """GPUs of a node that `trials` trials of `gpu` each keep busy when Ray packs them."""
    if gpu <= 0 or trials <= 0:
        return 0
    if gpu < 1:
        return min(math.floor(float(node.get("GPU", 0))), math.ceil(trials / math.floor(1 / gpu + 1e-9)))
    return min(math.floor(float(node.get("GPU", 0))), math.ceil(trials * gpu - 1e-9))


def idle_gpus(nodes: list[dict], resources: dict, trials: int, max_concurrent: int) -> str | None:
    """A one-line warning when an explicit request would leave GPUs idle while trials wait, or pack
    trials onto shared GPUs while others idle; None when every GPU is used (or there are none)."""
    cpu, gpu = float(resources["cpu"]), float(resources["gpu"])
    total_gpus = sum(math.floor(float(n.get("GPU", 0))) for n in nodes)
    if gpu <= 0 or total_gpus == 0 or trials <= 0:
        return None
    wanted = min(trials, max_concurrent) if max_concurrent else trials
    running, busy = 0, 0
    for node in sorted(nodes, key=lambda n: -float(n.get("GPU", 0))):
        here = min(trial_slots(node, cpu, gpu), wanted - running)
        running += here
        busy += busy_gpus(node, here, gpu)
    idle, waiting = total_gpus - busy, trials - running
    at_most = min(total_gpus, wanted, sum(math.floor(float(n.get("CPU", 0))) for n in nodes if n.get("GPU", 0) >= 1))
    if busy >= at_most or not (waiting > 0 or (gpu < 1 and running > busy)):
        return None   # every GPU that could be busy is (e.g. fewer CPUs than GPUs)
    auto = size_trials(nodes, wanted)
    why = f"{waiting} trials wait" if waiting > 0 else f"{running} trials share {busy} GPU(s)"
    return (f"resources {{cpu: {cpu:g}, gpu: {gpu:g}}}: at most {running} of {trials} trials run at once on this "
            f"cluster ({total_gpus} GPUs), Ray packs them onto {busy} GPU(s) and {idle} stay idle while {why}; "
            f"`resources: auto` would ask {{cpu: {auto['cpu']:g}, gpu: {auto['gpu']:g}}}")


def alive_nodes() -> list[dict]:
    """The resources ({"CPU": n, "GPU": n, ...}) of every alive node of the Ray this process joined."""
    import ray

    return [dict(n.get("Resources", {})) for n in ray.nodes() if n.get("Alive")]
