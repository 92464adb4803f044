"""What each trial asks Ray for (`resources: auto`, tune.resources), the warning for a request that
leaves GPUs idle, and the device a trial given GPUs trains on (tune.trial.trial_device).

Ray's fractional packing (one GPU filled before the next) is modelled by `trial_slots` and
`busy_gpus`; the cases are clusters whose right answer is worked out by hand in each test.
"""
import itertools
import math

import pytest

from lottery_core.emissions import charge_share
from lottery_core.train.device import cuda_problem
from tune.resources import busy_gpus, idle_gpus, size_trials, trial_slots
from tune.trial import trial_device

HEAD = {"CPU": 0, "GPU": 0}          # a head started with --num-cpus 0: holds no trial
NODE_8GPU = {"CPU": 16, "GPU": 8}    # the paper sweep's node


@pytest.mark.parametrize("nodes,concurrent,expected", [
    ([NODE_8GPU], 8, {"cpu": 2, "gpu": 1}),        # k = G: a GPU each, 16 / 8 CPUs each
    ([NODE_8GPU], 4, {"cpu": 2, "gpu": 1}),        # k < G: still a whole GPU each
    ([NODE_8GPU], 12, {"cpu": 2, "gpu": 1}),       # floor(12 / 8) = 1 per GPU: 8 run, 4 wait, none idle
    ([NODE_8GPU], 17, {"cpu": 1, "gpu": 0.5}),     # 2 per GPU: 16 run on all 8, not 3+3+3+3+3+2 on 6
    ([NODE_8GPU], 99, {"cpu": 1, "gpu": 0.5}),     # 16 CPUs let 16 run at once: 2 per GPU, not 13
    ([HEAD, NODE_8GPU, NODE_8GPU], 16, {"cpu": 2, "gpu": 1}),
    ([HEAD, {"CPU": 2}, {"CPU": 2}], 2, {"cpu": 2, "gpu": 0}),    # CPU-only: one trial per node
    ([HEAD, {"CPU": 2}, {"CPU": 2}], 4, {"cpu": 1, "gpu": 0}),
    ([{"CPU": 2}], 6, {"cpu": 1, "gpu": 0}),                       # this laptop: 6 trials, 2 at a time
])
def test_auto_resources_spread_trials_over_every_gpu(nodes, concurrent, expected):
    assert size_trials(nodes, concurrent) == expected


@pytest.mark.parametrize("gpus,cpus,concurrent", list(itertools.product([1, 2, 4, 8], [4, 16, 64], [1, 3, 8, 17, 99])))
def test_auto_never_leaves_a_gpu_idle_while_trials_wait(gpus, cpus, concurrent):
    """On one node of G GPUs: k <= G trials get a whole GPU each (distinct CUDA_VISIBLE_DEVICES);
    more trials than can run at once keep every GPU busy; and the request always fits the node."""
    node = {"CPU": cpus, "GPU": gpus}
    asked = size_trials([node], concurrent)
    running = min(concurrent, trial_slots(node, asked["cpu"], asked["gpu"]))
    assert running >= 1
    if concurrent <= min(gpus, cpus):
        assert asked["gpu"] == 1 and running == concurrent
    if running < concurrent:   # trials wait: then no GPU may idle (unless CPUs are fewer than GPUs)
        assert busy_gpus(node, running, asked["gpu"]) == min(gpus, cpus)
    else:                      # all run at once: each on its own GPU, or every GPU equally shared
        assert busy_gpus(node, running, asked["gpu"]) == min(gpus, running)
    assert idle_gpus([node], asked, concurrent, 0) is None


def test_the_paper_sweeps_old_request_is_warned_with_its_numbers():
    warning = idle_gpus([NODE_8GPU], {"cpu": 2, "gpu": 0.25}, trials=99, max_concurrent=0)
    assert warning == ("resources {cpu: 2, gpu: 0.25}: at most 8 of 99 trials run at once on this cluster (8 GPUs), "
                       "Ray packs them onto 2 GPU(s) and 6 stay idle while 91 trials wait; `resources: auto` would "
                       "ask {cpu: 1, gpu: 0.5}")


def test_packing_eight_quarter_gpu_trials_on_four_gpus_uses_two():
    """The behaviour checked on Ray itself (8 tasks of 0.25 GPU on 4 GPUs land on GPUs 0 and 1)."""
    node = {"CPU": 64, "GPU": 4}
    assert trial_slots(node, 1, 0.25) == 16 and busy_gpus(node, 8, 0.25) == 2
    assert "8 trials share 2 GPU(s)" in idle_gpus([node], {"cpu": 1, "gpu": 0.25}, trials=8, max_concurrent=0)


def test_requests_that_use_every_gpu_or_no_gpu_are_not_warned():
    assert idle_gpus([NODE_8GPU], {"cpu": 2, "gpu": 1}, trials=99, max_concurrent=0) is None
    assert idle_gpus([{"CPU": 4}], {"cpu": 1, "gpu": 0}, trials=99, max_concurrent=0) is None


def test_a_trial_given_gpus_trains_on_cuda_or_says_why_not():
    problem = cuda_problem()
    device, reason = trial_device("auto", [0])
    assert device == "cuda"
    if problem is None:   # a machine where CUDA works
        assert reason is None
    else:                 # this CPU machine: one line with the torch build and the driver
        assert reason.startswith("this trial was given GPU(s) [0] by Ray, but CUDA is not available to this process (")
        assert "torch " in reason and "NVIDIA driver: " in reason and "\n" not in reason
    assert trial_device("cpu", [0])[1] == "this trial was given GPU(s) [0] but its config says device: cpu"
    assert trial_device("auto", []) == ("cpu", None) and trial_device("cpu", []) == ("cpu", None)
    assert "was given no GPU" in trial_device("cuda", [])[1]


def test_a_shared_gpu_charges_its_share_of_the_gpus_energy():
    measured = {"energy_kwh": 1.0, "emissions_kg": 0.1, "cpu_energy_kwh": 0.1, "gpu_energy_kwh": 0.8,
                "ram_energy_kwh": 0.1}
    shared = charge_share(measured, 0.25)
    assert shared["gpu_energy_kwh"] == pytest.approx(0.2) and shared["energy_kwh"] == pytest.approx(0.4)
    assert shared["emissions_kg"] == pytest.approx(0.04)   # one grid intensity: emissions follow energy
    assert charge_share(measured, 1.0) == measured
    assert math.isclose(sum(shared[k] for k in ("cpu_energy_kwh", "gpu_energy_kwh", "ram_energy_kwh")),
                        shared["energy_kwh"])
