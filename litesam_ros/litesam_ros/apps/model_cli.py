"""`litesam-model`: inspect a model file and convert official checkpoints to this project's format.

    litesam-model info  FILE_OR_NAME
    litesam-model convert OFFICIAL_FILE OUT.pt     # SAM / MobileSAM / TinySAM / EfficientSAM

The converted file carries its config, so the node, the engines and the trainer load it without
being told the architecture. Conversion is bit-exact: the same tensors, in this format.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Optional, Sequence

from litesam_ros.model.checkpoint import CheckpointError
from litesam_ros.model.loading import convert, load_model


def ppn_head(cfg: Any) -> str:
    """What the AutoPPN head of a config proposes: none, cell centres or sub-cell points."""
    if not cfg.autoppn:
        return "no"
    if cfg.ppn_offsets:
        return "yes, sub-cell offsets (ppn_offsets: points inside their cell)"
    return "yes, no offsets (ppn_offsets false: points at cell centres)"


def _info(args: argparse.Namespace) -> int:
    loaded = load_model(args.source)
    cfg = loaded.config
    params = sum(p.numel() for p in loaded.model.parameters())
    enc = sum(p.numel() for p in loaded.model.image_encoder.parameters())
    print(f"{args.source}: {loaded.describe()}")
    print(f"  kind {loaded.kind}; encoder {cfg.encoder}; AutoPPN head {ppn_head(cfg)}; "
          f"decoder {cfg.decoder}")
    print(f"  input {cfg.image_size} ({cfg.resize}, {cfg.interpolation}); embedding "
          f"{cfg.embed_dim}x{cfg.embedding_size}x{cfg.embedding_size}; params {params:,} "
          f"(image encoder {enc:,})")
    if loaded.metadata:
        print("  metadata " + json.dumps(loaded.metadata, default=str)[:400])
    return 0


def _convert(args: argparse.Namespace) -> int:
    out = convert(args.source, args.out, half=args.fp16)
    loaded = load_model(out)
    print(f"wrote {out}: {loaded.describe()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="litesam-model", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="what a model file or registry name holds")
    p.add_argument("source")
    p.set_defaults(func=_info)
    p = sub.add_parser("convert", help="write an official (or any loadable) model file as a "
                                       "self-describing litesam_ros checkpoint")
    p.add_argument("source")
    p.add_argument("out")
    p.add_argument("--fp16", action="store_true",
                   help="store the weights as float16: half the file, loaded back as float32")
    p.set_defaults(func=_convert)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the `litesam-model` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (CheckpointError, ValueError, OSError) as exc:
        print(f"litesam-model {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
