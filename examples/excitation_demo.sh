#!/usr/bin/env bash
# Train SE-ResNet-18 on the built-in synthetic shapes, then look at its excitations.
#   bash examples/excitation_demo.sh [OUT_DIR]      (default: demo_out/; 2.5 min on 2 idle CPU cores)
# Uses `secli` if it is installed, else `python -m commands.app` from this checkout.
set -euo pipefail
OUT=${1:-demo_out}
if command -v secli >/dev/null 2>&1; then SECLI=(secli); else SECLI=(python -m commands.app); fi
mkdir -p "$OUT"

# 1. a trained model; the defaults: 1500 training / 500 validation images of 48 px, SGD + cosine
"${SECLI[@]}" train resnet18 --block se --data synthetic --epochs 5 --out "$OUT/se_r18_synth.pt" --force

# 2. class-wise excitation statistics on 50 held-out images per class (the synthetic "test" split)
#    (docs/excitation_depth.png is $OUT/figs/depth.png)
"${SECLI[@]}" visualize-excitation "$OUT/se_r18_synth.pt" --data synthetic --per-class 50 \
    --out "$OUT/figs" --force

# 3. re-plot from the saved statistics (no network): three sites, four classes
#    (this is docs/excitation_class_means.png, as $OUT/figs4/class_means.png)
"${SECLI[@]}" visualize-excitation --from-stats "$OUT/figs" --sites SE_2_2,SE_3_2,SE_5_2 \
    --classes disk,ring,h_stripes,checker --out "$OUT/figs4" --force --format markdown
