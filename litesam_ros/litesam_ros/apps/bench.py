"""The on-device bench (`litesam-engines bench`): the pipeline's latencies on this machine.

One real photo, one backend, one table, the same on a Jetson, a GPU or a CPU:

* encoder: Backend.encode of the pre-processed image (ms, images/s);
* decode per prompt: one decoder call on N box prompts at once, divided by N; and 1 prompt alone;
* 1 box after encoding: Segmenter.segment_prompts on the cached embedding, end to end
  (prompt checks, decode, upsampling, post-processing);
* segment everything frame: Segmenter.segment_everything with the node's default strategy
  (autoppn where the model has the head) and the checkpoint's own thresholds, as the node
  takes them; masks kept and prompts decoded;
* node overhead: the same frame through SegmentRuntime (submit -> inference thread -> RLE ->
  on_result) minus the Segmenter's own time for that frame, measured frame by frame;
* optionally (CPU backends) the encoder against this machine's matmul floor.

Each figure is the median of ``repeats`` runs after one warm-up run. The header names the
backend, the device, the threads and the library versions, so that a pasted table says where
it was measured.

The timing helpers the bench shares with the repository's benchmark scripts (``timed``,
``matmul_gflops``, ``encoder_macs``, ``CountingBackend``, ``load_image``, ``box_prompts``) live
here too; those only the scripts use are in benchmarks/bench_helpers.py.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from torch.utils.flop_counter import FlopCounterMode

from litesam_ros.engines import create_backend
from litesam_ros.engines.base import Backend, EncoderResult
from litesam_ros.engines.tensorrt_backend import tensorrt_version
from litesam_ros.model import load_model
from litesam_ros.model.geometry import Geometry
from litesam_ros.runtime.output import FrameOutput
from litesam_ros.runtime.runtime import SegmentRuntime
from litesam_ros.segment import Prompt, SegmentationResult, Segmenter, SegmentSettings

DEFAULT_IMAGE = "astronaut"
DEFAULT_PROMPTS = 16
DEFAULT_REPEATS = 5
WARMUP = 1
#: Longest wait for one frame through SegmentRuntime before the bench gives up.
FRAME_TIMEOUT_S = 600.0

Row = dict[str, str]


# -- shared timing helpers (also benchmarks/bench_pipeline.py's) ------------------------------
def timed(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> tuple[float, Any]:
    """Median seconds of ``repeats`` calls after ``warmup`` calls, and the last result."""
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def timed_stages(fn: Callable[[], SegmentationResult], repeats: int, keys: tuple[str, ...]
                 ) -> tuple[float, SegmentationResult, dict[str, float]]:
    """``timed(fn, repeats, WARMUP)`` and the median seconds of each stage in ``keys`` over the
    same timed calls' ``SegmentationResult.timings`` (nan for a stage they do not report), so a
    row's split describes the calls of its median."""
    runs: list[dict[str, float]] = []

    def run() -> SegmentationResult:
        res = fn()
        runs.append(res.timings)
        return res

    median, last = timed(run, repeats, WARMUP)
    stages = {k: statistics.median(t.get(k, math.nan) for t in runs[WARMUP:]) for k in keys}
    return median, last, stages


def matmul_gflops(threads: int, n: int = 1024, repeats: int = 5) -> float:
    """Measured fp32 matmul rate (GFLOP/s) of torch on this machine with these threads."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    dt, _ = timed(lambda: a @ b, repeats, warmup=2)
    return 2 * n ** 3 / dt / 1e9


def encoder_macs(model: Any) -> float:
    """Multiply-accumulates of one encoder run (+AutoPPN) of a SamModel at its input size."""
    s = model.config.image_size
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.encode(torch.zeros(1, 3, s, s))
    return counter.get_total_flops() / 2


class CountingBackend(Backend):
    """Delegates to a backend and counts decoded prompts (``prompts``). It carries the
    backend's device, batch size, thresholds and IoU calibration, so a Segmenter on it runs
    exactly as on the backend itself."""

    def __init__(self, inner: Backend) -> None:
        self.inner, self.name, self.config = inner, inner.name, inner.config
        self.model_thresholds = dict(inner.model_thresholds)
        self.iou_calibration = dict(inner.iou_calibration)
        self.max_batch = inner.max_batch
        self.prompts = 0

    @property
    def device(self) -> torch.device:
        return self.inner.device

    def encode(self, image: torch.Tensor) -> EncoderResult:
        return self.inner.encode(image)

    def decode(self, emb: torch.Tensor, coords: torch.Tensor,
               labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.prompts += int(coords.shape[0])
        return self.inner.decode(emb, coords, labels)


def load_image(name: str) -> np.ndarray:
    """RGB uint8 H x W x 3: an image file (read with OpenCV) or a ``skimage.data`` image name."""
    if Path(name).is_file():
        import cv2

        bgr = cv2.imread(name, cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cannot read image file {name!r}")
        return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    from skimage import data

    loader = getattr(data, name, None) if name.isidentifier() else None
    if not callable(loader):
        raise ValueError(f"image {name!r} is neither a file nor a skimage.data image "
                         "(e.g. astronaut, coffee, chelsea)")
    img = np.asarray(loader())
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] < 3 or img.dtype != np.uint8:
        raise ValueError(f"skimage.data.{name} is not an 8-bit photo "
                         f"({img.dtype}, shape {list(img.shape)})")
    return np.ascontiguousarray(img[..., :3])


def box_prompts(h: int, w: int, n: int, seed: int = 0) -> list[Prompt]:
    """``n`` random boxes (15-40 % of each side) inside an h x w image, the same for a seed."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x0, y0 = rng.uniform(0, 0.6) * w, rng.uniform(0, 0.6) * h
        out.append(Prompt(box=[x0, y0, min(w, x0 + rng.uniform(0.15, 0.4) * w),
                               min(h, y0 + rng.uniform(0.15, 0.4) * h)]))
    return out


# -- where it runs ----------------------------------------------------------------------------
def on_gpu(backend: Backend) -> bool:
    """Whether the backend computes on a CUDA GPU (TensorRT, ONNX Runtime CUDA, torch CUDA)."""
    return (backend.device.type == "cuda" or backend.name.startswith("tensorrt")
            or "CUDA" in backend.name)


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo; the board's name on ARM boards such as a Jetson)
    and the number of CPUs."""
    name = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                name = value.strip()
                break
    except OSError:
        pass
    if not name:
        try:  # Jetson, Raspberry Pi: the device tree names the board
            name = Path("/proc/device-tree/model").read_text().strip("\x00\n ")
        except OSError:
            name = platform.processor() or platform.machine() or "unknown CPU"
    return f"{name}, {os.cpu_count()} CPUs"


def device_name(backend: Backend) -> str:
    """The GPU's name (torch.cuda) for a GPU backend, else the CPU's."""
    if on_gpu(backend) and torch.cuda.is_available():
        dev = backend.device if backend.device.type == "cuda" else None
        return f"{torch.cuda.get_device_name(dev)} (CUDA {torch.version.cuda})"
    return cpu_model()


def versions() -> dict[str, str]:
    """Versions of torch, onnxruntime and tensorrt, those that import."""
    out = {"torch": str(torch.__version__)}
    try:
        import onnxruntime

        out["onnxruntime"] = str(onnxruntime.__version__)
    except ImportError:
        pass
    trt = tensorrt_version()
    if trt:
        out["tensorrt"] = trt
    return out


# -- the bench --------------------------------------------------------------------------------
class _TimedSegmenter(Segmenter):
    """A Segmenter that keeps how long its last segment_everything call took (``last_s``)."""

    last_s = 0.0

    def segment_everything(self, image: np.ndarray,
                           strategy: Optional[str] = None) -> SegmentationResult:
        t0 = time.perf_counter()
        try:
            return super().segment_everything(image, strategy)
        finally:
            self.last_s = time.perf_counter() - t0


def _ms(seconds: float) -> str:
    """Milliseconds with 3-4 significant digits."""
    ms = seconds * 1e3
    digits = 0 if ms >= 100 else 1 if ms >= 10 else 2 if ms >= 1 else 3
    return f"{ms:.{digits}f} ms"


def bench_settings(backend: Backend) -> SegmentSettings:
    """The node's defaults: strategy auto (autoppn where the model has the head) and the
    thresholds the weights' checkpoint records for itself, SAM's where it records none (the
    node's threshold parameters default to -1, "the model's own"): the segment layer's rule."""
    return SegmentSettings().resolved(backend.model_thresholds)


def _runtime_frames(segmenter: _TimedSegmenter, image: np.ndarray,
                    repeats: int) -> list[tuple[float, float]]:
    """(seconds from submit to on_result, seconds in segment_everything) of each frame sent
    through a SegmentRuntime, after WARMUP frames."""
    done = threading.Event()

    def on_result(output: FrameOutput) -> None:
        done.set()

    runtime = SegmentRuntime(on_result=on_result)
    runtime.start(segmenter)
    samples: list[tuple[float, float]] = []
    try:
        for _ in range(WARMUP + repeats):
            failed = runtime.stats.errors + runtime.stats.invalid
            done.clear()
            t0 = time.perf_counter()
            runtime.submit(image)
            while not done.wait(0.2):
                if runtime.stats.errors + runtime.stats.invalid > failed:
                    raise RuntimeError("SegmentRuntime failed on the frame (see the log)")
                if time.perf_counter() - t0 > FRAME_TIMEOUT_S:
                    raise RuntimeError(f"no result from SegmentRuntime in {FRAME_TIMEOUT_S} s")
            samples.append((time.perf_counter() - t0, segmenter.last_s))
    finally:
        runtime.stop()
    return samples[WARMUP:]


def run_bench(backend: Backend, image: np.ndarray, *, repeats: int = DEFAULT_REPEATS,
              prompts: int = DEFAULT_PROMPTS, cpu_floor_model: Any = None,
              threads: Optional[int] = None) -> tuple[list[Row], dict[str, Any]]:
    """The bench's table rows (measure, value, notes) and its figures (seconds, counts).

    cpu_floor_model: the backend's SamModel, to add the encoder-vs-matmul-floor row (CPU
    backends only; None = no such row). threads: torch threads of that row's matmul."""
    if repeats < 1 or prompts < 1:
        raise ValueError(f"repeats and prompts must be >= 1, got {repeats} and {prompts}")
    device = backend.device  # GPU work is asynchronous: each timed call waits for it

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def synced(fn: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            out = fn()
            sync()
            return out
        return run

    h, w = image.shape[:2]
    geometry = Geometry.of(backend.config)
    x = geometry.preprocess(image)
    fig: dict[str, Any] = {}
    rows: list[Row] = []

    # encoder
    t_enc, enc = timed(synced(lambda: backend.encode(x)), repeats, WARMUP)
    fig.update(encoder_s=t_enc, encoder_images_per_s=1.0 / t_enc)
    rows.append({"measure": "encoder", "value": _ms(t_enc),
                 "notes": f"{1.0 / t_enc:.1f} images/s"})

    # decoder: N box prompts at once, and one alone
    emb = enc.embeddings[:1]
    boxes = box_prompts(h, w, prompts)
    corners = np.stack([geometry.boxes_to_input(np.asarray(p.box, dtype=np.float64), (h, w))
                        .reshape(2, 2) for p in boxes])
    coords = torch.from_numpy(corners.astype(np.float32)).to(emb.device)
    labels = torch.tensor([[2.0, 3.0]], device=emb.device).repeat(prompts, 1)
    t_dec, _ = timed(synced(lambda: backend.decode(emb, coords, labels)), repeats, WARMUP)
    t_dec1, _ = timed(synced(lambda: backend.decode(emb, coords[:1], labels[:1])), repeats,
                      WARMUP)
    fig.update(decode_prompts=prompts, decode_batch_s=t_dec, decode_per_prompt_s=t_dec / prompts,
               decode_1_prompt_s=t_dec1)
    rows += [{"measure": f"decode per prompt ({prompts} at once)", "value": _ms(t_dec / prompts),
              "notes": f"{prompts} box prompts in {_ms(t_dec)}"},
             {"measure": "decode, 1 prompt alone", "value": _ms(t_dec1), "notes": ""}]

    # the pipeline: one box after encoding, one segment-everything frame
    settings = bench_settings(backend)
    counter = CountingBackend(backend)
    segmenter = _TimedSegmenter(counter, settings)
    segmenter.set_image(image)
    t_box, _, box_split = timed_stages(lambda: segmenter.segment_prompts(None, boxes[:1]),
                                       repeats, ("decode", "postprocess"))
    fig.update(box_1_s=t_box, box_1_decode_s=box_split["decode"],
               box_1_postprocess_s=box_split["postprocess"])
    rows.append({"measure": "1 box after encoding", "value": _ms(t_box),
                 "notes": f"Segmenter.segment_prompts: decode {_ms(fig['box_1_decode_s'])}, "
                          f"post-processing {_ms(fig['box_1_postprocess_s'])} (medians)"})

    def everything() -> SegmentationResult:
        counter.prompts = 0
        return segmenter.segment_everything(image)

    t_all, r_all, split = timed_stages(everything, repeats,
                                       ("preprocess", "encode", "decode", "postprocess"))
    thresholds = {k: getattr(settings, k) for k in
                  ("pred_iou_thresh", "stability_score_thresh", "ppn_score_thresh")}
    fig.update(everything_s=t_all, everything_strategy=r_all.strategy,
               everything_masks=len(r_all), everything_prompts=counter.prompts,
               everything_stages_s=split, thresholds=thresholds)
    source = "checkpoint's" if backend.model_thresholds else "SAM's default"
    rows.append({"measure": f"segment everything frame ({r_all.strategy})", "value": _ms(t_all),
                 "notes": f"{len(r_all)} masks kept, {counter.prompts} prompts decoded; "
                          f"{source} thresholds " + " / ".join(f"{v:g}" for v in
                                                               thresholds.values())
                          + "; median stages: " + ", ".join(f"{k} {_ms(v)}"
                                                         for k, v in split.items())})

    # the same frame through the runtime (the node's inference thread), frame by frame
    samples = _runtime_frames(segmenter, image, repeats)
    t_rt = statistics.median(s for s, _ in samples)
    t_over = statistics.median(s - inner for s, inner in samples)
    fig.update(runtime_frame_s=t_rt, node_overhead_s=t_over)
    rows.append({"measure": "node overhead (SegmentRuntime)", "value": _ms(t_over),
                 "notes": f"frame through the runtime {_ms(t_rt)}: hand-off to the inference "
                          "thread, COCO RLE, result callback"})

    if cpu_floor_model is not None and not on_gpu(backend):
        rate = matmul_gflops(threads or torch.get_num_threads())
        macs = encoder_macs(cpu_floor_model)
        floor = 2 * macs / (rate * 1e9)
        fig.update(matmul_gflops=rate, encoder_gmacs=macs / 1e9, encoder_floor_s=floor)
        rows.append({"measure": "encoder vs matmul floor", "value": f"{t_enc / floor:.2f}x",
                     "notes": f"{macs / 1e9:.2f} GMAC at {rate:.1f} GFLOP/s (torch fp32 "
                              f"matmul) = {_ms(floor)}"})
    return rows, fig


def header(backend: Backend, model: str, image_name: str, image: np.ndarray,
           threads: Optional[int], repeats: int) -> dict[str, Any]:
    """Where and how the figures were measured."""
    size = int(backend.config.image_size)
    engine = backend.describe()  # a backend's own describe() may leave out auto's reason
    if backend.chosen_because:
        engine.setdefault("chosen_because", backend.chosen_because)
    out: dict[str, Any] = {
        "backend": backend.name, "device": device_name(backend), "engine": engine,
        "threads": threads if threads else "default", "versions": versions(),
        "model": model, "config": str(getattr(backend.config, "name", "")),
        "input_size": size, "image": image_name,
        "image_hw": [int(image.shape[0]), int(image.shape[1])],
        "repeats": repeats, "warmup": WARMUP}
    if hasattr(os, "getloadavg"):
        out["load_average"] = [round(v, 2) for v in os.getloadavg()]
    return out


def header_line(head: dict[str, Any]) -> str:
    """The header as one line, printed above the table."""
    libs = ", ".join(f"{k} {v}" for k, v in head["versions"].items())
    h, w = head["image_hw"]
    # every field of Backend.describe() (backend, device, precision, ...), then the hardware
    parts = [f"{k} {v}" for k, v in head["engine"].items()]
    parts += [f"on {head['device']}", f"threads {head['threads']}", libs,
              f"model {head['model']} ({head['config']})",
              f"input {head['input_size']}x{head['input_size']}",
              f"image {head['image']} {w}x{h}",
              f"median of {head['repeats']} after {head['warmup']} warm-up"]
    if "load_average" in head:
        parts.append("load average " + " ".join(f"{v:.2f}" for v in head["load_average"]))
    return "litesam-engines bench: " + "; ".join(parts)


def format_table(rows: Sequence[Row]) -> str:
    """The rows as a markdown table."""
    width = max(len("measure"), *(len(r["measure"]) for r in rows))
    vwidth = max(len("value"), *(len(r["value"]) for r in rows))
    lines = [f"| {'measure'.ljust(width)} | {'value'.rjust(vwidth)} | notes |",
             f"|{'-' * (width + 2)}|{'-' * (vwidth + 1)}:|-------|"]
    lines += [f"| {r['measure'].ljust(width)} | {r['value'].rjust(vwidth)} | {r['notes']} |"
              for r in rows]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """`litesam-engines bench`: build the backend, run the bench, print the table (and write
    the figures to --json). A backend that cannot start raises RuntimeError with one line."""
    image_name = args.image or DEFAULT_IMAGE
    repeats, prompts = args.repeats or DEFAULT_REPEATS, args.prompts or DEFAULT_PROMPTS
    if args.threads:
        torch.set_num_threads(args.threads)
    image = load_image(image_name)
    try:
        # stdout is the table's: the ONNX export's and engine build's chatter goes to stderr
        with contextlib.redirect_stdout(sys.stderr):
            backend = create_backend(args.backend, args.model, precision=args.precision,
                                     cache_dir=args.cache_dir, device=args.device,
                                     threads=args.threads)
    except (ValueError, FileNotFoundError):
        raise
    except Exception as exc:  # noqa: BLE001 - TensorRT and CUDA fail in many ways; one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RuntimeError(f"backend {args.backend} cannot start: {first}") from exc
    floor_model = None
    if args.cpu_floor:
        floor_model = load_model(args.model).model
    rows, figures = run_bench(backend, image, repeats=repeats, prompts=prompts,
                              cpu_floor_model=floor_model, threads=args.threads)
    head = header(backend, str(args.model), image_name, image, args.threads, repeats)
    print(header_line(head))
    print()
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"header": head, "rows": rows,
                                               "figures": figures}, indent=2) + "\n")
    return 0
