import json
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import randomize_bn_stats as _randomize_bn_stats
from helpers import silence as _silence

from lottery_core import criteria, models, surgery
from lottery_core.criteria import registry
from lottery_core.errors import LotteryError
from lottery_core.normalize import CIFAR10_MEAN, CIFAR10_STD
from lottery_core.options import Option

pytestmark = pytest.mark.numerical   # values oneDNN's kernels compute: CI reruns them under AVX2 and 1 thread


def _images(n_per_class=3, classes=10, seed=0):
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n_per_class * classes, 3, 32, 32), dtype=torch.uint8, generator=gen)
    return images, torch.arange(n_per_class * classes) % classes


def _batches(images_per_class=2, seed=0, batch_size=128):
    images, labels = _images()
    return criteria.scoring_batches(images, labels, images_per_class, seed, CIFAR10_MEAN, CIFAR10_STD,
                                    batch_size=batch_size)


def _tiny(bn=True):
    """conv-(bn)-relu-pool-linear on 3x8x8 inputs, 3 classes."""
    torch.manual_seed(3)
    layers = [nn.Conv2d(3, 4, 3, padding=1)] + ([nn.BatchNorm2d(4)] if bn else [])
    return nn.Sequential(*layers, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))


def _tiny_batches():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(6, 3, 8, 8, generator=gen)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    return x, y




# --- registry ---------------------------------------------------------------------------------

def test_names_by_level_are_what_the_registry_holds(monkeypatch):
    weight, block = criteria.names("weight"), criteria.names("block")
    assert weight == sorted(weight) and block == sorted(block)
    assert set(weight) < set(block)   # a weight-level criterion also scores blocks (aggregated)
    assert criteria.names() == block
    assert set(criteria.describe("block")) == set(block)
    monkeypatch.setattr(registry, "_CRITERIA", dict(registry._CRITERIA))   # a registration, undone after
    registry.register("zz_test_only", lambda model, batches: {}, level="block", needs_data=False, bn_mode=None,
                      summary="a test criterion")
    assert criteria.names("block") == [*block, "zz_test_only"] and criteria.names("weight") == weight
    assert criteria.describe("block")["zz_test_only"] == "a test criterion"
    assert criteria.describe("block")["random"] == "seeded uniform score per block (control)"
    assert registry.get("random", "block").level == "block"   # one draw per block, not aggregated
    assert registry.get("snip", "block").level == "weight"    # aggregated over the block's weights


def test_registry_knows_which_criteria_read_labels_and_which_take_a_target():
    reads = [n for n in criteria.names("block") if registry.get(n, "block").reads_labels]
    assert reads == ["consensus", "grasp", "pls", "snip"]   # consensus: its default members include snip
    assert registry.get("hrank", "block").options == {"target": "branch"}
    assert registry.get("expectabs", "block").options == {"target": "branch"}
    assert registry.get("pls", "block").options == {"components": 2, "target": "branch"}
    assert "target" in registry.known_options() and criteria.TARGETS == ("branch", "output")


def test_a_new_criterion_is_one_function_and_one_register_line(monkeypatch):
    monkeypatch.setattr(registry, "_CRITERIA", dict(registry._CRITERIA))

    def ones(model, batches, *, scale: float = 1.0):
        return {k: torch.full_like(w, scale) for k, w in criteria.weight_parameters(model).items()}

    scale = Option("scale", float, 1.0, "score of every weight", low=0.0)
    with pytest.raises(LotteryError, match=r"keyword-only parameters \{'scale': 1.0\} differ from its declared"):
        criteria.register("ones", ones, level="weight", needs_data=False, bn_mode=None)   # undeclared option
    criteria.register("ones", ones, level="weight", needs_data=False, bn_mode=None, options=(scale,))
    model = models.build("resnet20")
    scores = criteria.score_blocks(model, "ones", scale=2.0)
    assert scores["layer1.0"] == 2.0 * 2 * 16 * 16 * 9     # two 16->16 3x3 convs
    assert scores["layer3.1"] == 2.0 * 2 * 64 * 64 * 9
    with pytest.raises(LotteryError, match="registered twice"):
        criteria.register("ones", ones, level="weight", needs_data=False, options=(scale,))
    with pytest.raises(LotteryError, match="reads_labels must be true or false"):
        criteria.register("twos", ones, level="weight", needs_data=False, reads_labels="yes", options=(scale,))
    assert not registry.get("ones", "weight").reads_labels


# --- scoring data -----------------------------------------------------------------------------

def test_scoring_batches_are_class_balanced_seeded_and_normalized():
    images, labels = _images(n_per_class=5)
    batches = criteria.scoring_batches(images, labels, 3, 7, CIFAR10_MEAN, CIFAR10_STD, batch_size=8)
    assert [len(y) for _, y in batches] == [8, 8, 8, 6]
    y = torch.cat([y for _, y in batches])
    assert torch.bincount(y).tolist() == [3] * 10
    assert all(x.dtype == torch.float32 and x.shape[1:] == (3, 32, 32) for x, _ in batches)
    # every drawn image is one of the dataset's, normalized with CIFAR-10 constants
    x0 = batches[0][0][0]
    mean, std = torch.tensor(CIFAR10_MEAN).view(3, 1, 1), torch.tensor(CIFAR10_STD).view(3, 1, 1)
    pixels = (x0 * std + mean) * 255
    assert min(float((pixels - img.float()).abs().max()) for img in images) < 1e-3
    again = criteria.scoring_batches(images, labels, 3, 7, CIFAR10_MEAN, CIFAR10_STD, batch_size=8)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(batches, again, strict=True))
    other = criteria.scoring_batches(images, labels, 3, 8, CIFAR10_MEAN, CIFAR10_STD, batch_size=8)
    assert not torch.equal(batches[0][0], other[0][0])
    with pytest.raises(LotteryError, match="class 0 has 5 images; images_per_class=6"):
        criteria.scoring_batches(images, labels, 6, 0, CIFAR10_MEAN, CIFAR10_STD)


# --- weight level -----------------------------------------------------------------------------

def test_scores_are_keyed_like_named_parameters_for_conv_and_linear_weights():
    model = models.build("resnet20")
    scores = criteria.score_weights(model, "magnitude")
    expected = [k for k, _ in model.named_parameters() if k.endswith("weight") and "bn" not in k]
    assert list(scores) == expected and len(expected) == 19 + 1  # 19 convs + fc
    assert all(scores[k].shape == p.shape for k, p in model.named_parameters() if k in scores)


@pytest.mark.parametrize("bn_mode", ["eval", "train"])
def test_snip_equals_theta_times_gradient_by_hand(bn_mode):
    model = _tiny()
    x, y = _tiny_batches()
    by_hand = _tiny()
    by_hand.train(bn_mode == "train")
    F.cross_entropy(by_hand(x), y).backward()
    expected = {"0.weight": (by_hand[0].weight * by_hand[0].weight.grad).abs(),
                "5.weight": (by_hand[5].weight * by_hand[5].weight.grad).abs()}
    scores = criteria.score_weights(model, "snip", [(x, y)], bn_mode=bn_mode)
    assert list(scores) == ["0.weight", "5.weight"]
    for k in expected:
        torch.testing.assert_close(scores[k], expected[k], atol=1e-7, rtol=1e-5)
    if bn_mode == "eval":  # the mean loss over all images: the batch split does not matter
        split = criteria.score_weights(model, "snip", [(x[:2], y[:2]), (x[2:], y[2:])], bn_mode="eval")
        for k in expected:
            torch.testing.assert_close(split[k], scores[k], atol=1e-7, rtol=1e-5)


def test_grasp_equals_theta_times_hessian_gradient_product_by_hand():
    model = _tiny(bn=False)
    x, y = _tiny_batches()
    temperature = 2.0
    names = ["0.weight", "4.weight"]
    params = dict(model.named_parameters())

    def loss(w_conv, w_fc):
        out = torch.func.functional_call(model, {**params, names[0]: w_conv, names[1]: w_fc}, (x,))
        return F.cross_entropy(out / temperature, y)

    weights = tuple(params[n].detach() for n in names)
    g = torch.autograd.grad(loss(*[w.requires_grad_() for w in weights]), weights)
    _, hg = torch.autograd.functional.hvp(loss, tuple(w.detach() for w in weights), g)
    expected = {n: w * h for n, w, h in zip(names, weights, hg, strict=True)}
    scores = criteria.score_weights(model, "grasp", [(x[:4], y[:4]), (x[4:], y[4:])], temperature=temperature)
    one_batch = criteria.score_weights(model, "grasp", [(x, y)], temperature=temperature)  # one-graph path
    for n in names:
        torch.testing.assert_close(scores[n], expected[n], atol=1e-9, rtol=1e-4)
        torch.testing.assert_close(one_batch[n], expected[n], atol=1e-9, rtol=1e-4)
    flat, ref = torch.cat([scores[n].flatten() for n in names]), torch.cat([expected[n].flatten() for n in names])
    assert (flat < 0).any() and (flat > 0).any()                 # θ ⊙ Hg takes both signs ...
    assert torch.equal(torch.sign(flat), torch.sign(ref))        # ... and keeps them: higher = keep
    assert torch.equal(flat.argsort()[:5], ref.argsort()[:5])    # the most negative go first


def test_synflow_equals_hand_computation_on_a_two_layer_linear_net():
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    x, y = torch.randn(7, 4), torch.zeros(7, dtype=torch.int64)
    scores = criteria.score_weights(net, "synflow", [(x, y)])
    w1, b1, w2 = net[0].weight.double().abs(), net[0].bias.double().abs(), net[1].weight.double().abs()
    # R = 1ᵀ|W2| (|W1| 1 + |b1|) + Σ|b2|:  ∂R/∂W1[i, j] = Σ_k |W2|[k, i],  ∂R/∂W2[k, i] = (|W1| 1 + |b1|)[i]
    torch.testing.assert_close(scores["0.weight"], w1 * w2.sum(0)[:, None])
    torch.testing.assert_close(scores["1.weight"], w2 * (w1.sum(1) + b1)[None, :])
    assert scores["0.weight"].dtype == torch.float64


@pytest.mark.slow
def test_synflow_is_finite_on_resnet56_in_float64_where_float32_overflows():
    model = models.build("resnet56")
    scores = criteria.score_weights(model, "synflow")
    flat = torch.cat([s.flatten() for s in scores.values()])
    assert flat.dtype == torch.float64 and torch.isfinite(flat).all() and (flat >= 0).all()
    assert float(flat.max()) > 1e60                                # far beyond float32's 3.4e38
    positive = models.build("resnet56").eval()
    with torch.no_grad():
        for t in positive.state_dict().values():
            if t.is_floating_point():
                t.abs_()
        assert math.isinf(float(positive(torch.ones(1, 3, 32, 32)).sum()))
    blocks = criteria.score_blocks(model, "synflow")
    assert len(blocks) == 25 and all(math.isfinite(v) for v in blocks.values())


@pytest.mark.slow
# the weight criteria that run the model (and backpropagate); magnitude and random read only θ
@pytest.mark.parametrize("criterion", [c for c in criteria.names("weight") if registry.get(c, "weight").bn_mode])
def test_leftover_grad_does_not_change_scores_and_the_model_is_restored(criterion):
    model = models.build("resnet20")
    batches = _batches()
    clean = criteria.score_weights(model, criterion, batches)
    gen = torch.Generator().manual_seed(9)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=gen)
    grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    dirty = criteria.score_weights(model, criterion, batches)
    for k in clean:
        assert torch.equal(clean[k], dirty[k]), k
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(p.grad, grads[k]) for k, p in model.named_parameters())
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())  # BN buffers too
    assert next(model.parameters()).dtype == torch.float32


@pytest.mark.slow
def test_same_seed_same_scores_and_random_follows_its_seed():
    model = models.build("resnet20")
    first = criteria.score_blocks(model, "grasp", _batches(seed=1))
    again = criteria.score_blocks(model, "grasp", _batches(seed=1))
    other = criteria.score_blocks(model, "grasp", _batches(seed=2))
    assert first == again and first != other
    r1, r2 = criteria.score_blocks(model, "random", seed=1), criteria.score_blocks(model, "random", seed=2)
    assert r1 == criteria.score_blocks(model, "random", seed=1) and r1 != r2
    assert all(0 <= v < 1 for v in r1.values())
    w1 = criteria.score_weights(model, "random", seed=1)
    assert torch.equal(w1["fc.weight"], criteria.score_weights(model, "random", seed=1)["fc.weight"])


@pytest.mark.slow
def test_bn_mode_is_honoured():
    model = models.build("resnet20")
    batches = _batches()
    train = criteria.score_weights(model, "snip", batches, bn_mode="train")
    evals = criteria.score_weights(model, "snip", batches, bn_mode="eval")
    flat_t = torch.cat([s.flatten() for s in train.values()])
    flat_e = torch.cat([s.flatten() for s in evals.values()])
    assert float((flat_t - flat_e).norm() / flat_e.norm()) > 0.5   # the mode matters a lot at θ_0
    default = criteria.score_weights(model, "snip", batches)       # snip's default: train
    assert all(torch.equal(default[k], train[k]) for k in train)
    # expectabs' default is eval, but train while the BatchNorms hold θ_0's placeholder statistics
    assert criteria.score.placeholder_statistics(model)
    at_theta0 = criteria.score_blocks(model, "expectabs", batches)
    assert at_theta0 == criteria.score_blocks(model, "expectabs", batches, bn_mode="train")
    assert at_theta0 != criteria.score_blocks(model, "expectabs", batches, bn_mode="eval")
    _randomize_bn_stats(model)                                     # as after training
    assert not criteria.score.placeholder_statistics(model)
    trained = criteria.score_blocks(model, "expectabs", batches)
    assert trained == criteria.score_blocks(model, "expectabs", batches, bn_mode="eval")
    assert trained != criteria.score_blocks(model, "expectabs", batches, bn_mode="train")
    # data-free synflow stays eval (one constant image has no batch statistics)
    assert criteria.score.default_bn_mode(registry.get("synflow", "weight"), models.build("resnet20")) == "eval"


# --- block level ------------------------------------------------------------------------------

def test_magnitude_block_score_is_the_sum_of_absolute_weights():
    model = models.build("resnet20")
    scores = criteria.score_blocks(model, "magnitude")
    means = criteria.score_blocks(model, "magnitude", aggregate="mean")
    assert list(scores) == surgery.removable_blocks(model)
    for name in scores:
        convs = [model.get_submodule(name).conv1.weight, model.get_submodule(name).conv2.weight]
        total = sum(float(w.detach().abs().double().sum()) for w in convs)
        assert scores[name] == pytest.approx(total, rel=1e-9)
        assert means[name] == pytest.approx(total / sum(w.numel() for w in convs), rel=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["branch", "output"])
def test_hrank_and_expectabs_equal_hand_computation_in_one_forward_pass_per_batch(target):
    model = models.build("resnet20")
    _randomize_bn_stats(model)
    batches = _batches(batch_size=8)                       # 20 images in 3 batches
    blocks = surgery.removable_blocks(model)
    outs = {b: [] for b in blocks}
    hooked = {b: surgery.last_bn(model, b) if target == "branch" else model.get_submodule(b) for b in blocks}
    hooks = [hooked[b].register_forward_hook(lambda m, a, o, b=b: outs[b].append(o.clone())) for b in blocks]
    model.eval()
    with torch.no_grad():
        for x, _ in batches:
            model(x)
    for h in hooks:
        h.remove()
    calls = []
    model.register_forward_pre_hook(lambda m, a: calls.append(1))
    hrank = criteria.score_blocks(model, "hrank", batches, target=target)
    assert len(calls) == len(batches)   # one forward pass per batch, nothing else
    expectabs = criteria.score_blocks(model, "expectabs", batches, target=target)
    for b in blocks:
        out = torch.cat(outs[b])
        bound = min(out.shape[-2:]) if target == "branch" else 1   # branch: rank / min(H, W)
        assert hrank[b] == pytest.approx(torch.linalg.matrix_rank(out).double().mean().item() / bound, rel=1e-9)
        assert expectabs[b] == pytest.approx(out.abs().double().mean().item(), rel=1e-6)
    assert 0 < min(hrank.values()) and max(hrank.values()) <= (1 if target == "branch" else 32)
    if target == "branch":   # the default
        assert hrank == criteria.score_blocks(model, "hrank", batches)


@pytest.mark.slow
def test_a_silenced_block_has_zero_kl_and_cka_and_is_selected_first():
    model = models.build("resnet20")
    _randomize_bn_stats(model)
    _silence(model, "layer2.2")
    batches = _batches()
    for criterion in ("kl", "cka"):
        scores = criteria.score_blocks(model, criterion, batches)
        assert scores["layer2.2"] == pytest.approx(0.0, abs=1e-12), criterion
        assert min(v for k, v in scores.items() if k != "layer2.2") > 1e-6, criterion
        plan = criteria.select_blocks(scores, 1, model=model, criterion=criterion)
        assert plan.removed == ["layer2.2"]


@pytest.mark.slow
def test_pls_vip_squares_sum_to_the_number_of_blocks_and_match_the_textbook_formula():
    import numpy as np
    from sklearn.cross_decomposition import PLSRegression

    from lottery_core.criteria.pls import vip

    model = models.build("resnet20")
    _randomize_bn_stats(model)
    scores = criteria.score_blocks(model, "pls", _batches(images_per_class=3))
    values = np.array(list(scores.values()))
    assert len(values) == 7 and sum(values ** 2) == pytest.approx(7, rel=1e-9)
    assert scores == criteria.score_blocks(model, "pls", _batches(images_per_class=3))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 5)), np.eye(3)[rng.integers(0, 3, 30)]
    fitted = PLSRegression(n_components=2).fit(x, y)
    t, w, q = fitted.x_scores_, fitted.x_weights_, fitted.y_loadings_
    ss = [float(t[:, a] @ t[:, a]) * float(q[:, a] @ q[:, a]) for a in range(2)]
    by_loop = [math.sqrt(5 * sum(ss[a] * (w[j, a] / np.linalg.norm(w[:, a])) ** 2 for a in range(2)) / sum(ss))
               for j in range(5)]
    np.testing.assert_allclose(vip(fitted), by_loop, rtol=1e-12)


# --- selection --------------------------------------------------------------------------------

def test_select_blocks_honours_min_blocks_per_stage_and_breaks_ties_in_forward_order():
    model = models.build("resnet20")   # 3 blocks per stage; removable: layer1.0-2, layer2.1-2, layer3.1-2
    scores = {"layer1.0": 0.1, "layer1.1": 0.2, "layer1.2": 0.3, "layer2.1": 0.5, "layer2.2": 0.5,
              "layer3.1": 0.9, "layer3.2": 0.4}
    plan = criteria.select_blocks(scores, 3, model=model, criterion="toy")
    assert plan.removed == ["layer1.0", "layer3.2", "layer2.1"]    # layer1 may lose one block only
    assert plan.kept == ["layer1.1", "layer1.2", "layer2.2", "layer3.1"]
    ticket = surgery.remove_blocks(model, plan.removed)
    assert [len(ticket.layer1), len(ticket.layer2), len(ticket.layer3)] == [2, 2, 2]
    loose = criteria.select_blocks(scores, 3, model=model, min_blocks_per_stage=1)
    assert loose.removed == ["layer1.0", "layer1.1", "layer3.2"]    # layer1 may now lose two
    plain = criteria.select_blocks(scores, 2, stages={n: n[5] for n in scores}, budget={"1": 1, "2": 0, "3": 1})
    assert plain.removed == ["layer1.0", "layer3.2"]
    with pytest.raises(LotteryError, match=r"^p=4 exceeds the 3 blocks resnet20 may lose \(min_blocks_per_stage=2\)$"):
        criteria.select_blocks(scores, 4, model=model)
    with pytest.raises(LotteryError, match=r"^p=8 exceeds the 7 blocks the network may lose$"):
        criteria.select_blocks(scores, 8)
    assert criteria.select_blocks(scores, 7).removed[:2] == ["layer1.0", "layer1.1"]


def test_ties_go_to_a_silenced_block_first_then_to_the_earlier_block():
    model = models.build("resnet20")
    _silence(model, "layer1.2")
    scores = dict.fromkeys(surgery.removable_blocks(model), 0.0)     # e.g. KL 0 of blocks without effect
    assert criteria.select_blocks(scores, 1, model=model).removed == ["layer1.2"]
    assert criteria.select_blocks(scores, 3, model=model).removed == ["layer1.2", "layer2.1", "layer3.1"]
    assert criteria.select_blocks(scores, 1).removed == ["layer1.0"]            # no model: forward order
    assert criteria.select_blocks({**scores, "layer1.2": 0.1}, 1, model=model).removed == ["layer1.0"]
    assert criteria.select.silenced(model, "layer1.2") and not criteria.select.silenced(model, "layer1.1")


def test_plan_is_plain_json_data():
    model = models.build("resnet20")
    plan = criteria.select_blocks(criteria.score_blocks(model, "magnitude"), 2, model=model, criterion="magnitude")
    data = json.loads(json.dumps(plan.to_dict()))
    assert criteria.Plan.from_dict(data) == plan
    assert data["criterion"] == "magnitude" and data["p"] == 2 and len(data["removed"]) == 2
    assert list(data["scores"]) == surgery.removable_blocks(model)


# --- bad input --------------------------------------------------------------------------------

def test_p_above_the_budget_names_the_maximum():
    model = models.build("resnet56")
    scores = criteria.score_blocks(model, "random")
    with pytest.raises(LotteryError) as err:
        criteria.select_blocks(scores, 30, model=model)
    assert str(err.value) == "p=30 exceeds the 21 blocks resnet56 may lose (min_blocks_per_stage=2)"
    assert len(criteria.select_blocks(scores, 21, model=model).removed) == 21


@pytest.mark.parametrize("call,message", [
    (lambda m, b: criteria.score_blocks(m, "grasp2", b),
     "unknown criterion 'grasp2'; choose one of: cka, consensus, expectabs, grasp, hrank, kl, magnitude, pls, random, snip, synflow"),
    (lambda m, b: criteria.score_weights(m, "hrank", b), "criterion 'hrank' scores whole blocks, not weights"),
    (lambda m, b: criteria.names("filter"), "unknown criterion level 'filter'; choose one of: block, weight"),
    (lambda m, b: criteria.score_blocks(m, "snip", None), "criterion 'snip' needs data"),
    (lambda m, b: criteria.score_weights(m, "grasp", None), "criterion 'grasp' needs data"),
    (lambda m, b: criteria.score_blocks(m, "kl", None), "criterion 'kl' needs data"),
    (lambda m, b: criteria.score_blocks(m, "snip", []), "criterion 'snip' needs at least one scoring batch"),
    (lambda m, b: criteria.score_blocks(m, "hrank", iter([])), "needs at least one scoring batch"),
    (lambda m, b: criteria.score_blocks(m, "snip", b, bn_mode="test"), "unknown bn_mode 'test'; choose one of: eval, train"),
    (lambda m, b: criteria.score_blocks(m, "snip", b, aggregate="max"), "unknown aggregate 'max'; choose one of: mean, sum"),
    (lambda m, b: criteria.score_blocks(m, "snip", b, temprature=2), "unknown criterion option 'temprature'"),
    (lambda m, b: criteria.score_blocks(m, "grasp", b, temperature=0), "temperature must be a number in (0, inf), got 0"),
    (lambda m, b: criteria.score_blocks(m, "hrank", b, target="stream"),
     "unknown target 'stream'; choose one of: branch, output"),
    (lambda m, b: criteria.score_blocks(m, "pls", b, target="Branch"),
     "unknown target 'Branch'; choose one of: branch, output"),
    (lambda m, b: criteria.score_blocks(m, "synflow", b, bn_mode="train"), "synflow needs bn_mode='eval' (it cannot score in train mode)"),
    (lambda m, b: criteria.score_blocks(m, "snip", [(b[0][0], b[0][1].float())]), "y must be int64 labels"),
    (lambda m, b: criteria.select_blocks({"layer2.0": 1.0}, 1, model=m),
     "block 'layer2.0' is not removable; removable blocks: layer1.0, layer1.1, layer1.2, layer2.1"),
    (lambda m, b: criteria.select_blocks({"layer1.0": float("nan")}, 1, model=m), "block scores must be finite"),
    (lambda m, b: criteria.select_blocks({"layer1.0": 1.0}, -1, model=m), "p must be a non-negative integer"),
    (lambda m, b: criteria.score_blocks(models.build("vgg11_bn"), "magnitude"), "VGG has no removable residual blocks"),
    (lambda m, b: criteria.score_blocks(models.build("resnet18"), "magnitude"),
     "no block of ResNet is removable with min_blocks_per_stage=2"),
])
def test_bad_input_gets_a_one_line_error(call, message):
    model = models.build("resnet20")
    with pytest.raises(LotteryError) as err:
        call(model, _batches())
    assert message in str(err.value) and "\n" not in str(err.value)
