#!/usr/bin/env python3
"""The decoder graph as exported (cross-attentions reassociated onto the prompt tokens) against
the plain export of the same model, and the variant that keeps the first layer's
token -> image attention as SAM's (its image-only projections shared by a call's prompts), in ONNX Runtime on this CPU: per prompt count, ms per call, MACs per
prompt and the floor (MACs / measured matmul rate), ratios from one run (issue 15.3).

    .venv/bin/python benchmarks/bench_decoder_graph.py --model weights/lite_sam_r320_demo.pt
    .venv/bin/python benchmarks/bench_decoder_graph.py --model lite_sam_r640   # random weights

Each graph runs in blocks of ``--block`` calls, the blocks alternating, so no session's threads
are still busy when another's timed call starts.
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
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from litesam_ros.engines.base import DECODER_INPUTS, DECODER_OUTPUTS  # noqa: E402
from litesam_ros.engines.onnx_export import DEFAULT_OPSET, DecoderGraph, _export  # noqa: E402
from litesam_ros.engines.ort_backend import _Session  # noqa: E402
from litesam_ros.model import load_model  # noqa: E402
from litesam_ros.model.attention_fold import fold_decoder_attention  # noqa: E402
from litesam_ros.model.geometry import Geometry  # noqa: E402
from litesam_ros.apps.bench import load_image, matmul_gflops  # noqa: E402


def _session(path: Path, threads: int) -> ort.InferenceSession:
    """A session with the backend's own options (engines/ort_backend.py)."""
    return _Session(path, ["CPUExecutionProvider"], threads).session


def _boxes(p: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    corners = torch.rand(p, 2, 2, generator=g).sort(dim=1).values * size
    return corners, torch.tensor([[2.0, 3.0]]).repeat(p, 1)


def _macs(model: torch.nn.Module, emb: torch.Tensor, coords: torch.Tensor,
          labels: torch.Tensor) -> float:
    with FlopCounterMode(display=False) as counter:
        model.decode(emb, coords, labels)  # type: ignore[operator]
    return counter.get_total_flops() / 2


#: The arguments of its smoke mode: seconds, run by test/test_benchmarks_smoke.py ({tmp}: a
#: scratch folder, {cache}: the engine cache, {domain}: a free ROS domain id, {tiny}: a
#: 64 px Lite-SAM checkpoint with random weights).
SMOKE = ["--model", "{tiny}", "--prompts", "2", "--rounds", "1", "--block", "1", "--threads", "1",
         "--variants", "plain", "folded"]  # each variant is a dynamo export: ~15 s even tiny

#: --variants' names: the graphs compared (plain, the reference of every ratio, always runs)
VARIANT_NAMES = {"plain": "plain export", "folded": "as exported",
                 "first-unfolded": "first layer not folded"}


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(ROOT / "weights" / "lite_sam_r320_demo.pt"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompts", type=int, nargs="+", default=[1, 4, 16, 64])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--block", type=int, default=6)
    ap.add_argument("--image", default="astronaut")
    ap.add_argument("--variants", nargs="+", choices=sorted(VARIANT_NAMES),
                    default=list(VARIANT_NAMES), help="graphs to compare (plain always runs)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rate = matmul_gflops(args.threads)  # again at the end; the faster one (least load) counts
    model = load_model(args.model).model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    cfg = model.config
    with torch.no_grad():
        emb, _ = model.encode(Geometry.of(cfg).preprocess(load_image(args.image)))
    variants = {"plain export": model, "as exported": fold_decoder_attention(model),
                "first layer not folded": fold_decoder_attention(model, first_layer=False)}
    keep = {VARIANT_NAMES[v] for v in args.variants} | {"plain export"}
    variants = {k: m for k, m in variants.items() if k in keep}
    axes = {0: "P", 1: "K"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sessions = {}
        for i, (name, m) in enumerate(variants.items()):
            path = Path(tmp) / f"decoder{i}.onnx"
            coords, labels = _boxes(3, cfg.image_size, 0)
            _export(DecoderGraph(m).eval(), (emb, coords, labels), path, DECODER_INPUTS,
                    DECODER_OUTPUTS, {n: axes for n in DECODER_INPUTS[1:]}, DEFAULT_OPSET)
            sessions[name] = _session(path, args.threads)
        for p in args.prompts:
            coords, labels = _boxes(p, cfg.image_size, p)
            feeds = dict(zip(DECODER_INPUTS, (emb.numpy(), coords.numpy(), labels.numpy())))
            outs = {k: s.run(None, feeds)[0] for k, s in sessions.items()}
            times: dict[str, list[float]] = {k: [] for k in sessions}
            for _ in range(args.rounds):
                for k, s in sessions.items():
                    time.sleep(0.05)
                    s.run(None, feeds)
                    for _ in range(args.block):
                        t0 = time.perf_counter()
                        s.run(None, feeds)
                        times[k].append(time.perf_counter() - t0)
            ref = outs["plain export"]
            for k, m in variants.items():
                rel = float(np.abs(outs[k] - ref).max() / np.abs(ref).max())
                rows.append((p, k, statistics.median(times[k]),
                             _macs(m, emb, coords, labels) / p, rel))
    rate = max(rate, matmul_gflops(args.threads))
    print(f"{args.model} ({cfg.image_size}x{cfg.image_size}), box prompts, ONNX Runtime "
          f"{ort.__version__}, {args.threads} threads, medians of {args.rounds * args.block}; "
          f"matmul rate {rate:.0f} GFLOP/s; load "
          f"{' '.join(open('/proc/loadavg').read().split()[:3])}\n")
    print("| prompts | decoder graph | ms per call | ms per prompt | speed-up | M MACs per prompt "
          "| x plain floor | logits vs plain (max rel) |")
    print("|---|---|---|---|---|---|---|---|")
    plain = {p: (t, macs) for p, k, t, macs, _ in rows if k == "plain export"}
    for p, k, t, macs, rel in rows:
        floor = 2 * plain[p][1] * p / (rate * 1e9)
        print(f"| {p} | {k} | {t * 1e3:.2f} | {t * 1e3 / p:.2f} | {plain[p][0] / t:.2f}x | "
              f"{macs / 1e6:.0f} | {t / floor:.2f}x | {rel:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
