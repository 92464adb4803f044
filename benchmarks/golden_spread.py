"""How far the golden runs' trained values move with the CPU's kernels, in default and reference mode.

The golden runs (tests/test_golden_results.py) train tiny fp32 networks. In the default mode,
oneDNN chooses its convolution kernels, and with them the order of summation, by the processor's
instruction set and the thread count, so a trained value is not the same on every x86 CPU. The
golden test therefore trains in reference mode (its `REFERENCE_ENV`: oneDNN off, ATen's baseline
kernels, MKL's reproducible GEMM path, one thread). This benchmark runs the golden cases once per
setting, each in a fresh interpreter (the settings must be in the environment before torch loads):

    default           the machine's own kernels, 2 threads
    threads=1         OMP_NUM_THREADS=1
    avx2              ONEDNN_MAX_CPU_ISA=AVX2 and MKL_ENABLE_INSTRUCTIONS=AVX2 (an AVX2-only CPU's kernels)

in both modes, and writes for every value the largest relative difference from "default".

    python -m benchmarks.golden_spread --out benchmarks/golden_spread.json
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

SETTINGS = {
    "default": {},
    "threads=1": {"OMP_NUM_THREADS": "1"},
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}
REPO = Path(__file__).resolve().parent.parent


def default_mode(extra_env: dict) -> dict:
    """The golden cases in a fresh interpreter with the machine's own kernels (oneDNN on) and the
    setting's thread count (2 unless OMP_NUM_THREADS says otherwise)."""
    code = ("import json, tempfile; from pathlib import Path\n"
            "from tests.conftest import write_image_folder\n"
            "from tests.test_golden_results import BASE, measure_cases\n"
            "import os; BASE['threads'] = int(os.environ.get('OMP_NUM_THREADS', '2'))\n"
            "with tempfile.TemporaryDirectory() as tmp:\n"
            "    m = measure_cases(Path(tmp), write_image_folder(Path(tmp) / 'data'))\n"
            "print(json.dumps({' '.join(c): v for c, v in m.items()}))")
    child = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, **extra_env},
                           capture_output=True, text=True, check=True)
    return json.loads(child.stdout.strip().splitlines()[-1])


def relative(a, b) -> float:
    if isinstance(b, str):
        return 0.0 if a == b else 1.0
    return abs(a - b) / max(abs(b), 1e-12)


def spread(results: dict[str, dict]) -> dict:
    """{case: {value: largest relative difference of any setting from "default"}}."""
    base = results["default"]
    out = {}
    for case, values in base.items():
        out[case] = {}
        for key, value in values.items():
            others = [r[case][key] for name, r in results.items() if name != "default"]
            if isinstance(value, list):
                out[case][key] = max(relative(o, v) for other in others for o, v in zip(other, value, strict=True))
            else:
                out[case][key] = max(relative(o, value) for o in others)
    return out


def main(argv=None) -> None:
    sys.path.insert(0, str(REPO))
    from tests.test_golden_results import measure_in_reference_mode

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None, help="write the JSON here (default: print the spreads)")
    args = parser.parse_args(argv)
    report = {"settings": SETTINGS}
    for mode, measure in (("reference", measure_in_reference_mode), ("default", default_mode)):
        results = {name: measure(env) for name, env in SETTINGS.items()}
        report[mode] = {"measured": results, "largest_relative_difference": spread(results)}
        print(mode, json.dumps(report[mode]["largest_relative_difference"], indent=1), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
