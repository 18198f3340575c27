#!/usr/bin/env python3
"""The encoder graph as exported (LiteViT blocks folded, separable pools, fusable GELU, mixer
branches as depthwise convs) against the plain export of the same model and the previous export
format (graph format 3: the same fold with per-channel Mul/Add branches), in ONNX Runtime on this
CPU: one table, ratios from one interleaved run, and the encoder floor (MACs / measured matmul
rate) beside them (issue 15.2).

    .venv/bin/python benchmarks/bench_encoder_graph.py --model weights/lite_sam_r320_demo.pt
    .venv/bin/python benchmarks/bench_encoder_graph.py --model lite_sam_r640   # random weights
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "litesam_ros"))  # the Python package of a source checkout

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

from litesam_ros.engines.base import ENCODER_INPUTS, encoder_outputs  # noqa: E402
from litesam_ros.engines.onnx_export import (DEFAULT_OPSET, EncoderGraph, _export,  # noqa: E402
                                             export_encoder)
from litesam_ros.model import load_model  # noqa: E402
from litesam_ros.model.geometry import Geometry  # noqa: E402
from litesam_ros.model.litevit import FoldedLiteViTBlock  # noqa: E402
from litesam_ros.model.mspm import average_pools  # noqa: E402
from litesam_ros.apps.bench import encoder_macs, load_image, matmul_gflops  # noqa: E402


def _format3_mix(self: FoldedLiteViTBlock, y: torch.Tensor) -> torch.Tensor:
    """FoldedLiteViTBlock.mix as graph format 3 wrote it: per-channel Mul and Add per branch
    (ONNX Runtime reorders each pooled branch out of its blocked layout for them)."""
    c = y.shape[1]
    mixed = y * self.identity_weight.reshape(c, 1, 1) + self.bias.reshape(c, 1, 1)
    for w, pooled in zip(self.pool_weights, average_pools(y, self.kernels, separable=True)):
        mixed = mixed + pooled * w.reshape(c, 1, 1)
    return mixed


def _export_format3(model: torch.nn.Module, path: Path) -> None:
    shipped = FoldedLiteViTBlock.mix
    FoldedLiteViTBlock.mix = _format3_mix  # type: ignore[method-assign]
    try:
        export_encoder(model, path)
    finally:
        FoldedLiteViTBlock.mix = shipped  # type: ignore[method-assign]


def _session(path: Path, threads: int) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


#: The arguments of its smoke mode: seconds, run by test/test_benchmarks_smoke.py ({tmp}: a
#: scratch folder, {cache}: the engine cache, {domain}: a free ROS domain id, {tiny}: a
#: 64 px Lite-SAM checkpoint with random weights).
SMOKE = ["--model", "{tiny}", "--repeats", "1", "--threads", "1"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(ROOT / "weights" / "lite_sam_r320_demo.pt"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--image", default="astronaut")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rate = matmul_gflops(args.threads)  # again at the end; the faster one (least load) counts
    model = load_model(args.model).model.eval()
    cfg = model.config
    x = Geometry.of(cfg).preprocess(load_image(args.image)).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        plain, folded = Path(tmp) / "plain.onnx", Path(tmp) / "folded.onnx"
        format3 = Path(tmp) / "format3.onnx"
        _export(EncoderGraph(model).eval(), (torch.from_numpy(x),), plain, ENCODER_INPUTS,
                encoder_outputs(cfg), None, DEFAULT_OPSET)
        _export_format3(model, format3)
        export_encoder(model, folded)
        sessions = {"plain export": _session(plain, args.threads),
                    "format 3 (folded, Mul/Add branches)": _session(format3, args.threads),
                    "as exported (format 4)": _session(folded, args.threads)}
        outs = {k: s.run(None, {"image": x})[0] for k, s in sessions.items()}
        times: dict[str, list[float]] = {k: [] for k in sessions}
        for _ in range(args.repeats):
            for k, s in sessions.items():
                t0 = time.perf_counter()
                s.run(None, {"image": x})
                times[k].append(time.perf_counter() - t0)
    rate = max(rate, matmul_gflops(args.threads))
    floor = 2 * encoder_macs(model) / (rate * 1e9)
    ref = outs["plain export"]
    base = statistics.median(times["plain export"])
    print(f"{args.model} ({cfg.image_size}x{cfg.image_size}), ONNX Runtime "
          f"{ort.__version__}, {args.threads} threads, median of {args.repeats} interleaved; "
          f"load {' '.join(open('/proc/loadavg').read().split()[:3])}\n")
    print("| encoder graph | ms | speed-up | x floor | embeddings vs plain (rel) |")
    print("|---|---|---|---|---|")
    for k, t in times.items():
        m = statistics.median(t)
        rel = float(np.linalg.norm(outs[k] - ref) / np.linalg.norm(ref))
        print(f"| {k} | {m * 1e3:.1f} | {base / m:.2f}x | {m / floor:.2f}x | {rel:.1e} |")
    print(f"| floor (MACs / matmul rate) | {floor * 1e3:.1f} | | 1.00x | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
