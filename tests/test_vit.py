"""Vision-transformer encoder layers as removable blocks: layout, surgery, criteria, accounting.

A tiny torchvision ViT (patch 4 on 32x32 images: N = 8·8 + 1 = 65 tokens, 4 layers, width 32,
2 heads, MLP 64) keeps every test to a fraction of a second on 2 cores.
"""
import functools

import pytest
import torch
from helpers import silence

from lottery_core import accounting, criteria, models, surgery
from lottery_core.criteria.applicability import ACTIVATION_CRITERIA, model_traits, refusal
from lottery_core.errors import LotteryError
from lottery_core.models.vit import build_vit
from lottery_core.normalize import CIFAR10_MEAN, CIFAR10_STD
from pipelines.config import load_config

pytestmark = pytest.mark.numerical   # values oneDNN's kernels compute: CI reruns them under AVX2 and 1 thread

PATCH, LAYERS, HEADS, D, MLP, CLASSES = 4, 4, 2, 32, 64, 10
N = (32 // PATCH) ** 2 + 1      # tokens, the class token included
LAYER_NAMES = [f"encoder.layers.{i}" for i in range(LAYERS)]
DEAD = "encoder.layers.2"


def tiny_vit(seed: int = 0):
    torch.manual_seed(seed)
    return build_vit(PATCH, LAYERS, HEADS, D, MLP, num_classes=CLASSES)


def _batches():
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (30, 3, 32, 32), dtype=torch.uint8, generator=gen)
    return criteria.scoring_batches(images, torch.arange(30) % 10, 2, 0, CIFAR10_MEAN, CIFAR10_STD)


BATCHES = _batches()


@functools.cache
def _silenced():
    model = tiny_vit()
    silence(model, DEAD)
    return model


# --- layout and surgery -------------------------------------------------------------------------

def test_encoder_layers_are_one_stage_of_removable_blocks():
    model = tiny_vit()
    assert surgery.removable_blocks(model) == LAYER_NAMES
    assert surgery.removable_blocks(model, input_size=(3, 32, 32)) == LAYER_NAMES   # shapes checked too
    assert set(surgery.block_stage(model).values()) == {1}
    assert surgery.stage_budget(model) == {1: LAYERS - 2}
    assert surgery.stage_budget(model, min_blocks_per_stage=1) == {1: LAYERS - 1}
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, CLASSES)


def test_vit_tiny_is_registered_and_its_skeleton_is_its_layout():
    model = models.build("vit_tiny")
    assert "vit_tiny" in models.names() and models.options("vit_tiny") == set()
    assert surgery.removable_blocks(model, min_blocks_per_stage=1) == [f"encoder.layers.{i}" for i in range(6)]
    assert surgery.max_removable(models.skeleton("vit_tiny"), 2) == surgery.max_removable(model, 2) == 4
    assert model_traits(model) == model_traits(models.skeleton("vit_tiny")) == {"layernorm", "token_blocks"}
    assert model_traits(models.build("resnet20")) == set()
    assert model.heads.head.weight.abs().sum() > 0   # not torchvision's zero head (module docstring)


def test_torchvisions_named_encoder_layers_are_refused_with_the_fix():
    from torchvision.models.vision_transformer import VisionTransformer

    raw = VisionTransformer(32, PATCH, 2, HEADS, D, MLP, num_classes=CLASSES)
    with pytest.raises(LotteryError, match=r"^block encoder.layers.encoder_layer_0 is named, not numbered: .*"
                                           r"nn.Sequential\(\*blocks\)"):
        surgery.removable_blocks(raw)


def test_removing_a_layer_makes_a_shallower_vit_whose_other_weights_are_the_originals():
    model = tiny_vit()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ticket = surgery.remove_blocks(model, ["encoder.layers.1"])
    assert len(ticket.encoder.layers) == LAYERS - 1 and len(model.encoder.layers) == LAYERS
    kept = [0, 2, 3]   # original index of each ticket layer
    for new, old in enumerate(kept):
        ours, theirs = ticket.encoder.layers[new].state_dict(), model.encoder.layers[old].state_dict()
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    outside = [k for k in model.state_dict() if not k.startswith("encoder.layers.")]
    assert {"conv_proj.weight", "class_token", "encoder.pos_embedding", "encoder.ln.weight", "heads.head.bias"} <= set(outside)
    assert all(torch.equal(ticket.state_dict()[k], model.state_dict()[k]) for k in outside)
    one_layer = sum(p.numel() for p in model.encoder.layers[1].parameters())
    assert accounting.count_params(ticket) == accounting.count_params(model) - one_layer
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())   # the original untouched
    assert ticket.dense_key_map["encoder.layers.3.mlp.3.weight"] == "encoder.layers.2.mlp.3.weight"


@pytest.mark.parametrize("layer", LAYER_NAMES)
def test_removing_a_silenced_layer_preserves_the_function(layer):
    """Attention output projection and last MLP Linear zero: the layer is the identity."""
    model = tiny_vit()
    silence(model, layer)
    assert criteria.select.silenced(model, layer)
    assert not criteria.select.silenced(model, LAYER_NAMES[(LAYER_NAMES.index(layer) + 1) % LAYERS])
    ticket = surgery.remove_blocks(model, [layer]).eval()
    model.eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ticket(x), model(x), atol=1e-6, rtol=0)
        with surgery.bypass_blocks(model, [layer]):
            torch.testing.assert_close(model(x), ticket(x), atol=1e-6, rtol=0)


# --- criteria -----------------------------------------------------------------------------------

# every criterion the ViT admits, but grasp (signed: a silenced layer scores 0, not the lowest), magnitude
# (reads only weights: a silenced layer keeps the rest of its weights) and random (the control)
ADMITTED = [c for c in criteria.names("block") if refusal(c, model_traits(models.skeleton("vit_tiny"))) is None]


@pytest.mark.parametrize("criterion", [c for c in ADMITTED if c not in ("grasp", "magnitude", "random")])
def test_a_silenced_layer_scores_zero_lowest_and_goes_first(criterion):
    model = _silenced()
    scores = criteria.score_blocks(model, criterion, BATCHES)
    assert list(scores) == LAYER_NAMES
    live = [s for n, s in scores.items() if n != DEAD]
    assert scores[DEAD] == pytest.approx(0.0, abs=1e-12)
    assert scores[DEAD] < min(live)
    assert criteria.select_blocks(scores, 1, model=model).removed == [DEAD]


def test_snip_scores_every_weight_of_a_layer_the_qkv_projection_included():
    model = _silenced()
    snip = criteria.score_weights(model, "snip", BATCHES)
    layer = ["encoder.layers.0.self_attention.in_proj_weight", "encoder.layers.0.self_attention.out_proj.weight",
             "encoder.layers.0.mlp.0.weight", "encoder.layers.0.mlp.3.weight"]
    assert [k for k in snip if k.startswith("encoder.layers.0.")] == layer
    assert snip[layer[0]].shape == (3 * D, D) and snip[layer[0]].sum() > 0


def test_grasp_does_not_see_a_silenced_layer_because_its_silencers_are_scored_weights():
    """Unlike a ResNet block silenced at a BatchNorm (γ is not a scored weight), a ViT layer is
    silenced at two Linear weights that GraSP scores: their own score θ ⊙ Hg is 0 (θ = 0), but
    their gradient is not, and it depends on the layer's q/k/v and first MLP weights, so through
    H's cross terms those weights get nonzero scores and the layer does not score 0."""
    grasp = criteria.score_weights(_silenced(), "grasp", BATCHES)
    prefix = f"{DEAD}."
    assert not grasp[prefix + "self_attention.out_proj.weight"].any() and not grasp[prefix + "mlp.3.weight"].any()
    assert grasp[prefix + "self_attention.in_proj_weight"].abs().sum() > 0 and grasp[prefix + "mlp.0.weight"].abs().sum() > 0
    blocks = criteria.score_blocks(_silenced(), "grasp", BATCHES)
    assert blocks[DEAD] != 0.0 and all(abs(s) < float("inf") for s in blocks.values())


def test_torchvisions_zero_head_would_blind_kl_and_snip_which_is_why_ours_is_live():
    """With the head at zero (torchvision's init, for fine-tuning) the logits are constant and no
    gradient reaches the encoder: every layer scores exactly 0 under KL and SNIP at θ_0, so block
    order would choose the ticket; `score_blocks` refuses that, naming the zero head as the cause."""
    model = tiny_vit()
    with torch.no_grad():
        model.heads.head.weight.zero_()
        model.heads.head.bias.zero_()
    for criterion in ("kl", "snip"):
        with pytest.raises(LotteryError, match=rf"^{criterion} cannot rank the blocks of VisionTransformer: all 4 "
                                               r"block scores are exactly 0, .*the classifier head is zero"):
            criteria.score_blocks(model, criterion, BATCHES)
    assert len(set(criteria.score_blocks(tiny_vit(), "kl", BATCHES).values())) == LAYERS


def test_synflow_is_refused_with_its_reason_in_one_line():
    model = tiny_vit()
    for call in (lambda: criteria.score_blocks(model, "synflow"), lambda: criteria.score_weights(model, "synflow")):
        with pytest.raises(LotteryError, match=r"^synflow cannot score a network with LayerNorm .*LN\(a·z\) = LN\(z\)") as err:
            call()
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("criterion", ACTIVATION_CRITERIA)
def test_activation_criteria_are_refused_on_token_sequences(criterion):
    with pytest.raises(LotteryError, match=rf"^{criterion} reads conv feature maps .* token sequence") as err:
        criteria.score_blocks(tiny_vit(), criterion, BATCHES)
    assert "\n" not in str(err.value)


def test_a_consensus_with_a_refused_member_is_refused_before_any_member_scores(monkeypatch):
    from lottery_core.criteria import score

    scored = []
    real = score.score_blocks
    monkeypatch.setattr(score, "score_blocks", lambda model, c, *a, **k: scored.append(c) or real(model, c, *a, **k))
    with pytest.raises(LotteryError, match="^synflow cannot score a network with LayerNorm"):
        real(tiny_vit(), "consensus", BATCHES, members=("kl", "synflow"))
    assert scored == []


def test_the_run_config_refuses_what_does_not_apply_to_a_vit():
    base = ["model.name=vit_tiny", "pipeline=ticket_init"]
    assert load_config(None, [*base, "pruning.criterion=kl", "pruning.p=4"]).model.name == "vit_tiny"
    assert load_config(None, [*base, "pruning.criterion=consensus"]).pruning.criterion == "consensus"
    with pytest.raises(LotteryError, match=r"^pruning.criterion=synflow on model.name=vit_tiny: synflow cannot"):
        load_config(None, [*base, "pruning.criterion=synflow"])
    with pytest.raises(LotteryError, match=r"^pruning.criterion=consensus on model.name=vit_tiny: hrank reads"):
        load_config(None, [*base, "pruning.criterion=consensus", "pruning.members=[kl,hrank]"])
    with pytest.raises(LotteryError, match=r"^pipeline=filter_ticket prunes conv filters .* vit_tiny"):
        load_config(None, ["model.name=vit_tiny", "pipeline=filter_ticket", "pruning.criterion=snip"])
    with pytest.raises(LotteryError, match=r"^pruning.p=5 exceeds the 4 blocks vit_tiny may lose"):
        load_config(None, [*base, "pruning.criterion=kl", "pruning.p=5"])
    assert load_config(None, ["pruning.criterion=synflow"]).pruning.criterion == "synflow"   # a ResNet: fine


# --- accounting ---------------------------------------------------------------------------------

def closed_form_macs(layers: int) -> int:
    """Patch embedding (64 patches x D filters of 3·4·4) + per layer: q, k, v projections 3·N·D²,
    QKᵀ and attention·V 2·N²·D, output projection N·D², MLP 2·N·D·MLP; + the head D·classes."""
    per_layer = 3 * N * D * D + 2 * N * N * D + N * D * D + 2 * N * D * MLP
    return 64 * D * 3 * PATCH * PATCH + layers * per_layer + D * CLASSES


def test_macs_include_attention_and_match_the_closed_form():
    model = tiny_vit()
    assert closed_form_macs(LAYERS) == 98_304 + 4 * 802_880 + 320 == 3_310_144
    assert accounting.count_macs(model) == closed_form_macs(LAYERS)
    ticket = surgery.remove_blocks(model, ["encoder.layers.0", "encoder.layers.3"])
    assert accounting.count_macs(ticket) == closed_form_macs(LAYERS - 2)
    assert torch.backends.mha.get_fastpath_enabled()   # counting restored torch's setting


def test_memory_and_filters_of_a_vit_are_counted():
    """Activations: the patch embedding (64·D), per layer LayerNorm 2·N·D, attention 5·N·D (q, k, v,
    its output, the output projection), MLP Linears N·MLP + N·D and GELU N·MLP; the final LayerNorm
    N·D and the logits."""
    cost = accounting.measure(tiny_vit())
    per_layer = 2 * N * D + 5 * N * D + 2 * N * MLP + N * D
    assert cost.activations == 64 * D + LAYERS * per_layer + N * D + CLASSES
    assert cost.params == accounting.count_params(tiny_vit())
    assert cost.memory_bytes == 4 * (cost.params + cost.activations)
    assert cost.filters == D   # the patch embedding's filters; encoder layers have no conv


def test_the_quick_vit_configs_load_and_the_ticket_compares_with_the_dense_run():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "configs" / "quick"
    dense, ticket = load_config(root / "vit_tiny_dense.yaml"), load_config(root / "vit_tiny_ticket_init.yaml")
    assert dense.model.name == ticket.model.name == "vit_tiny" and ticket.pruning.criterion == "consensus"
    assert ticket.dense().identity() == dense.identity()
