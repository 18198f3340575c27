#!/usr/bin/env python3
"""Model-zoo benchmark: one row per model, all figures from one run on one real photo.

    .venv/bin/python benchmarks/bench_zoo.py --threads 2 --json cache/bench/zoo.json

Per model: parameters (total and image encoder) and MACs (image encoder at the model's input
size, decoder per prompt) next to the published figures, ONNX Runtime CPU encoder time, decoder
time per prompt (a batch of 64 single-point prompts / 64), and segment-everything time with a
32x32 grid and with an AutoPPN head (``<name>_autoppn``; Lite-SAM has its own).
Weights are random (registry names, seeded): timings and counts are valid, masks are arbitrary,
and an untrained AutoPPN head proposes an arbitrary number of points.
MACs = FlopCounterMode FLOPs / 2, counted on the meta device: there attention runs as plain
matmuls, which the counter sees (CPU's fused flash-attention kernel is not counted by it).
"""
from __future__ import annotations

import argparse
import gc
import json
import logging
import multiprocessing
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "litesam_ros"))  # the Python package of a source checkout
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from bench_pipeline import CountingBackend, load_image  # noqa: E402
from litesam_ros.engines import create_backend  # noqa: E402
from litesam_ros.model import (Geometry, build_model, get_config,  # noqa: E402
                              save_checkpoint, with_autoppn)
from litesam_ros.model.loading import REGISTRY_SEED  # noqa: E402
from litesam_ros.segment import Segmenter, SegmentSettings  # noqa: E402

#: Default set, small to big (big models last).
DEFAULT_MODELS = ("lite_sam_r320", "lite_sam_r640", "mobile_sam", "tinysam",
                  "efficient_sam_vitt", "efficient_sam_vits", "sam_vit_b", "sam_vit_l",
                  "sam_vit_h")
#: Segment-everything skipped by default. ViT-L/H: the same decoder and 64x64 embedding as
#: sam_vit_b, only the encoder differs, so the frame is estimated from sam_vit_b's. TinySAM: the
#: same graphs as MobileSAM (same architecture, other weights), so the same times.
DEFAULT_NO_EVERYTHING = ("tinysam", "sam_vit_l", "sam_vit_h")
SAME_GRAPHS = {"tinysam": "mobile_sam"}

SOURCES = {
    "SAM": "Kirillov et al., Segment Anything, arXiv 2304.02643 (image-encoder scaling "
           "ablation: ViT-B 91M, ViT-L 308M, ViT-H 636M)",
    "MobileSAM": "Zhang et al., Faster Segment Anything (MobileSAM), arXiv 2306.14289 and "
                 "its README (whole pipeline 9.66M = encoder + 3.876M mask decoder)",
    "EfficientSAM": "Xiong et al., EfficientSAM, arXiv 2312.00863 (Tab. 8: SAM 636M, "
                    "EfficientSAM-Ti 10M, -S 25M; Sec. 1: ViT-H encoder 632M)",
    "TinySAM": "Shu et al., TinySAM, arXiv 2312.13789, README table 'FLOPs (G)' (the "
               "numbers are MACs): SAM-H 2976, SAM-L 1491, SAM-B 487, MobileSAM/TinySAM 42.0",
    "Lite-SAM": "Lite-SAM, arXiv 2407.08965 (Tab. 1: LiteViT 1.16M / 10.9G at 640; "
                "complexity table: Lite-SAM r640 4.2M / 12.7G, Mobile-SAM 9.7M / 39.6G)",
}


@dataclass(frozen=True)
class Published:
    """A published figure: ``kind`` params|macs, ``part`` total|encoder, value, source key."""

    kind: str
    part: str
    value: float
    source: str


PUBLISHED: dict[str, tuple[Published, ...]] = {
    "lite_sam_r640": (Published("params", "total", 4.2e6, "Lite-SAM"),
                      Published("macs", "encoder", 10.9e9, "Lite-SAM")),
    "mobile_sam": (Published("params", "total", 9.66e6, "MobileSAM"),
                   Published("macs", "encoder", 42.0e9, "TinySAM"),
                   Published("macs", "encoder", 39.6e9, "Lite-SAM")),
    # TinySAM = MobileSAM's architecture (TinyViT-5M + SAM decoder), other weights
    "tinysam": (Published("params", "total", 9.66e6, "MobileSAM"),
                Published("macs", "encoder", 42.0e9, "TinySAM")),
    "efficient_sam_vitt": (Published("params", "total", 10e6, "EfficientSAM"),),
    "efficient_sam_vits": (Published("params", "total", 25e6, "EfficientSAM"),),
    "sam_vit_b": (Published("params", "encoder", 91e6, "SAM"),
                  Published("macs", "encoder", 487e9, "TinySAM")),
    "sam_vit_l": (Published("params", "encoder", 308e6, "SAM"),
                  Published("macs", "encoder", 1491e9, "TinySAM")),
    "sam_vit_h": (Published("params", "encoder", 636e6, "SAM"),
                  Published("params", "encoder", 632e6, "EfficientSAM"),
                  Published("macs", "encoder", 2976e9, "TinySAM")),
}


@dataclass
class Row:
    model: str
    image_size: int
    params_total: int = 0
    params_encoder: int = 0
    encoder_macs: float = 0.0
    decoder_macs_per_prompt: float = 0.0
    published: list[dict[str, Any]] = field(default_factory=list)
    export_s: float = 0.0
    encoder_ms: float = 0.0
    encoder_runs: int = 0
    decoder_ms_per_prompt: float = 0.0
    grid_side: int = 0
    grid_s: Optional[float] = None
    grid_prompts: int = 0
    grid_masks: int = 0
    grid_encode_s: float = 0.0
    grid_decode_s: float = 0.0
    grid_full_est_s: Optional[float] = None  # extrapolated to --grid-points when reduced
    autoppn_s: Optional[float] = None
    autoppn_prompts: int = 0
    autoppn_masks: int = 0
    autoppn_encoder_ms: Optional[float] = None
    everything_note: str = ""
    load_1min: float = 0.0  # load average when the row started (2.0 = both cores busy here)
    error: str = ""


def count_macs(fn: Callable[[], object]) -> float:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 2


def complexity(name: str, prompts: int = 64) -> tuple[int, int, float, float]:
    """(params total, params image encoder, encoder MACs, decoder MACs per prompt at a batch
    of ``prompts``), counted on the meta device (nothing computed)."""
    cfg = get_config(name)
    with torch.device("meta"):
        model = build_model(cfg).eval().requires_grad_(False)
        s, e = cfg.image_size, cfg.embedding_size
        emb = torch.zeros(1, cfg.embed_dim, e, e)
        coords = torch.zeros(prompts, 2, 2)
        labels = torch.tensor([[1.0, -1.0]]).expand(prompts, 2)
        enc = count_macs(lambda: model.encode_image(torch.zeros(1, 3, s, s)))
        dec = count_macs(lambda: model.decode(emb, coords, labels)) / prompts
    n_total = sum(p.numel() for p in model.parameters())
    n_enc = sum(p.numel() for p in model.image_encoder.parameters())
    return n_total, n_enc, enc, dec


def weights_file(name: str, cache_dir: str) -> str:
    """The registry model's random weights (seeded as ``load_model(name)`` seeds them) saved
    once as a checkpoint; backends load it like a user's file (the ``model:=/path`` route)."""
    path = Path(cache_dir) / "weights" / f"{name}-seed{REGISTRY_SEED}.pt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(REGISTRY_SEED)
            model = build_model(name)
        save_checkpoint(model, path, {"weights": f"random, seed {REGISTRY_SEED}"})
        del model
        gc.collect()
    return str(path)


def timed_runs(fn: Callable[[], Any], repeats: int, budget_s: float) -> tuple[float, int, Any]:
    """(median seconds, timed calls, last result) of up to ``repeats`` calls after one warm-up;
    fewer calls (at least one) when the warm-up says they would take longer than ``budget_s``,
    and none (0: the first call's time) when the warm-up alone took over 2 x ``budget_s``."""
    t0 = time.perf_counter()
    out = fn()
    warm = time.perf_counter() - t0
    if warm > 2 * budget_s > 0:
        return warm, 0, out
    n = max(1, min(repeats, int(budget_s / max(warm, 1e-9))))
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), n, out


def everything(backend: Any, img: Any, strategy: str, grid: int) -> tuple[float, int, int, dict]:
    """(seconds, prompts decoded, masks kept, timings) of one segment-everything frame."""
    cb = CountingBackend(backend)
    seg = Segmenter(cb, SegmentSettings(strategy=strategy, points_per_side=grid))
    t0 = time.perf_counter()
    res = seg.segment_everything(img)
    return time.perf_counter() - t0, cb.prompts, len(res), dict(res.timings)


def setup(threads: int) -> None:
    """Threads and quiet loggers, in the main process and in each child."""
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("onnx_ir", "onnxscript", "litesam_ros", "torch.onnx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    torch.set_num_threads(threads)


def isolated(fn: Callable[..., Any], *fn_args: Any) -> Any:
    """fn(*fn_args) in a fresh process: ONNX Runtime sessions of the 1024-input models hold
    GBs (SAM ViT-B's encoder: ~7.5 GB RSS after two runs) that the allocator does not hand
    back, so every session gets a process of its own."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(fn, *fn_args).result()


def prompt_batch(cfg: Any, hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """64 single-point prompts (point + SAM's padding point) inside the image, input frame."""
    h, w = hw
    g = torch.Generator().manual_seed(0)
    scale = cfg.image_size / max(h, w)
    coords = torch.rand(64, 2, 2, generator=g) * torch.tensor([w, h]) * scale
    return coords, torch.tensor([[1.0, -1.0]]).expand(64, 2).contiguous()


def bench_base(name: str, img: Any, args: argparse.Namespace) -> Row:
    """Counts, encoder and decoder times, and the grid frame (and Lite-SAM's AutoPPN frame)."""
    setup(args.threads)
    cfg = get_config(name)
    row = Row(name, cfg.image_size)
    row.params_total, row.params_encoder, row.encoder_macs, row.decoder_macs_per_prompt = \
        complexity(name)
    measured = {("params", "total"): row.params_total, ("params", "encoder"): row.params_encoder,
                ("macs", "encoder"): row.encoder_macs}
    for p in PUBLISHED.get(name, ()):
        ours = measured[(p.kind, p.part)]
        row.published.append(dict(asdict(p), ours=ours, delta_pct=100 * (ours / p.value - 1)))
    log(f"{name}: {row.params_total / 1e6:.2f}M params, {row.encoder_macs / 1e9:.1f} GMAC")

    t0 = time.perf_counter()
    ort = create_backend("onnxruntime", weights_file(name, args.cache_dir),
                         cache_dir=args.cache_dir, threads=args.threads)
    row.export_s = time.perf_counter() - t0
    x = Geometry.of(cfg).preprocess(img)
    t_enc, row.encoder_runs, enc = timed_runs(lambda: ort.encode(x), args.repeats,
                                              args.budget_s)
    row.encoder_ms = t_enc * 1e3
    coords, labels = prompt_batch(cfg, img.shape[:2])
    t_dec, _, _ = timed_runs(lambda: ort.decode(enc.embeddings, coords, labels), args.repeats,
                             args.budget_s)
    row.decoder_ms_per_prompt = t_dec / 64 * 1e3
    log(f"{name}: encoder {row.encoder_ms:.0f} ms ({row.encoder_runs} timed runs), decoder "
        f"{row.decoder_ms_per_prompt:.1f} ms/prompt")
    if name in args.no_everything:
        return row

    side = args.grid_points if cfg.image_size < 1024 else args.grid_points_1024
    row.grid_side = side
    row.grid_s, row.grid_prompts, row.grid_masks, tm = everything(ort, img, "grid", side)
    row.grid_encode_s, row.grid_decode_s = tm.get("encode", 0.0), tm.get("decode", 0.0)
    full = args.grid_points ** 2
    if row.grid_prompts and row.grid_prompts < full:  # decoder-bound: scale the decode part
        row.grid_full_est_s = row.grid_s + row.grid_decode_s * (full / row.grid_prompts - 1)
    log(f"{name}: grid {side}x{side} {row.grid_s:.1f} s ({row.grid_prompts} prompts)")
    if cfg.autoppn:  # Lite-SAM: its own head, same sessions
        row.autoppn_s, row.autoppn_prompts, row.autoppn_masks, _ = everything(ort, img,
                                                                              "autoppn", side)
        log(f"{name}: autoppn {row.autoppn_s:.1f} s ({row.autoppn_prompts} prompts)")
    return row


def bench_autoppn(name: str, img: Any, args: argparse.Namespace
                  ) -> tuple[float, int, int, float]:
    """(frame s, prompts decoded, masks, first encoder call ms) of ``<name>_autoppn``."""
    setup(args.threads)
    cfg = with_autoppn(get_config(name))
    ppn = create_backend("onnxruntime", weights_file(cfg.name, args.cache_dir),
                         cache_dir=args.cache_dir, threads=args.threads)
    x = Geometry.of(cfg).preprocess(img)
    # warm-up of the new sessions (the grid frame ran on warm ones too)
    t0 = time.perf_counter()
    emb = ppn.encode(x).embeddings
    first_ms = (time.perf_counter() - t0) * 1e3  # first call, encoder + head
    ppn.decode(emb, *prompt_batch(cfg, img.shape[:2]))
    t, prompts, masks, _ = everything(ppn, img, "autoppn", args.grid_points)
    log(f"{cfg.name}: autoppn {t:.1f} s ({prompts} prompts)")
    return t, prompts, masks, first_ms


def bench_model(name: str, img: Any, args: argparse.Namespace) -> Row:
    """One row; a failure (e.g. the child killed for memory) is reported in the row."""
    load = os.getloadavg()[0]
    try:
        row: Row = isolated(bench_base, name, img, args)
    except Exception as exc:  # noqa: BLE001 - one model failing must not lose the others
        log(f"{name}: FAILED {exc!r}")
        return Row(name, get_config(name).image_size, load_1min=load,
                   error=f"{type(exc).__name__}: {exc}")
    row.load_1min = load
    if row.autoppn_s is None and name not in args.no_everything:
        try:
            row.autoppn_s, row.autoppn_prompts, row.autoppn_masks, row.autoppn_encoder_ms = \
                isolated(bench_autoppn, name, img, args)
        except Exception as exc:  # noqa: BLE001
            log(f"{name}_autoppn: FAILED {exc!r}")
            row.error = f"autoppn: {type(exc).__name__}: {exc}"
    return row


def note_skipped(rows: dict[str, Row], args: argparse.Namespace) -> None:
    """Notes (and estimates) for the rows whose segment-everything frames were skipped."""
    b = rows.get("sam_vit_b")
    for name, row in rows.items():
        if name not in args.no_everything:
            continue
        cfg = get_config(name)
        row.everything_note = "skipped"
        if name in SAME_GRAPHS:
            row.everything_note = f"skipped: same graphs as {SAME_GRAPHS[name]}"
        elif (b is not None and b.grid_s is not None and cfg.decoder == "sam"
              and cfg.embedding_size == get_config("sam_vit_b").embedding_size):
            # this encoder + sam_vit_b's frame without its encoder (same decoder, same grid)
            est = row.encoder_ms / 1e3 + (b.grid_full_est_s or b.grid_s) - b.grid_encode_s
            row.grid_full_est_s = est
            row.everything_note = (f"skipped; ≈{est:.0f} s at {args.grid_points}x"
                                   f"{args.grid_points} (est.)")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def fmt_published(row: Row, kind: str) -> str:
    cells = [f"{p['value'] / (1e6 if kind == 'params' else 1e9):g}"
             f"{' enc' if kind == 'params' and p['part'] == 'encoder' else ''} "
             f"[{p['source']}] {p['delta_pct']:+.1f}%"
             for p in row.published if p["kind"] == kind]
    return "; ".join(cells) or "—"


def table(rows: list[Row], grid: int) -> list[str]:
    head = ["model", "input", "params total / enc (M)", "published params (Δ ours)",
            "enc GMACs", "published GMACs (Δ ours)", "dec GMACs/prompt", "ORT enc ms",
            "dec ms/prompt", "everything, grid: s (prompts)",
            "everything, AutoPPN: s (prompts, random head)", "load"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        if r.error and not r.encoder_ms:
            lines.append(f"| {r.model} | {r.image_size} | failed: {r.error} |" + " |" * 9)
            continue
        if r.grid_s is None:
            grid_cell = r.everything_note
            ppn_cell = r.everything_note.split(";")[0]
        else:
            grid_cell = f"{r.grid_s:.1f} ({r.grid_prompts}, {r.grid_side}x{r.grid_side})"
            if r.grid_full_est_s is not None:
                grid_cell += f"; ≈{r.grid_full_est_s:.0f} at {grid}x{grid} (est.)"
            ppn_cell = (f"{r.autoppn_s:.1f} ({r.autoppn_prompts})" if r.autoppn_s is not None
                        else f"failed: {r.error}")
        cells = [r.model, str(r.image_size),
                 f"{r.params_total / 1e6:.2f} / {r.params_encoder / 1e6:.2f}",
                 fmt_published(r, "params"), f"{r.encoder_macs / 1e9:.1f}",
                 fmt_published(r, "macs"), f"{r.decoder_macs_per_prompt / 1e9:.3f}",
                 f"{r.encoder_ms:.0f}" + ("" if r.encoder_runs else " (first call)"),
                 f"{r.decoder_ms_per_prompt:.1f}", grid_cell, ppn_cell, f"{r.load_1min:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


#: The arguments of its smoke mode: seconds, run by test/test_benchmarks_smoke.py ({tmp}: a
#: scratch folder, {cache}: the engine cache, {domain}: a free ROS domain id, {tiny}: a
#: 64 px Lite-SAM checkpoint with random weights).
SMOKE = ["--models", "lite_sam_r320", "--repeats", "1", "--threads", "1", "--budget-s", "0",
         "--grid-points", "2", "--cache-dir", "{cache}"]


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                    help="registry names (run in this order; put big models last)")
    ap.add_argument("--image", default="astronaut", help="skimage.data image name")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs after one warm-up")
    ap.add_argument("--budget-s", type=float, default=20.0,
                    help="fewer timed runs (at least 1) when they would take longer than this")
    ap.add_argument("--grid-points", type=int, default=32, help="grid points per side")
    ap.add_argument("--grid-points-1024", type=int, default=None,
                    help="grid points per side for 1024-input models (default: --grid-points); "
                         "their decoder runs on a 64x64 embedding (50-200 ms per prompt on 2 "
                         "cores): a smaller grid is timed and the full one extrapolated from "
                         "its decode time")
    ap.add_argument("--no-everything", nargs="*", default=list(DEFAULT_NO_EVERYTHING),
                    help="models whose segment-everything rows are skipped (estimated)")
    ap.add_argument("--cache-dir", default=str(ROOT / "cache" / "bench"))
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args(argv)
    if args.grid_points_1024 is None:
        args.grid_points_1024 = args.grid_points

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    setup(args.threads)
    img = load_image(args.image)
    t_start = time.perf_counter()
    rows = {name: bench_model(name, img, args) for name in args.models}
    note_skipped(rows, args)
    elapsed = time.perf_counter() - t_start

    h, w = img.shape[:2]
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    import onnxruntime

    print(f"\nModel zoo, image {args.image} {w}x{h}, ONNX Runtime {onnxruntime.__version__} CPU "
          f"fp32, {args.threads} threads, {os.cpu_count()} CPUs, load average {load}, "
          f"torch {torch.__version__}, random weights, run {elapsed / 60:.1f} min\n")
    print("\n".join(table(list(rows.values()), args.grid_points)))
    print("\nSources:")
    for key, text in SOURCES.items():
        print(f"- [{key}] {text}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(
            dict(image=args.image, threads=args.threads, grid_points=args.grid_points,
                 grid_points_1024=args.grid_points_1024,
                 run_s=elapsed, load_average=os.getloadavg(), sources=SOURCES,
                 rows=[asdict(r) for r in rows.values()]), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
