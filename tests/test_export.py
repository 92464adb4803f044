"""lottery_core.export: a block ticket in ONNX gives PyTorch's eval-mode outputs in ONNX Runtime."""
import onnx
import pytest
import torch

from lottery_core import models, surgery
from lottery_core.errors import LotteryError
from lottery_core.export import OUTPUT_NAME, export_onnx, onnx_latency, onnx_predict, onnx_session
from tests.helpers import randomize_bn_stats

pytestmark = pytest.mark.slow   # ONNX export and ONNX Runtime

REMOVED = ["layer1.1", "layer3.2"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A ResNet20 ticket without two blocks (BatchNorm statistics not trivial), exported once."""
    torch.manual_seed(0)
    dense = models.build("resnet20", num_classes=10)
    randomize_bn_stats(dense)
    ticket = surgery.remove_blocks(dense, REMOVED)
    path = export_onnx(ticket, tmp_path_factory.mktemp("onnx") / "ticket.onnx")
    return {"ticket": ticket, "path": path, "training_after_export": ticket.training}


@pytest.mark.parametrize("batch", [1, 4])
def test_onnx_runtime_gives_pytorchs_eval_outputs(exported, batch):
    ticket = exported["ticket"]
    images = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(batch))
    ticket.eval()
    with torch.no_grad():
        expected = ticket(images)
    got = onnx_predict(onnx_session(exported["path"]), images)
    assert got.shape == (batch, 10)
    assert (got - expected).abs().max().item() <= 1e-4


def test_the_onnx_graph_is_the_shallower_network_with_a_dynamic_batch(exported):
    graph = onnx.load(str(exported["path"]))
    convs = [n for n in graph.graph.node if n.op_type == "Conv"]
    # ResNet20 option A: a stem conv and two per block; 9 blocks - 2 = 7 left
    assert len(convs) == 1 + 2 * 7 == sum(isinstance(m, torch.nn.Conv2d) for m in exported["ticket"].modules())
    assert {p.key: p.value for p in graph.metadata_props}["removed_blocks"] == ",".join(REMOVED)
    assert graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert not list(exported["path"].parent.glob("*.data"))   # weights inside the one file
    assert exported["training_after_export"]                  # the model itself was left in train mode


@pytest.mark.parametrize("kwargs,message", [
    ({"input_size": (32, 32)}, r"input_size must be one image's \(C, H, W\) as three positive integers, got \(32, 32\)"),
    ({"name": "ticket.pt"}, r"ONNX file name 'ticket.pt' must end in .onnx"),
    ({"name": "missing/ticket.onnx"}, r"folder .*missing does not exist"),
    ({"input_size": (1, 32, 32)}, r"CifarResNet does not take input \(batch, 1, 32, 32\): .*channels"),
])
def test_bad_input_is_one_line(tmp_path, kwargs, message):
    name = kwargs.pop("name", "ticket.onnx")
    with pytest.raises(LotteryError, match=message) as err:
        export_onnx(models.build("resnet20"), tmp_path / name, **kwargs)
    assert "\n" not in str(err.value)


def test_onnx_latency_is_the_median_of_the_timed_runs(monkeypatch):
    durations = iter([9.0, 9.0, 1.0, 5.0, 2.0])   # two warm-up runs, then three timed ones
    clock = {"now": 0.0}

    class Session:
        calls = []

        def run(self, outputs, feeds):
            Session.calls.append((outputs, {k: v.shape for k, v in feeds.items()}))
            clock["now"] += next(durations)

    monkeypatch.setattr("lottery_core.accounting.time.perf_counter", lambda: clock["now"])
    assert onnx_latency(Session(), batch_size=3, repeats=3, warmup=2) == 2.0
    assert Session.calls == [([OUTPUT_NAME], {"images": (3, 3, 32, 32)})] * 5
