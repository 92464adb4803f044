"""benchmarks/gpu_check.py: its CPU smoke run, without any of the packages the GPU machine lacks."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.gpu_check import table
from benchmarks.pack_cifar import pack, unpack
from lottery_core.data import load_data

pytestmark = pytest.mark.slow   # the GPU check's CPU smoke run in fresh processes

ROOT = Path(__file__).resolve().parents[1]
ABSENT_ON_THE_GPU_MACHINE = ("ray", "mlflow", "codecarbon", "torch_pruning", "torchattacks", "optuna", "yaml",
                             "imagecorruptions")


def test_pack_round_trips_the_images_labels_and_fingerprint(tiny_folder, tmp_path):
    data = load_data("folder", tiny_folder)
    back = unpack(pack(data, tmp_path / "pack.npz"))
    assert back.train_images.equal(data.train_images) and back.test_labels.equal(data.test_labels)
    assert (back.classes, back.mean, back.fingerprint) == (data.classes, data.mean, data.fingerprint)


def test_the_cpu_smoke_run_does_every_step_without_ray_mlflow_or_pruning_libraries(tiny_folder, tmp_path):
    packed = pack(load_data("folder", tiny_folder), tmp_path / "pack.npz")
    out = tmp_path / "gpu_check.json"
    block = "".join(f"sys.modules[{m!r}] = None; " for m in ABSENT_ON_THE_GPU_MACHINE)
    code = (f"import sys; {block}from benchmarks.gpu_check import main; "
            f"raise SystemExit(main(['--data', {str(packed)!r}, '--out', {str(out)!r}, '--smoke']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["environment"]["smoke"] is True
    for step in ("throughput", "sharing", "tickets", "accuracy", "resume"):
        assert "error" not in result[step], (step, result[step])
    assert set(result["throughput"]) - {"step_s"} == {"resnet20/b16/fp32", "resnet20/b16/bf16"}
    assert result["sharing"]["2_processes"]["aggregate_images_per_s"] > 0
    assert result["tickets"]["first"]["removed"][:7] == [f"layer1.{i}" for i in range(7)]
    assert result["tickets"]["first"]["macs_ratio"] > 1 and result["tickets"]["spread"]["macs_ratio"] > 1
    assert len(result["accuracy"]["removed"][0]) == 3
    resume = result["resume"]
    assert resume["resumed_from_epoch"] == 1 and resume["holds"] and resume["bit_identical"]  # CPU: deterministic
    assert "skipped" in result["compile"]
    rendered = table(result)
    assert "| resnet20 | 16 |" in rendered and "| 2 |" in rendered and "| first |" in rendered


def test_a_missing_data_file_is_one_line_and_status_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--data", str(tmp_path / "none.npz")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "pack one here with `python -m benchmarks.pack_cifar`" in done.stderr
