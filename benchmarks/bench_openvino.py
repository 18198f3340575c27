#!/usr/bin/env python3
"""The same exported ONNX graphs in ONNX Runtime (the backend's sessions) and in OpenVINO's CPU
plugin, interleaved on this machine: is the encoder's distance from its matmul floor a property
of the graph or of the CPU runtime (issue 15.2)? OpenVINO fuses the GELU and the residual Adds
into its convolutions and normalises in its blocked layout; ONNX Runtime's CPU kernels run each
as a pass of its own.

OpenVINO is not a dependency of the product; install it beside the project to run this:

    .venv/bin/pip install openvino
    .venv/bin/python benchmarks/bench_openvino.py --model weights/lite_sam_r320_demo.pt
    .venv/bin/python benchmarks/bench_openvino.py --model <r640 checkpoint> --rounds 3

Per round (one after the other, so each ratio is from the same minute): the matmul rate (the
floor), the encoder graph in each runtime, the decoder graph for 1 and 16 box prompts (OpenVINO
compiled for exactly those shapes) and a segment-everything frame with the encoder in each
runtime (the decoder and everything else unchanged).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "litesam_ros"))  # the Python package of a source checkout

import numpy as np  # noqa: E402
import torch  # noqa: E402

from litesam_ros.engines import create_backend  # noqa: E402
from litesam_ros.engines.base import fit_prompt_points  # noqa: E402
from litesam_ros.engines.factory import exported_graphs  # noqa: E402
from litesam_ros.model import load_model  # noqa: E402
from litesam_ros.model.geometry import Geometry  # noqa: E402
from litesam_ros.apps.bench import (DEFAULT_IMAGE, bench_settings, box_prompts,  # noqa: E402
                                       encoder_macs, load_image, matmul_gflops,
                                       timed)
from litesam_ros.segment import Segmenter  # noqa: E402


def _median_s(fn: Callable[[], Any], repeats: int, warmup: int = 2) -> float:
    """Median seconds of ``repeats`` calls after ``warmup`` (runtime.bench's ``timed``)."""
    return timed(fn, repeats, warmup)[0]


class OpenVinoGraph:
    """An ONNX graph compiled by OpenVINO for the CPU, called like the ORT backend's sessions
    (torch tensors in and out). ``shapes``: compile for these input shapes (static)."""

    def __init__(self, core: Any, path: Path, threads: int,
                 shapes: Sequence[Sequence[int]] | None = None) -> None:
        model = core.read_model(str(path))
        if shapes is not None:
            model.reshape({i.get_any_name(): list(s) for i, s in zip(model.inputs, shapes)})
        self.compiled = core.compile_model(model, "CPU", {
            "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32"})  # no bf16 where the CPU has it: fp32 parity
        self.request = self.compiled.create_infer_request()
        self.outputs = [o.get_any_name() for o in self.compiled.outputs]

    def __call__(self, *arrays: torch.Tensor) -> list[torch.Tensor]:
        out = self.request.infer([np.ascontiguousarray(a.numpy(), dtype=np.float32)
                                  for a in arrays])
        return [torch.from_numpy(np.array(out[o])) for o in self.compiled.outputs]


def _max_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / a.abs().max().clamp_min(1e-12))


#: The arguments of its smoke mode: seconds, run by test/test_benchmarks_smoke.py ({tmp}: a
#: scratch folder, {cache}: the engine cache, {domain}: a free ROS domain id, {tiny}: a
#: 64 px Lite-SAM checkpoint with random weights).
SMOKE = ["--rounds", "1", "--threads", "1"]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="weights/lite_sam_r320_demo.pt")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--image", default=DEFAULT_IMAGE)
    args = ap.parse_args(argv)
    try:
        import openvino
    except ImportError:
        print("bench_openvino: needs OpenVINO (.venv/bin/pip install openvino)", file=sys.stderr)
        return 2

    torch.set_num_threads(args.threads)
    backend = create_backend("onnxruntime", args.model, threads=args.threads)
    loaded = load_model(args.model)
    graphs, _ = exported_graphs(loaded.model, loaded.model_id)
    cfg = backend.config
    macs = encoder_macs(loaded.model)
    core = openvino.Core()
    image = load_image(args.image)
    h, w = image.shape[:2]
    geometry = Geometry.of(cfg)
    x = geometry.preprocess(image)
    ov_encoder = OpenVinoGraph(core, graphs.encoder, args.threads)
    corners = torch.from_numpy(np.stack([
        geometry.boxes_to_input(np.asarray(b.box, dtype=np.float64), (h, w)).reshape(2, 2)
        for b in box_prompts(h, w, 16)]).astype(np.float32))
    boxes = (1, 16)
    emb = backend.encode(x).embeddings
    decoders, feeds = {}, {}
    for p in boxes:
        coords, labels = fit_prompt_points(cfg, corners[:p],
                                           torch.tensor([[2.0, 3.0]]).repeat(p, 1))
        feeds[p] = (emb, coords, labels)
        decoders[p] = OpenVinoGraph(core, graphs.decoder, args.threads,
                                    [tuple(t.shape) for t in feeds[p]])

    ort_out, ov_out = backend.encoder(x), ov_encoder(x)
    print(f"model {args.model} ({cfg.name}, {cfg.image_size} px), {args.threads} threads, OpenVINO "
          f"{openvino.__version__}; OpenVINO vs ONNX Runtime, max |diff| / max |ORT|:")
    for name, a, b in zip(backend.encoder.outputs, ort_out, ov_out):
        print(f"  encoder {name}: {_max_rel(a.float(), b.float()):.1e}")
    for p in boxes:
        a = backend.decoder(*feeds[p])[0]
        print(f"  decoder logits, {p} box(es): {_max_rel(a, decoders[p](*feeds[p])[0]):.1e}")

    segmenter = Segmenter(backend, bench_settings(backend))
    ort_encoder = backend.encoder
    rows = []
    for r in range(args.rounds):
        rate = matmul_gflops(args.threads)
        floor = 2 * macs / (rate * 1e9)
        row = {"round": r + 1, "floor": floor,
               "enc_ort": _median_s(lambda: ort_encoder(x), 8),
               "enc_ov": _median_s(lambda: ov_encoder(x), 8)}
        for p in boxes:
            row[f"dec{p}_ort"] = _median_s(lambda: backend.decoder(*feeds[p]), 60)
            row[f"dec{p}_ov"] = _median_s(lambda: decoders[p](*feeds[p]), 60)
        for key, enc in (("frame_ort", ort_encoder), ("frame_ov", ov_encoder)):
            backend.encoder = enc  # type: ignore[assignment]
            row[key] = _median_s(lambda: segmenter.segment_everything(image), 5, warmup=1)
        backend.encoder = ort_encoder
        rows.append(row)

    def ms(v: float) -> str:
        return f"{v * 1e3:.1f} ms"

    print()
    print("| round | floor | encoder ORT | encoder OpenVINO | OV vs ORT | decoder 1 box ORT / OV"
          " | 16 boxes ORT / OV | frame, ORT encoder / OV encoder |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        f = row["floor"]
        print(f"| {row['round']} | {ms(f)} | {ms(row['enc_ort'])} ({row['enc_ort'] / f:.2f}x) | "
              f"{ms(row['enc_ov'])} ({row['enc_ov'] / f:.2f}x) | "
              f"{row['enc_ort'] / row['enc_ov']:.2f}x | {row['dec1_ort'] * 1e3:.2f} / "
              f"{row['dec1_ov'] * 1e3:.2f} ms | {ms(row['dec16_ort'])} / {ms(row['dec16_ov'])} | "
              f"{ms(row['frame_ort'])} / {ms(row['frame_ov'])} "
              f"({row['frame_ort'] / row['frame_ov']:.2f}x) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
