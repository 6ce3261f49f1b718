#!/usr/bin/env bash
# The GPU figures that docs/BENCHMARKS.md asks for: ResNet-50, SE, SK, timm's resnet50 and
# seresnet50 side by side (torchvision resnet50 is the baseline), batch 256 at 224, bf16,
# channels_last, eager and torch.compile, inference and training. Not run in the session that
# wrote it (no GPU was lent); run it on one and paste the Markdown into docs/BENCHMARKS.md.
#
#   bash benchmarks/profile_gpu.sh [out-dir]        # SECLI="python -m commands.app" to use a checkout
set -euo pipefail
OUT=${1:-benchmarks/results}
SECLI=${SECLI:-secli}
mkdir -p "$OUT"
$SECLI inject resnet50 --block se -o "$OUT/se_r50.pt" --force -f json > /dev/null
$SECLI inject resnet50 --block sk -o "$OUT/sk_r50.pt" --force -f json > /dev/null
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
for compile in "" "--compile"; do
  tag=eager
  [ -n "$compile" ] && tag=compiled
  # the tables go to stdout as Markdown; the results file keeps every figure for 'secli report'
  $SECLI profile resnet50 "$OUT/se_r50.pt" "$OUT/sk_r50.pt" timm:resnet50 timm:seresnet50 \
    --device cuda -b 256 --image-size 224 --amp bf16 --channels-last $compile \
    --mode both --iters 50 --warmup 10 --auto-batch \
    --format markdown --out "$OUT/gpu_resnet50_b256_bf16_cl_$tag.json" --force
  # issue 8: each implementation against resnet50 in one run (SE and SK, eager and fused), then
  # the fused blocks again with the opt-in Triton kernels (SECLI_TRITON=1; unmeasured until here)
  for triton in 0 1; do
    SECLI_TRITON=$triton $SECLI profile resnet50 --block se,sk --impl eager,fused \
      --device cuda -b 256 --image-size 224 --amp bf16 --channels-last $compile \
      --mode both --iters 50 --warmup 10 --auto-batch \
      --format markdown --out "$OUT/gpu_resnet50_impl_b256_bf16_cl_${tag}_triton$triton.json" --force
  done
done
