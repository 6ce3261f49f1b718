"""Devices a roofline can be drawn for: peak FLOP/s per dtype, memory bandwidth, launch overhead.

Every figure below is the vendor's dense peak (NVIDIA prints tensor-core rates "with sparsity"
marked by an asterisk; those are halved here), at boost clock, from the document named in
``source``. For GeForce cards the 16-bit tensor rate is the one "with FP32 accumulate", which is
what PyTorch's autocast uses (half the FP16-accumulate rate the cards' pages lead with). ``tf32``
is the tensor-core rate PyTorch uses for float32 convolutions (``cudnn.allow_tf32`` is on by
default; float32 matrix products stay on the FP32 units, ``matmul.allow_tf32`` being off); None
where the GPU has none, as ``bf16`` on V100 and T4 (which then run at their ``fp32`` rate).

``launch_us`` is not a datasheet figure: it is the time one more kernel costs in PyTorch's eager
mode beyond its own work (launch latency and the gap between kernels), an assumption (4 µs for
every GPU here) that a device file can replace.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

T = 1e12  # TFLOP/s
GB = 1e9  # GB/s (decimal, as the data sheets count)
GPU_LAUNCH_US = 4.0


@dataclass(frozen=True)
class Device:
    """One device's peaks. FLOP/s are dense (multiply-add = 2), bandwidth in bytes/s."""

    key: str
    name: str
    bandwidth: float
    fp32: float  # the vector units (and float32 matrix products)
    tf32: float | None
    bf16: float | None
    fp16: float | None
    launch_us: float
    source: str
    gpu: bool = True
    measured: bool = False

    def matrix_peak(self, kind: str, dtype: str) -> float:
        """Peak FLOP/s of a convolution or matrix product computing in ``dtype``."""
        if dtype == "bfloat16" and self.bf16:
            return self.bf16
        if dtype == "float16" and self.fp16:
            return self.fp16
        if dtype == "float32" and kind == "conv" and self.tf32:
            return self.tf32
        return self.fp32

    def to_dict(self) -> dict[str, Any]:
        found = asdict(self)
        found["bandwidth_gb_per_s"] = self.bandwidth / GB
        for key in ("fp32", "tf32", "bf16", "fp16"):
            found[f"{key}_tflops"] = None if found[key] is None else found[key] / T
            del found[key]
        del found["bandwidth"]
        return found


def _gpu(key: str, name: str, bandwidth_gb: float, fp32: float, tf32: float | None, bf16: float | None,
         fp16: float | None, source: str) -> Device:
    return Device(key, name, bandwidth_gb * GB, fp32 * T, None if tf32 is None else tf32 * T,
                  None if bf16 is None else bf16 * T, None if fp16 is None else fp16 * T, GPU_LAUNCH_US, source)


_HOPPER = "https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet"
_H200 = "https://nvdam.widen.net/s/nb5zzzsjdf/hpc-datasheet-sc23-h200-datasheet-3002446"
_A100 = "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf"
_L4 = "https://resources.nvidia.com/en-us-data-center-overview/l4-gpu-datasheet"
_L40S = "https://resources.nvidia.com/en-us-l40s/l40s-datasheet-28413"
_V100 = "https://images.nvidia.com/content/technologies/volta/pdf/volta-v100-datasheet-update-us-1165301-r5.pdf"
_T4 = "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/tesla-t4/t4-tensor-core-datasheet-951643.pdf"
_ADA = "https://images.nvidia.com/aem-dam/Solutions/geforce/ada/nvidia-ada-gpu-architecture.pdf"
_GA102 = "https://www.nvidia.com/content/PDF/nvidia-ampere-ga-102-gpu-architecture-whitepaper-v2.pdf"
_BLACKWELL = "https://images.nvidia.com/aem-dam/Solutions/geforce/blackwell/nvidia-rtx-blackwell-gpu-architecture.pdf"

#: key -> device. Figures: bandwidth GB/s, then dense TFLOP/s fp32, tf32, bf16, fp16.
DEVICES: dict[str, Device] = {d.key: d for d in (
    _gpu("h100", "NVIDIA H100 SXM5 80GB", 3350, 67, 494.7, 989.4, 989.4,
         f"{_HOPPER} (H100 SXM: FP32 67, TF32 989*, BF16/FP16 1,979* TFLOPS, * = with sparsity; 3.35 TB/s)"),
    _gpu("h100-pcie", "NVIDIA H100 PCIe 80GB", 2000, 51, 378, 756.5, 756.5,
         f"{_HOPPER} (H100 PCIe: FP32 51, TF32 756*, BF16/FP16 1,513* TFLOPS; 2 TB/s)"),
    _gpu("h200", "NVIDIA H200 SXM 141GB", 4800, 67, 494.7, 989.4, 989.4,
         f"{_H200} (H200 SXM: FP32 67, TF32 989*, BF16/FP16 1,979* TFLOPS; 4.8 TB/s)"),
    _gpu("a100", "NVIDIA A100 SXM4 80GB", 2039, 19.5, 156, 312, 312,
         f"{_A100} (A100 80GB SXM: FP32 19.5, TF32 156, BF16/FP16 312 TFLOPS dense; 2,039 GB/s)"),
    _gpu("a100-40gb", "NVIDIA A100 SXM4 40GB", 1555, 19.5, 156, 312, 312,
         f"{_A100} (A100 40GB SXM: as the 80GB, 1,555 GB/s)"),
    _gpu("l4", "NVIDIA L4", 300, 30.3, 60, 121, 121,
         f"{_L4} (L4: FP32 30.3, TF32 120*, BF16/FP16 242* TFLOPS; 300 GB/s)"),
    _gpu("l40s", "NVIDIA L40S", 864, 91.6, 183, 362.05, 362.05,
         f"{_L40S} (L40S: FP32 91.6, TF32 366*, BF16/FP16 733* TFLOPS; 864 GB/s)"),
    _gpu("v100", "NVIDIA V100 SXM2", 900, 15.7, None, None, 125,
         f"{_V100} (V100 SXM2: FP32 15.7, tensor 125 TFLOPS; 900 GB/s; no TF32 or BF16 units)"),
    _gpu("t4", "NVIDIA T4", 320, 8.1, None, None, 65,
         f"{_T4} (T4: FP32 8.1, mixed FP16/FP32 65 TFLOPS; 320 GB/s; no TF32 or BF16 units)"),
    _gpu("rtx4090", "NVIDIA GeForce RTX 4090", 1008, 82.6, 82.6, 165.2, 165.2,
         f"{_ADA} (appendix, RTX 4090: FP32 82.6, TF32 tensor 82.6, FP16/BF16 tensor with FP32 accumulate "
         "165.2 TFLOPS; 1,008 GB/s)"),
    _gpu("rtx3090", "NVIDIA GeForce RTX 3090", 936, 35.6, 35.6, 71, 71,
         f"{_GA102} (appendix A, RTX 3090: FP32 35.6, TF32 tensor 35.6, FP16/BF16 tensor with FP32 accumulate "
         "71 TFLOPS; 936 GB/s)"),
    _gpu("rtx5090", "NVIDIA GeForce RTX 5090", 1792, 104.8, 104.8, 209.5, 209.5,
         f"{_BLACKWELL} (RTX 5090: FP32 104.8, FP16/BF16 tensor with FP32 accumulate 209.5 TFLOPS "
         "(419 with FP16 accumulate); 1,792 GB/s)"),
)}

#: Substrings of ``torch.cuda.get_device_name()`` -> key, most specific first.
_NAMES = (
    ("h100 pcie", "h100-pcie"), ("h100", "h100"), ("h200", "h200"), ("gh200", "h200"), ("a100-sxm4-40gb", "a100-40gb"),
    ("a100-pcie-40gb", "a100-40gb"), ("a100", "a100"), ("l40s", "l40s"), ("l4", "l4"), ("v100", "v100"),
    ("4090", "rtx4090"), ("3090", "rtx3090"), ("5090", "rtx5090"), ("tesla t4", "t4"), (" t4", "t4"),
)


def known(key: str) -> Device | None:
    return DEVICES.get(key.strip().lower())


def recognise(device_name: str) -> Device | None:
    """The table's entry for a CUDA device name (``NVIDIA H100 80GB HBM3``), or None."""
    name = device_name.lower()
    for fragment, key in _NAMES:
        if fragment in name:
            return DEVICES[key]
    return None
