"""Pack a class-balanced CIFAR-10 subset into one compressed file the GPU machine can carry.

    .venv/bin/python -m benchmarks.pack_cifar [--data-dir DIR] [--train 10000] [--test 2000] [--out PATH]

The GPU machine has no copy of the data folder and carries at most 64 MiB of files, so `benchmarks/gpu_check.py`
reads its data from this file: uint8 images (N, 3, 32, 32) and int64 labels of both splits, the
class names and the normalization constants, in numpy's compressed .npz (10,000 + 2,000 images:
~35 MB). The subsets are `load_data`'s class-balanced draws (data seed 0); the source data set's
content fingerprint travels with them.
"""
import argparse
from pathlib import Path

import numpy as np
import torch

from lottery_core.data import ImageData

HERE = Path(__file__).resolve().parent
DEFAULT_PACK = HERE / "gpu" / "cifar10_subset.npz"
MAX_BYTES = 60 * 10**6


def pack(data: ImageData, out: str | Path) -> Path:
    """Write `data`'s train and test splits (uint8) to `out` (.npz, compressed); returns the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, train_images=data.train_images.cpu().numpy(), train_labels=data.train_labels.cpu().numpy(),
                        test_images=data.test_images.cpu().numpy(), test_labels=data.test_labels.cpu().numpy(),
                        classes=np.array(data.classes), mean=np.array(data.mean), std=np.array(data.std),
                        name=np.array(data.name), fingerprint=np.array(data.fingerprint))
    if out.stat().st_size > MAX_BYTES:
        raise SystemExit(f"{out} is {out.stat().st_size / 1e6:.1f} MB, over the {MAX_BYTES / 1e6:.0f} MB a GPU run "
                         "may carry: pack fewer images")
    return out


def unpack(path: str | Path, device="cpu") -> ImageData:
    """The ImageData of a packed file (no validation split), on `device`."""
    path = Path(path)
    with np.load(path) as z:
        empty = torch.zeros((0, *z["train_images"].shape[1:]), dtype=torch.uint8)
        data = ImageData(torch.from_numpy(z["train_images"]), torch.from_numpy(z["train_labels"]).long(),
                         empty, torch.zeros(0, dtype=torch.int64),
                         torch.from_numpy(z["test_images"]), torch.from_numpy(z["test_labels"]).long(),
                         num_classes=len(z["classes"]), classes=tuple(str(c) for c in z["classes"]),
                         mean=tuple(float(v) for v in z["mean"]), std=tuple(float(v) for v in z["std"]),
                         name=str(z["name"]), source=str(path.resolve()), fingerprint=str(z["fingerprint"]))
    return data.to(device)


def main(argv=None) -> int:
    from benchmarks.common import default_data_dir
    from lottery_core.data import load_data

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=default_data_dir(), help="CIFAR-10 ImageFolder copy")
    parser.add_argument("--name", default="cifar10", help="load_data name (cifar10, or folder for any ImageFolder)")
    parser.add_argument("--train", type=int, default=10000, help="class-balanced training images")
    parser.add_argument("--test", type=int, default=2000, help="class-balanced test images")
    parser.add_argument("--out", default=str(DEFAULT_PACK))
    args = parser.parse_args(argv)
    data = load_data(args.name, args.data_dir, train_size=args.train, test_size=args.test)
    out = pack(data, args.out)
    print(f"wrote {out}: {len(data.train_labels)} train + {len(data.test_labels)} test images, "
          f"{out.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
