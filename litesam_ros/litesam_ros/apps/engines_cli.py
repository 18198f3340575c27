"""`litesam-engines`: export ONNX graphs, build TensorRT engines, quantize to INT8, and bench
the pipeline on this machine."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from litesam_ros.apps.bench import main as bench
from litesam_ros.engines import quantize
from litesam_ros.engines import tensorrt_backend as trb
from litesam_ros.engines.base import GRAPH_PARTS
from litesam_ros.engines.choices import (BACKEND_KINDS, DEFAULT_BACKEND, DEFAULT_ENCODER_BATCH,
                                         DEFAULT_PRECISION, ENCODER_BATCH_RANGE,
                                         ENGINE_PRECISIONS, PRECISIONS, TENSORRT_PRECISION)
from litesam_ros.engines.factory import exported_graphs, int8_graphs, resolve_model
from litesam_ros.engines.onnx_export import DEFAULT_OPSET, compare_with_ort, export_model
from litesam_ros.model.registry import DEFAULT_MODEL


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="registry model name or model file: this project's checkpoint or an "
                        f"official SAM/MobileSAM/TinySAM/EfficientSAM file (default: "
                        f"{DEFAULT_MODEL})")
    p.add_argument("--cache-dir", default=None,
                   help="cache folder (default: $LITESAM_CACHE_DIR or ~/.cache/litesam_ros)")


def _encoder_batch(p: argparse.ArgumentParser) -> None:
    lo, hi = ENCODER_BATCH_RANGE
    p.add_argument("--encoder-batch", type=int, default=DEFAULT_ENCODER_BATCH,
                   choices=range(lo, hi + 1), metavar="N",
                   help=f"encoder batch ({lo}-{hi}; the node's encoder_batch): 1 = the static "
                        "batch-1 encoder graph; N > 1 = the dynamic-batch graph (TensorRT: "
                        "profile min 1, opt N, max N)")


def _export(args: argparse.Namespace) -> int:
    model, model_id = resolve_model(args.model)
    dynamic = args.encoder_batch > 1
    if args.out_dir:
        graphs = export_model(model, args.out_dir, args.opset, dynamic_batch=dynamic)
    else:
        graphs, _ = exported_graphs(model, model_id, args.cache_dir, dynamic_batch=dynamic)
    if args.verify:
        diffs = compare_with_ort(model, graphs)
        print("max |torch - onnxruntime|: " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    print(f"encoder: {graphs.encoder}\ndecoder: {graphs.decoder}")
    return 0


def _build_engine(args: argparse.Namespace) -> int:
    missing = trb.tensorrt_missing()
    if missing:
        print(f"TensorRT (and a CUDA GPU) is required to build engines: {missing}",
              file=sys.stderr)
        return 2
    model, model_id = resolve_model(args.model)
    graphs, folder = exported_graphs(model, model_id, args.cache_dir,
                                     dynamic_batch=args.encoder_batch > 1)
    profile = trb.DecoderProfile.for_config(
        model.config, trb.DimRange(*args.prompts) if args.prompts else None)
    if args.points:
        profile = trb.DecoderProfile(profile.prompts, trb.DimRange(*args.points))
    qdq = (int8_graphs(graphs, folder, model.config, "tensorrt", trb.QDQ_PARTS).encoder
           if args.precision == "int8" else None)
    out = Path(args.out_dir) if args.out_dir else folder / "tensorrt"
    enc_src = qdq if qdq is not None else graphs.encoder
    workspace = args.workspace << 20 if args.workspace else trb.DEFAULT_WORKSPACE
    enc = trb.cached_engine(enc_src, out, "encoder", args.precision,
                            trb.encoder_profile(args.encoder_batch), workspace)
    dec = trb.cached_engine(graphs.decoder, out, "decoder", args.precision, profile, workspace)
    print(f"encoder engine: {enc}\ndecoder engine: {dec}")
    return 0


def _quantize_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of `litesam-engines quantize`."""
    _common(p)
    p.add_argument("--out-dir", default=None, help="where the INT8 graphs go (default: cache)")
    p.add_argument("--target", choices=quantize.QUANTIZE_TARGETS,
                   default=quantize.DEFAULT_TARGET)
    p.add_argument("--parts", nargs="+", choices=GRAPH_PARTS,
                   default=list(quantize.CPU_PARTS))
    p.add_argument("--images", nargs="+", default=list(quantize.CALIBRATION_IMAGES),
                   help="skimage.data image names used for calibration")


def _quantize(args: argparse.Namespace) -> int:
    """`litesam-engines quantize`: export (or reuse) the FP32 graphs, then quantize them."""
    model, model_id = resolve_model(args.model)
    graphs, folder = exported_graphs(model, model_id, args.cache_dir)
    out = quantize.quantize_model(graphs.encoder, graphs.decoder, args.out_dir or folder,
                                  model.config, args.target,
                                  quantize.calibration_images(args.images), args.parts)
    for part, path in out.items():
        print(f"{part}: {path}")
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _bench_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of `litesam-engines bench`."""
    _common(p)
    p.add_argument("--backend", choices=BACKEND_KINDS, default=DEFAULT_BACKEND,
                   help="auto = TensorRT, else ONNX Runtime CUDA, else torch CUDA, else "
                        "ONNX Runtime CPU (docs/gpu.md)")
    p.add_argument("--precision", choices=PRECISIONS, default=DEFAULT_PRECISION)
    p.add_argument("--device", default=None, help="e.g. cuda:0 or cpu (default: the backend's)")
    p.add_argument("--threads", type=_positive, default=None,
                   help="intra-op threads of ONNX Runtime / torch (default: theirs)")
    # None = apps/bench.py's DEFAULT_IMAGE, DEFAULT_REPEATS, DEFAULT_PROMPTS
    p.add_argument("--image", default=None,
                   help="skimage.data image name or an image file (default: astronaut)")
    p.add_argument("--repeats", type=_positive, default=None,
                   help="each figure is the median of this many runs after one warm-up "
                        "(default: 5)")
    p.add_argument("--prompts", type=_positive, default=None,
                   help="prompts decoded at once for the decode-per-prompt row (default: 16)")
    p.add_argument("--cpu-floor", action="store_true",
                   help="CPU backends: add the encoder against this machine's matmul floor")
    p.add_argument("--json", default=None, help="also write the header and figures here")


def _bench(args: argparse.Namespace) -> int:
    return bench(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="litesam-engines", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("export", help="export encoder and decoder ONNX graphs")
    _common(p)
    p.add_argument("--out-dir", default=None, help="write here instead of the cache")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    p.add_argument("--verify", action="store_true", help="compare with ONNX Runtime")
    _encoder_batch(p)
    p.set_defaults(func=_export)

    p = sub.add_parser("build-engine", help="build TensorRT engines ahead of time")
    _common(p)
    p.add_argument("--precision", choices=ENGINE_PRECISIONS, default=TENSORRT_PRECISION)
    p.add_argument("--prompts", type=int, nargs=3, default=None,
                   metavar=("MIN", "OPT", "MAX"),
                   help="decoder profile on the prompt batch (default: "
                        "tensorrt_backend.DEFAULT_PROMPTS)")
    p.add_argument("--points", type=int, nargs=3, default=None,
                   metavar=("MIN", "OPT", "MAX"),
                   help="decoder profile on points per prompt (default: 1 2 <the model's "
                        "max_prompt_points>)")
    p.add_argument("--workspace", type=int, default=None,
                   help="workspace limit in MiB (default: tensorrt_backend.DEFAULT_WORKSPACE)")
    p.add_argument("--out-dir", default=None)
    _encoder_batch(p)
    p.set_defaults(func=_build_engine)

    p = sub.add_parser("quantize", help="INT8 post-training quantization (QDQ) of the graphs")
    _quantize_arguments(p)
    p.set_defaults(func=_quantize)

    p = sub.add_parser("bench", help="time encoder, decoder, a box, a segment-everything frame "
                                     "and the node's overhead on this machine")
    _bench_arguments(p)
    p.set_defaults(func=_bench)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the `litesam-engines` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("onnx_ir", "onnxscript"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.func(args))
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"litesam-engines {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
