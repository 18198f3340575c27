#!/usr/bin/env python3
"""CPU benchmark of the Lite-SAM pipeline: one table, all ratios from this run, one real photo.

    .venv/bin/python benchmarks/bench_pipeline.py --model lite_sam_r320 --threads 2

Rows: segment-everything per frame (autoppn / grid / hierarchical), ONNX Runtime vs torch,
prompted latency for 1 and 16 boxes after encoding, encoder time against the machine's floor (encoder MACs / measured matmul rate), backend agreement.
Optionally the SAM ViT-B SamAutomaticMaskGenerator row from bench_sam_amg.py (--sam-json).
Weights are random unless --checkpoint is given: timings are valid, masks are arbitrary.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "litesam_ros"))  # the Python package of a source checkout
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402

from litesam_ros.engines import create_backend  # noqa: E402
from litesam_ros.model.geometry import Geometry  # noqa: E402
# shared with the on-device bench (`litesam-engines bench`); profile_pipeline.py, bench_zoo.py
# and bench_int8_variants.py import them from here
from bench_helpers import decoder_macs_per_prompt  # noqa: E402
from litesam_ros.apps.bench import (CountingBackend, box_prompts, encoder_macs,  # noqa: E402
                                    load_image, matmul_gflops, timed)
from litesam_ros.masks import mask_iou  # noqa: E402
from litesam_ros.segment import Segmenter, SegmentSettings  # noqa: E402


#: The arguments of its smoke mode: seconds, run by test/test_benchmarks_smoke.py ({tmp}: a
#: scratch folder, {cache}: the engine cache, {domain}: a free ROS domain id, {tiny}: a
#: 64 px Lite-SAM checkpoint with random weights).
SMOKE = ["--model", "{tiny}", "--repeats", "1", "--threads", "1", "--cache-dir", "{cache}"]


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="lite_sam_r640", help="registry name or checkpoint")
    ap.add_argument("--image", default="astronaut",
                    help="skimage.data image name or an image file")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="repeats of the fast rows")
    ap.add_argument("--frame-repeats", type=int, default=1,
                    help="repeats of the segment-everything rows")
    ap.add_argument("--cache-dir", default=str(ROOT / "cache" / "bench"))
    ap.add_argument("--no-int8", action="store_true",
                    help="kept for old command lines: INT8 is bench_int8_variants.py's now")
    ap.add_argument("--sam-json", default=None,
                    help="result file of bench_sam_amg.py for the SAM ViT-B AMG row")
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args(argv)

    logging.basicConfig(level=logging.WARNING)
    for noisy in ("onnx_ir", "onnxscript", "litesam_ros"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    img = load_image(args.image)
    h, w = img.shape[:2]
    rows: list[tuple[str, str, str]] = []
    fig: dict[str, float] = {}

    ort32 = create_backend("onnxruntime", args.model, cache_dir=args.cache_dir,
                           threads=args.threads)
    tb = create_backend("torch", args.model, device="cpu")
    cfg = ort32.config
    x = Geometry.of(cfg).preprocess(img)

    # -- encoder vs floor ---------------------------------------------------------------------
    rate = matmul_gflops(args.threads)
    macs = encoder_macs(tb.model)
    t_enc_ort, enc = timed(lambda: ort32.encode(x), args.repeats)
    t_enc_torch, _ = timed(lambda: tb.encode(x), args.repeats)
    floor = 2 * macs / (rate * 1e9)
    fig.update(matmul_gflops=rate, encoder_gmacs=macs / 1e9, encoder_ort_s=t_enc_ort,
               encoder_torch_s=t_enc_torch, encoder_floor_s=floor)
    rows += [("matmul rate (torch fp32 1024^3)", f"{rate:.1f} GFLOP/s", f"{args.threads} threads"),
             ("encoder MACs", f"{macs / 1e9:.2f} GMAC", f"{cfg.image_size}x{cfg.image_size}"),
             ("encoder, ONNX Runtime fp32", f"{t_enc_ort * 1e3:.0f} ms",
              f"{t_enc_ort / floor:.2f}x the floor ({floor * 1e3:.0f} ms)"),
             ("encoder, torch fp32", f"{t_enc_torch * 1e3:.0f} ms",
              f"{t_enc_torch / floor:.2f}x the floor")]

    # -- segment everything ------------------------------------------------------------------
    settings = SegmentSettings()
    per_frame: dict[str, float] = {}
    for strategy in ("autoppn", "grid", "hierarchical"):
        cb = CountingBackend(ort32)
        seg = Segmenter(cb, settings)
        t, res = timed(lambda: seg.segment_everything(img, strategy), args.frame_repeats, 0)
        n_prompts = cb.prompts // args.frame_repeats
        per_frame[strategy] = t
        fig[f"everything_{strategy}_s"] = t
        fig[f"everything_{strategy}_prompts"] = n_prompts
        rows.append((f"segment everything: {strategy} (ORT fp32)", f"{t:.2f} s",
                     f"{n_prompts} prompts decoded, {len(res)} masks"))
    # random weights: SAM's filters keep nothing, so also time a frame that keeps masks
    loose = settings.with_(pred_iou_thresh=0.0, stability_score_thresh=0.0)
    t_loose, res_loose = timed(lambda: Segmenter(ort32, loose).segment_everything(img, "autoppn"),
                               args.frame_repeats, 0)
    fig["everything_autoppn_filters_off_s"] = t_loose
    rows.append(("segment everything: autoppn, IoU/stability filters off", f"{t_loose:.2f} s",
                 f"{len(res_loose)} masks; post-processing "
                 f"{res_loose.timings['postprocess'] * 1e3:.0f} ms"))
    rows.append(("  grid / autoppn", f"{per_frame['grid'] / per_frame['autoppn']:.1f}x", ""))
    rows.append(("  grid / hierarchical",
                 f"{per_frame['grid'] / per_frame['hierarchical']:.2f}x", ""))

    # -- ORT vs torch ---------------------------------------------------------------------------
    emb = enc.embeddings
    g = torch.Generator().manual_seed(0)
    coords64 = torch.rand(64, 2, 2, generator=g) * torch.tensor([w, h]) * cfg.image_size / max(h, w)
    labels64 = torch.tensor([[1.0, -1.0]]).expand(64, 2).contiguous()
    t_dec_ort, (lo_o, _) = timed(lambda: ort32.decode(emb, coords64, labels64), args.repeats)
    t_dec_torch, (lo_t, _) = timed(lambda: tb.decode(emb, coords64, labels64), args.repeats)
    t_ppn_torch, _ = timed(lambda: Segmenter(tb, settings).segment_everything(img, "autoppn"),
                           args.frame_repeats, 0)
    rel = float((lo_o - lo_t).norm() / lo_t.norm())
    dmacs = decoder_macs_per_prompt(tb.model)
    dfloor = 2 * dmacs / (rate * 1e9)
    fig.update(decoder_gmacs_per_prompt=dmacs / 1e9, decoder_floor_s_per_prompt=dfloor)
    fig.update(decode64_ort_s=t_dec_ort, decode64_torch_s=t_dec_torch,
               everything_autoppn_torch_s=t_ppn_torch, logits_rel_err_ort_torch=rel)
    rows += [("decode 64 prompts: ORT / torch", f"{t_dec_ort * 1e3:.0f} / {t_dec_torch * 1e3:.0f} ms",
              f"torch/ORT {t_dec_torch / t_dec_ort:.2f}x; {t_dec_ort / 64 * 1e3:.1f} ms/prompt ORT"),
             ("decoder MACs per prompt", f"{dmacs / 1e9:.3f} GMAC",
              f"ORT {t_dec_ort / 64 / dfloor:.2f}x the floor ({dfloor * 1e3:.1f} ms/prompt)"),
             ("encoder: torch / ORT", f"{t_enc_torch / t_enc_ort:.2f}x", ""),
             ("autoppn frame: torch / ORT", f"{t_ppn_torch:.2f} s / {per_frame['autoppn']:.2f} s",
              f"{t_ppn_torch / per_frame['autoppn']:.2f}x")]

    # -- prompted latency ------------------------------------------------------------------------
    seg32 = Segmenter(ort32, settings)
    seg32.set_image(img)
    boxes16 = box_prompts(h, w, 16)
    t1, r1 = timed(lambda: seg32.segment_prompts(None, boxes16[:1]), args.repeats * 3)
    t16, r16 = timed(lambda: seg32.segment_prompts(None, boxes16), args.repeats)
    segt = Segmenter(tb, settings)
    segt.set_image(img)
    t1t, r1t = timed(lambda: segt.segment_prompts(None, boxes16[:1]), args.repeats * 3)
    r16t = segt.segment_prompts(None, boxes16)
    ious_bt = [mask_iou(a, b, empty=1.0) for a, b in zip(r16.masks, r16t.masks)]
    fig.update(prompt1_ort_s=t1, prompt16_ort_s=t16, prompt1_torch_s=t1t,
               mask_iou_ort_torch_min=min(ious_bt))
    rows += [("1 box after encoding (ORT fp32)", f"{t1 * 1e3:.1f} ms",
              f"decode {r1.timings['decode'] * 1e3:.1f} + post {r1.timings['postprocess'] * 1e3:.1f} ms"),
             ("16 boxes after encoding (ORT fp32)", f"{t16 * 1e3:.1f} ms",
              f"{t16 / 16 * 1e3:.1f} ms per box"),
             ("1 box after encoding (torch fp32)", f"{t1t * 1e3:.1f} ms", ""),
             ("ORT vs torch: logits rel. error / mask IoU (16 boxes)",
              f"{rel:.1e} / {min(ious_bt):.4f}", "min over masks")]

    # -- INT8 -------------------------------------------------------------------------------------
    # create_backend refuses precision int8 with ONNX Runtime on the CPU (issue 15.6): the
    # variants and their figures are benchmarks/bench_int8_variants.py's.
    rows.append(("INT8 (ONNX Runtime CPU)", "refused",
                 "slower than FP32 here: benchmarks/bench_int8_variants.py"))

    # -- SAM AMG reference ------------------------------------------------------------------------
    if args.sam_json and Path(args.sam_json).exists():
        sam = json.loads(Path(args.sam_json).read_text())
        t_sam = float(sam["amg_s"])
        fig["sam_amg_s"] = t_sam
        rows.append(("SAM ViT-B SamAutomaticMaskGenerator (random weights)", f"{t_sam:.1f} s",
                     f"autoppn is {t_sam / per_frame['autoppn']:.1f}x faster"))
    else:
        rows.append(("SAM ViT-B SamAutomaticMaskGenerator", "not run",
                     "run benchmarks/bench_sam_amg.py (own venv) and pass --sam-json"))

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"\nLite-SAM pipeline, model {args.model} ({cfg.image_size}), image {args.image} "
          f"{w}x{h}, {args.threads} threads, {os.cpu_count()} CPUs, load average {load}, "
          f"torch {torch.__version__}\n")
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    print(f"| {'measure'.ljust(width)} | {'value'.ljust(vwidth)} | notes |")
    print(f"|{'-' * (width + 2)}|{'-' * (vwidth + 2)}|-------|")
    for name, value, note in rows:
        print(f"| {name.ljust(width)} | {value.ljust(vwidth)} | {note} |")
    if args.json:
        Path(args.json).write_text(json.dumps(fig, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
