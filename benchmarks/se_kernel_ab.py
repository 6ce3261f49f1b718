"""A/B of the whole-block SE kernel (``secli_se_nchw_f32``) between two versions of
``cpu_kernels.cpp``, at SE-ResNet-50's 16 site shapes, batch 1, 1 thread, CPU.

Both versions are compiled with the project's flags and loaded in this one process; every round
runs resnet50's own ``u.add_(identity).relu_()`` and then each version, each call after a 64 MB
write that pushes the FC weights out of the caches (as the convolutions between two SE sites
do in a network) with ``u`` and ``identity`` touched back in (the BN and the shortcut have just
written them). Prints, per version, the time the kernel takes beyond ``add_ + relu_`` summed
over the 16 sites: the median and quartiles over rounds.

    PYTHONPATH=$PWD python benchmarks/se_kernel_ab.py --against 1fad006   # a git revision
    PYTHONPATH=$PWD python benchmarks/se_kernel_ab.py --against /path/to/other/cpu_kernels.cpp
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from secli.kernels import cpu_build  # noqa: E402 - after sys.path names this checkout

#: (channels, spatial size, sites) of SE-ResNet-50's stages at 224 px
SITES = ((256, 56, 3), (512, 28, 4), (1024, 14, 6), (2048, 7, 3))
SOURCE_PATH = "secli/kernels/cpu_kernels.cpp"


def _source(against: str, scratch: Path) -> Path:
    path = Path(against)
    if path.is_file():
        return path
    text = subprocess.run(["git", "-C", str(ROOT), "show", f"{against}:{SOURCE_PATH}"], capture_output=True, text=True,
                          check=True).stdout
    target = scratch / "against.cpp"
    target.write_text(text)
    return target


def _load(source: Path, target: Path) -> object:
    compiler = cpu_build._compiler()
    if compiler is None:
        sys.exit("no C++ compiler")
    subprocess.run([compiler, *cpu_build._BASE_FLAGS, "-march=native", "-o", str(target), str(source)], check=True)
    entry = ctypes.CDLL(str(target)).secli_se_nchw_f32
    pointer, size, small = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    entry.argtypes = [pointer] * 8 + [small, size, size, size, size, small]
    entry.restype = None
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", required=True, help="a git revision or a cpu_kernels.cpp file to compare with")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        versions = {"this tree": _load(cpu_build.SOURCE, scratch / "this.so"),
                    args.against: _load(_source(args.against, scratch), scratch / "against.so")}
        flush = torch.empty(16 * 1024 * 1024)
        tensors = {}
        for c, size, _ in SITES:
            h = c // 16
            tensors[c] = (torch.randn(1, c, size, size), torch.randn(1, c, size, size), torch.randn(h, c),
                          torch.randn(h), torch.randn(c, h), torch.randn(c))
        extra: dict[str, list[float]] = {name: [] for name in versions}
        for _ in range(args.rounds):
            spent: dict[str, float] = {}
            for name in ("baseline", *versions):
                total = 0.0
                for c, size, sites in SITES:
                    u, identity, w1, b1, w2, b2 = tensors[c]
                    flush.add_(1.0)
                    u.add_(0.0)
                    identity.add_(0.0)
                    start = time.perf_counter()
                    if name == "baseline":
                        u.add_(identity).relu_()
                    else:
                        versions[name](u.data_ptr(), None, u.data_ptr(), identity.data_ptr(), w1.data_ptr(),  # type: ignore[operator]
                                       b1.data_ptr(), w2.data_ptr(), b2.data_ptr(), 0, 1, c, c // 16, size * size, 1)
                    total += (time.perf_counter() - start) * sites
                    u.normal_()  # keep the values bounded: each call rewrites u
                spent[name] = total
            for name in versions:
                extra[name].append(1e3 * (spent[name] - spent["baseline"]))
    print(f"whole-block SE kernel beyond resnet50's add_ + relu_, 16 sites, batch 1, ms ({args.rounds} rounds)")
    for name, values in extra.items():
        q1, median, q3 = statistics.quantiles(values, n=4)
        print(f"  {name:20s} median {median:.2f}  quartiles {q1:.2f} - {q3:.2f}")


if __name__ == "__main__":
    main()
