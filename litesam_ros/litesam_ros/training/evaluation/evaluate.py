"""Evaluation: 1-box mIoU, 1-point mIoU (most central point) and AutoPPN recall at N proposals."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm import tqdm

from ...masks import mask_boxes, mask_iou
from ...model.geometry import Geometry
from ..data.samples import Sample
from ..supervised.targets import central_point, instance_groups, mask_box

if TYPE_CHECKING:
    from litesam_ros.model import SamModel


def write_metrics(res: Dict[str, Any], output: Optional[str]) -> None:
    """Print metrics as indented JSON, and write the same text to ``output`` if given."""
    text = json.dumps(res, indent=2)
    print(text)
    if output:
        with open(output, "w") as f:
            f.write(text + "\n")


def box_fill(mask: np.ndarray) -> np.ndarray:
    """The trivial answer to a box prompt: the mask's tight box, filled."""
    out = np.zeros_like(mask, dtype=bool)
    x0, y0, x1, y1 = (int(v) for v in mask_box(mask))
    out[y0:y1, x0:x1] = True
    return out


def matched_grid(n: int, hw: Tuple[int, int]) -> np.ndarray:
    """About n points on a regular grid over an H x W image (side = round(sqrt(n))), as pixel
    indices [M,2] (x, y): the trivial proposal set that AutoPPN's recall is compared with."""
    side = max(1, int(round(float(np.sqrt(max(n, 1))))))
    ys = ((np.arange(side) + 0.5) * hw[0] / side).astype(np.int64)
    xs = ((np.arange(side) + 0.5) * hw[1] / side).astype(np.int64)
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.reshape(-1), gy.reshape(-1)], 1)


def _to_original(logits: torch.Tensor, geometry: Geometry, hw: Tuple[int, int],
                 orig: Tuple[int, int]) -> np.ndarray:
    """Low-res logits [P,L,L] -> bool masks [P,H,W] in the original image (as serving)."""
    return (geometry.upsample_logits(logits, hw, orig) > 0).numpy()


@torch.no_grad()
def evaluate(model: SamModel, samples: Iterable[Sample], top_ns: Sequence[int] = (64, 128, 256),
             device: str = "cpu", progress: bool = True, chunk: int = 32) -> Dict[str, Any]:
    """Metrics over ``samples`` (instances whose resized mask is empty are skipped).

    box: GT box prompt, single-mask output. point: the mask's most central point (max of its
    distance transform), single-mask output (``point_miou``) and the multimask output with the
    highest predicted IoU (``point_miou_best``). Recall@N: a GT instance is recalled when one of
    the N highest-scoring proposals with score > 0 falls inside its mask;
    ``proposals_per_image`` is the mean number of such proposals (Point-NMS peaks).

    Trivial baselines on the same instances, printed beside each metric: ``box_fill_miou`` (the
    box prompt's own box, filled, as the mask) and ``grid_recall@N`` (a regular grid with as many
    points as the image's AutoPPN proposals among its top N).
    """
    model.eval().to(device)
    mcfg = model.config
    geometry = Geometry.of(mcfg)
    box_i, pt_i, ptb_i, fill_i, grp = [], [], [], [], []
    hits: Dict[int, List[bool]] = {n: [] for n in top_ns}
    grid_hits: Dict[int, List[bool]] = {n: [] for n in top_ns}
    n_img = 0
    n_props: List[int] = []
    samples = list(samples)
    for s in tqdm(samples, disable=not progress, desc="eval", dynamic_ncols=True):
        H, W = s.image.shape[:2]
        hw = geometry.input_hw((H, W))
        sx, sy = geometry.scales((H, W))
        m_in = geometry.resize_masks(s.masks)
        keep = m_in.reshape(len(m_in), -1).any(1) if len(m_in) else np.zeros(0, bool)
        gt, m_in = s.masks[keep], m_in[keep]
        if not len(gt):
            continue
        n_img += 1
        x = geometry.preprocess(s.image).to(device)
        emb, props = model.encode(x)
        boxes = mask_boxes(m_in)
        cen = np.array([central_point(m) for m in m_in], np.float32)
        P = len(gt)
        coords = torch.zeros(2 * P, 2, 2)
        labels = torch.zeros(2 * P, 2)
        coords[:P] = torch.from_numpy(boxes.reshape(P, 2, 2))
        labels[:P] = torch.tensor([2.0, 3.0])
        coords[P:, 0] = torch.from_numpy(cen)
        labels[P:] = torch.tensor([1.0, -1.0])
        outs, ious = [], []
        for i in range(0, 2 * P, chunk):
            lg, io = model.decode(emb[:1], coords[i:i + chunk].to(device),
                                  labels[i:i + chunk].to(device))
            outs.append(lg.float().cpu())
            ious.append(io.float().cpu())
        lg, io = torch.cat(outs), torch.cat(ious)
        mb = _to_original(lg[:P, 0], geometry, hw, (H, W))
        mp = _to_original(lg[P:, 0], geometry, hw, (H, W))
        best = 1 + io[P:, 1:].argmax(1) if lg.shape[1] > 1 else torch.zeros(P, dtype=torch.long)
        mpb = _to_original(lg[P:][torch.arange(P), best], geometry, hw, (H, W))
        for j in range(P):
            box_i.append(float(mask_iou(mb[j], gt[j], empty=1.0)))
            pt_i.append(float(mask_iou(mp[j], gt[j], empty=1.0)))
            ptb_i.append(float(mask_iou(mpb[j], gt[j], empty=1.0)))
            fill_i.append(float(mask_iou(box_fill(gt[j]), gt[j], empty=1.0)))
        grp.extend(instance_groups(gt).tolist())
        if props is None:  # a model without an AutoPPN head: mask metrics only
            continue
        pts = props.points[0].float().cpu().numpy()
        sc = props.scores[0].float().cpu().numpy()
        order = np.argsort(-sc, kind="stable")
        n_props.append(int((sc > 0).sum()))
        for n in top_ns:
            sel = order[:n]
            sel = sel[sc[sel] > 0]
            xy = np.floor(pts[sel] / np.array([sx, sy], np.float32)).astype(np.int64)
            ok = (xy[:, 0] >= 0) & (xy[:, 0] < W) & (xy[:, 1] >= 0) & (xy[:, 1] < H)
            xy = xy[ok]
            inside = gt[:, xy[:, 1], xy[:, 0]] if len(xy) else np.zeros((P, 0), bool)
            hits[n].extend(np.asarray(inside.any(1)).tolist())
            grid = matched_grid(len(sel), (H, W)) if len(sel) else np.zeros((0, 2), np.int64)
            on = gt[:, grid[:, 1], grid[:, 0]] if len(grid) else np.zeros((P, 0), bool)
            grid_hits[n].extend(np.asarray(on.any(1)).tolist())
    grp_a = np.asarray(grp)
    res: Dict[str, Any] = {
        "images": n_img, "instances": len(box_i),
        "box_miou": float(np.mean(box_i)) if box_i else float("nan"),
        "box_fill_miou": float(np.mean(fill_i)) if fill_i else float("nan"),
        "point_miou": float(np.mean(pt_i)) if pt_i else float("nan"),
        "point_miou_best": float(np.mean(ptb_i)) if ptb_i else float("nan"),
        "proposals_per_image": float(np.mean(n_props)) if n_props else float("nan"),
    }
    for n in top_ns:
        h = np.asarray(hits[n], bool)
        res[f"recall@{n}"] = float(h.mean()) if len(h) else float("nan")
        gh = np.asarray(grid_hits[n], bool)
        res[f"grid_recall@{n}"] = float(gh.mean()) if len(gh) else float("nan")
        for g, name in enumerate(("small", "medium", "large")):
            sel = grp_a == g
            if sel.any() and len(h):  # no hits at all: a model without an AutoPPN head
                res[f"recall@{n}_{name}"] = float(h[sel].mean())
    for g, name in enumerate(("small", "medium", "large")):
        sel = grp_a == g
        if sel.any():
            res[f"box_miou_{name}"] = float(np.asarray(box_i)[sel].mean())
            res[f"point_miou_{name}"] = float(np.asarray(pt_i)[sel].mean())
            res[f"instances_{name}"] = int(sel.sum())
    return res
