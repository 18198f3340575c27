"""What travels with the weights: an IoU calibration and segment-everything thresholds, fitted on
labelled held-out data (``litesam-train calibrate``).

1. Every image is encoded and its segment-everything candidates decoded **once**, through the
   serving code (``segment.strategies.run_strategy`` on a backend, every filter off). Each
   candidate keeps its raw predicted IoU, stability score, AutoPPN proposal score, low-res box,
   and the IoU of its full-resolution mask (the node's up-sampling) with every ground-truth
   instance (pycocotools).
2. The IoU calibration ``sigmoid(scale * logit(iou) + bias)`` (``segment.postprocess
   .calibrate_iou``, what the pipeline applies) is fitted on all candidates against the IoU with
   their best-matching instance, by log-loss (convex in scale and bias; Newton). Expected
   calibration error (10 equal-width bins) and MSE are reported before and after.
3. pred_iou_thresh (in calibrated units), stability_score_thresh and, for models with an
   AutoPPN head, ppn_score_thresh are grid-searched on the cached scores for the best F1 of
   segment-everything: the candidates passing the filters go through the pipeline's box NMS and
   instance cap (``Segmenter._finish_everything``), then a prediction is a true positive when it
   matches a not yet matched instance at mask IoU >= 0.5 (greedy, in score order).

The fitted values go into the checkpoint's metadata (``thresholds``, ``iou_calibration``), where
``load_model`` / ``create_backend`` read them back for the pipeline.
"""
from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm import tqdm

from ...engines import create_backend
from ...model import load_model, save_checkpoint
from ...masks import pairwise_mask_iou
from ...model.geometry import Geometry
from ...model.loading import iou_calibration, recommended_thresholds, weights_sha256
from ...segment.pipeline import SegmentSettings, resolve_strategy
from ...segment.postprocess import IOU_LOGIT_EPS, box_iou, calibrate_iou
from ...segment.strategies import run_strategy
from ..data.samples import Sample

if TYPE_CHECKING:
    from ...engines.base import Backend

#: Threshold grids searched (calibrated IoU; stability; AutoPPN proposal score). 0 = filter off.
IOU_GRID = tuple(round(0.05 * i, 2) for i in range(20))            # 0, 0.05 .. 0.95
STABILITY_GRID = (0.0,) + tuple(round(0.5 + 0.05 * i, 2) for i in range(10))  # 0, 0.5 .. 0.95
PPN_GRID = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6)
MATCH_IOU = 0.5
ECE_BINS = 10
SAM_DEFAULTS = {"pred_iou_thresh": 0.88, "stability_score_thresh": 0.95}


@dataclass
class ImageCandidates:
    """One image's segment-everything candidates with every filter off (K of them, in the
    strategy's order) and what the sweep needs of them.

    iou: raw predicted IoU [K]; stability [K]; ppn_score [K] (proposal score; 1 for grid
    strategies); boxes [K,4] low-res xyxy (what the pipeline's NMS uses); nonempty [K] (the
    full-resolution mask has a pixel); gt_iou [K,G] mask IoU with each instance; ignored [K]
    (at least half of the mask lies in the sample's ignore region).
    """

    name: str
    iou: np.ndarray
    stability: np.ndarray
    ppn_score: np.ndarray
    boxes: torch.Tensor
    nonempty: np.ndarray
    gt_iou: np.ndarray
    ignored: np.ndarray

    @property
    def instances(self) -> int:
        return int(self.gt_iou.shape[1])

    @property
    def best_iou(self) -> np.ndarray:
        """The IoU of each candidate with its best-matching instance (0 without instances)."""
        if self.gt_iou.shape[1] == 0:
            return np.zeros(len(self.iou), np.float64)
        return self.gt_iou.max(1)


def _proposal_scores(points: torch.Tensor, enc: Any) -> np.ndarray:
    """The AutoPPN score of the proposal each candidate was decoded from (matched by point)."""
    if enc.points is None or enc.scores is None or not len(points):
        return np.ones(len(points), np.float32)
    props = enc.points[0].float().to(points.device)
    # exact differences: cdist's default matrix-product form errs by ~0.1 px at 300 px for
    # sub-cell (offset) proposals once there are more than 25 of them
    d = torch.cdist(points.float(), props, compute_mode="donot_use_mm_for_euclid_dist")
    nearest = d.argmin(1)
    if float(d.gather(1, nearest[:, None]).max()) > 1e-3:
        raise RuntimeError("a candidate's point is none of the encoder's AutoPPN proposals")
    return enc.scores[0].float().to(points.device)[nearest].cpu().numpy()


@torch.no_grad()
def cache_candidates(backend: Backend, samples: Iterable[Sample], settings: SegmentSettings,
                     strategy: str = "auto", progress: bool = True,
                     desc: str = "candidates") -> List[ImageCandidates]:
    """Encode and decode every image once (``backend`` must return raw IoUs: build it from the
    model module, not the checkpoint file, so no calibration is applied), filters off."""
    geometry = Geometry.of(backend.config)
    strategy = resolve_strategy(backend.config, strategy)
    open_settings = settings.with_(pred_iou_thresh=0.0, stability_score_thresh=0.0,
                                   ppn_score_thresh=0.0)
    out: List[ImageCandidates] = []
    samples = list(samples)
    for s in tqdm(samples, disable=not progress, desc=desc, dynamic_ncols=True):
        image = np.ascontiguousarray(s.image)
        hw = (int(image.shape[0]), int(image.shape[1]))
        input_hw = geometry.input_hw(hw)
        enc = backend.encode(geometry.preprocess(image))
        c = run_strategy(strategy, backend, enc, open_settings, input_hw,
                         geometry.low_res_valid_hw(input_hw), {})
        gt = np.asarray(s.masks, bool)
        gt = gt[gt.reshape(len(gt), -1).any(1)] if len(gt) else gt.reshape(0, *hw)
        ious, nonempty, ignored = [], [], []
        for part in torch.arange(len(c)).split(32):
            m = (geometry.upsample_logits(c.logits[part], input_hw, hw)
                 > settings.mask_threshold).cpu().numpy()
            area = m.reshape(len(m), -1).sum(1)
            nonempty.append(area > 0)
            ious.append(pairwise_mask_iou(m, gt))
            if s.ignore is not None:
                inside = (m & s.ignore[None]).reshape(len(m), -1).sum(1)
                ignored.append(inside >= 0.5 * np.maximum(area, 1))
            else:
                ignored.append(np.zeros(len(m), bool))
        k = len(c)
        out.append(ImageCandidates(
            name=s.name, iou=c.iou.float().cpu().numpy(),
            stability=c.stability.float().cpu().numpy(),
            ppn_score=(_proposal_scores(c.points, enc) if strategy == "autoppn"
                       else np.ones(k, np.float32)),
            boxes=c.boxes.float().cpu(),
            nonempty=np.concatenate(nonempty) if k else np.zeros(0, bool),
            gt_iou=np.concatenate(ious) if k else np.zeros((0, len(gt))),
            ignored=np.concatenate(ignored) if k else np.zeros(0, bool)))
    return out


# -- calibration ---------------------------------------------------------------------------------
def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, np.float64), IOU_LOGIT_EPS, 1.0 - IOU_LOGIT_EPS)
    return np.log(q) - np.log1p(-q)


def fit_iou_calibration(pred: np.ndarray, actual: np.ndarray, iterations: int = 100
                        ) -> Tuple[float, float]:
    """(scale, bias) minimising the log-loss between ``sigmoid(scale * logit(pred) + bias)``
    and the actual IoUs in [0, 1] (soft labels; convex, so Newton's method finds the one
    minimum). Identity (1, 0) for fewer than two distinct predictions."""
    x = _logit(pred)
    y = np.clip(np.asarray(actual, np.float64), 0.0, 1.0)
    if len(x) < 2 or np.ptp(x) == 0:
        return 1.0, 0.0
    X = np.stack([x, np.ones_like(x)], 1)
    w = np.array([1.0, 0.0])

    def loss(v: np.ndarray) -> float:
        z = X @ v  # log-loss with logits: log(1 + e^z) - y z
        return float(np.mean(np.logaddexp(0.0, z) - y * z))

    cur = loss(w)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(X @ w)))
        g = X.T @ (p - y) / len(x)
        h = (X * (p * (1 - p))[:, None]).T @ X / len(x) + 1e-12 * np.eye(2)
        step = np.linalg.solve(h, g)
        t = 1.0
        while t > 1e-8:
            new = loss(w - t * step)
            if new <= cur:
                break
            t *= 0.5
        w = w - t * step
        done = abs(cur - new) < 1e-15 or float(np.abs(t * step).max()) < 1e-12
        cur = new
        if done:
            break
    return float(w[0]), float(w[1])


def apply_calibration(pred: np.ndarray, calibration: Mapping[str, float]) -> np.ndarray:
    """``calibrate_iou`` (the pipeline's own function) on a numpy array, float32 as served."""
    t = torch.from_numpy(np.asarray(pred, np.float32))
    return calibrate_iou(t, dict(calibration)).float().numpy()


def calibration_error(pred: np.ndarray, actual: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error: predictions (clipped to [0, 1]) in ``bins`` equal-width
    bins, the mean |mean predicted - mean actual| per bin weighted by the bin's share."""
    p = np.clip(np.asarray(pred, np.float64), 0.0, 1.0)
    a = np.asarray(actual, np.float64)
    if not len(p):
        return float("nan")
    idx = np.minimum((p * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            total += sel.sum() / len(p) * abs(p[sel].mean() - a[sel].mean())
    return float(total)


def calibration_metrics(pred: np.ndarray, actual: np.ndarray) -> Dict[str, float]:
    """ECE (10 bins) and MSE of predictions in [0, 1] (clipped) against actual IoUs."""
    p = np.clip(np.asarray(pred, np.float64), 0.0, 1.0)
    a = np.asarray(actual, np.float64)
    return {"ece": calibration_error(p, a),
            "mse": float(np.mean((p - a) ** 2)) if len(p) else float("nan")}


# -- thresholds ----------------------------------------------------------------------------------
class _Scored:
    """One image's candidates under one calibration: score order and NMS overlaps, computed once
    for every threshold combination."""

    def __init__(self, c: ImageCandidates, calibration: Mapping[str, float],
                 settings: SegmentSettings) -> None:
        score = torch.from_numpy(apply_calibration(c.iou, calibration))
        # the pipeline's nms(): stable descending sort by score; a subset keeps this order
        order = torch.argsort(score, descending=True, stable=True)
        self.order = order.numpy()
        self.score = score.numpy()[self.order]
        self.stability = c.stability[self.order]
        self.ppn = c.ppn_score[self.order]
        b = c.boxes[order]
        self.over = ((box_iou(b, b) > settings.box_nms_thresh).triu(1).numpy()
                     if len(b) else np.zeros((0, 0), bool))
        self.nonempty = c.nonempty[self.order]
        self.gt_iou = c.gt_iou[self.order]
        self.ignored = c.ignored[self.order]
        self.n_gt = c.instances
        self.max_instances = settings.max_instances
        self._memo: Dict[bytes, Tuple[int, int, int]] = {}

    def passing(self, t_iou: float, t_stab: float, t_ppn: float) -> np.ndarray:
        """The pipeline's filters (strategies.decode_points / proposal_points), in score order."""
        sel = np.ones(len(self.score), bool)
        if t_iou > 0:  # SAM applies each filter only when its threshold is > 0
            sel &= self.score > np.float32(t_iou)
        if t_stab > 0:
            sel &= self.stability >= np.float32(t_stab)
        if t_ppn > 0:
            sel &= self.ppn > np.float32(t_ppn)
        return sel

    def kept(self, sel: np.ndarray) -> np.ndarray:
        """Positions (score order) the pipeline publishes: greedy box NMS over the passing
        candidates, the first max_instances, then non-empty full-resolution masks."""
        alive = sel.copy()
        kept: List[int] = []
        start = 0
        while len(kept) < self.max_instances:
            nz = np.flatnonzero(alive[start:])
            if not len(nz):
                break
            j = start + int(nz[0])
            kept.append(j)
            alive &= ~self.over[j]
            start = j + 1
        k = np.asarray(kept, np.int64)
        return k[self.nonempty[k]] if len(k) else k

    def counts(self, t_iou: float, t_stab: float, t_ppn: float) -> Tuple[int, int, int]:
        """(true positives, false positives, false negatives) at these thresholds."""
        sel = self.passing(t_iou, t_stab, t_ppn)
        key = np.packbits(sel).tobytes()
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        kept = self.kept(sel)
        free = np.ones(self.n_gt, bool)
        tp = fp = 0
        for j in kept:
            row = np.where(free, self.gt_iou[j], -1.0) if self.n_gt else np.zeros(0)
            g = int(np.argmax(row)) if len(row) else -1
            if g >= 0 and row[g] >= MATCH_IOU:
                free[g] = False
                tp += 1
            elif not self.ignored[j]:
                fp += 1
        res = (tp, fp, self.n_gt - tp)
        self._memo[key] = res
        return res


def _f1_row(tp: int, fp: int, fn: int, images: int) -> Dict[str, float]:
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": prec, "recall": rec, "f1": f1,
            "masks_per_image": (tp + fp) / max(images, 1)}


def f1_at(cands: Sequence[ImageCandidates], thresholds: Mapping[str, float],
          calibration: Mapping[str, float], settings: SegmentSettings) -> Dict[str, float]:
    """Segment-everything F1 (micro over images) at one set of thresholds; missing names take
    0 (filter off)."""
    t = (float(thresholds.get("pred_iou_thresh", 0.0)),
         float(thresholds.get("stability_score_thresh", 0.0)),
         float(thresholds.get("ppn_score_thresh", 0.0)))
    tp = fp = fn = 0
    for c in cands:
        a, b, d = _Scored(c, calibration, settings).counts(*t)
        tp, fp, fn = tp + a, fp + b, fn + d
    return _f1_row(tp, fp, fn, len(cands))


def search_thresholds(cands: Sequence[ImageCandidates], calibration: Mapping[str, float],
                      settings: SegmentSettings, with_ppn: bool,
                      iou_grid: Sequence[float] = IOU_GRID,
                      stability_grid: Sequence[float] = STABILITY_GRID,
                      ppn_grid: Sequence[float] = PPN_GRID
                      ) -> Tuple[Dict[str, float], Dict[str, float]]:
    """(thresholds, their F1 row) with the best F1 over the grid; ties: higher precision, then
    the lower thresholds (earlier in the grids)."""
    scored = [_Scored(c, calibration, settings) for c in cands]
    ppns = tuple(ppn_grid) if with_ppn else (0.0,)
    best: Optional[Tuple[Tuple[float, float], Dict[str, float], Dict[str, float]]] = None
    for t_iou in iou_grid:
        for t_stab in stability_grid:
            for t_ppn in ppns:
                tp = fp = fn = 0
                for s in scored:
                    a, b, d = s.counts(t_iou, t_stab, t_ppn)
                    tp, fp, fn = tp + a, fp + b, fn + d
                row = _f1_row(tp, fp, fn, len(cands))
                key = (row["f1"], row["precision"])
                if best is None or key > best[0]:
                    th = {"pred_iou_thresh": float(t_iou), "stability_score_thresh": float(t_stab)}
                    if with_ppn:
                        th["ppn_score_thresh"] = float(t_ppn)
                    best = (key, th, row)
    assert best is not None
    return best[1], best[2]


# -- the whole fit ------------------------------------------------------------------------------
def _pool(cands: Sequence[ImageCandidates]) -> Tuple[np.ndarray, np.ndarray]:
    pred = np.concatenate([c.iou for c in cands]) if cands else np.zeros(0)
    actual = np.concatenate([c.best_iou for c in cands]) if cands else np.zeros(0)
    return pred, actual


def _describe(cands: Sequence[ImageCandidates]) -> Dict[str, int]:
    return {"images": len(cands), "instances": int(sum(c.instances for c in cands)),
            "masks": int(sum(len(c.iou) for c in cands))}


def fit(cands: Sequence[ImageCandidates], settings: SegmentSettings, with_ppn: bool
        ) -> Dict[str, Any]:
    """IoU calibration then thresholds (in calibrated units) on the fit set's candidates."""
    pred, actual = _pool(cands)
    scale, bias = fit_iou_calibration(pred, actual)
    cal = {"scale": scale, "bias": bias}
    before = calibration_metrics(pred, actual)
    after = calibration_metrics(apply_calibration(pred, cal), actual)
    thresholds, row = search_thresholds(cands, cal, settings, with_ppn)
    return {"calibration": cal,
            "calibration_metrics": {"ece_before": before["ece"], "ece_after": after["ece"],
                                    "mse_before": before["mse"], "mse_after": after["mse"]},
            "thresholds": thresholds, "f1": row, **_describe(cands)}


def compare(cands: Sequence[ImageCandidates], settings: SegmentSettings,
            rows: Sequence[Tuple[str, Mapping[str, float], Mapping[str, float]]],
            calibration: Mapping[str, float]) -> Dict[str, Any]:
    """Calibration error of the raw and calibrated IoU on a set, and the F1 of each
    (name, thresholds, calibration) row."""
    pred, actual = _pool(cands)
    before = calibration_metrics(pred, actual)
    after = calibration_metrics(apply_calibration(pred, calibration), actual)
    return {**_describe(cands),
            "ece_before": before["ece"], "ece_after": after["ece"],
            "mse_before": before["mse"], "mse_after": after["mse"],
            "f1": [{"name": name, "iou": "calibrated" if cal else "raw",
                    "thresholds": dict(th), **f1_at(cands, th, cal, settings)}
                   for name, th, cal in rows]}


def calibrated_metadata(metadata: Mapping[str, Any], result: Mapping[str, Any], fit_on: str,
                        strategy: str, settings: SegmentSettings) -> Dict[str, Any]:
    """The checkpoint metadata with the fitted thresholds and IoU calibration written in (the
    previous thresholds kept under ``thresholds_previous``); everything else unchanged."""
    meta = dict(metadata)
    old = recommended_thresholds(meta)
    if old:
        meta["thresholds_previous"] = {"thresholds": old,
                                       "note": str(meta.get("thresholds_note", ""))}
    cm = result["calibration_metrics"]
    f1 = result["f1"]
    meta["thresholds"] = {k: float(v) for k, v in result["thresholds"].items()}
    meta["thresholds_note"] = (
        f"fitted by litesam-train calibrate: best F1 ({f1['f1']:.3f}) of segment-everything "
        f"({strategy}, box NMS {settings.box_nms_thresh}, at most {settings.max_instances}) on "
        f"{fit_on}; pred_iou_thresh is in calibrated IoU units (iou_calibration)")
    meta["thresholds_fit"] = {
        "fit_on": fit_on, "strategy": strategy, "match_iou": MATCH_IOU,
        "box_nms_thresh": settings.box_nms_thresh, "max_instances": settings.max_instances,
        "f1": f1["f1"], "precision": f1["precision"], "recall": f1["recall"],
        "images": result["images"], "instances": result["instances"]}
    meta["iou_calibration"] = {
        "scale": float(result["calibration"]["scale"]),
        "bias": float(result["calibration"]["bias"]),
        "form": "sigmoid(scale * logit(clip(iou, 1e-4, 1 - 1e-4)) + bias)",
        "ece_before": cm["ece_before"], "ece_after": cm["ece_after"],
        "mse_before": cm["mse_before"], "mse_after": cm["mse_after"],
        "masks": result["masks"], "fit_on": fit_on,
        "fitted_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds")}
    return meta


def _grid_text(grid: Sequence[float]) -> str:
    return " ".join(f"{v:g}" for v in grid)


def _finite(x: Any) -> Any:
    """JSON-safe: NaN -> None, recursively."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


def run_calibration(source: str, out: Optional[str], fit_samples: Sequence[Sample], fit_on: str,
                    report_samples: Optional[Sequence[Sample]] = None, report_on: str = "",
                    strategy: str = "auto", device: str = "cpu",
                    threads: Optional[int] = None, progress: bool = True,
                    settings: Optional[SegmentSettings] = None) -> Dict[str, Any]:
    """Fit on ``fit_samples``, report on ``report_samples``, write ``out`` (None: write
    nothing). Returns the report (JSON-able)."""
    settings = settings or SegmentSettings()
    if settings.min_mask_region_area:
        raise ValueError("calibrate models the pipeline without small-region clean-up "
                         "(min_mask_region_area 0)")
    loaded = load_model(source)
    # from the module: no recommended thresholds, no calibration: the raw IoU head output
    backend = create_backend("torch", loaded.model, device=device, threads=threads)
    strategy = resolve_strategy(loaded.config, strategy)
    with_ppn = strategy == "autoppn"
    fit_c = cache_candidates(backend, fit_samples, settings, strategy, progress, "fit set")
    result = fit(fit_c, settings, with_ppn)
    cal = result["calibration"]
    old_th = recommended_thresholds(loaded.metadata)
    old_cal = iou_calibration(loaded.metadata)
    rows: List[Tuple[str, Mapping[str, float], Mapping[str, float]]] = [
        ("no filter", {}, {}),
        ("SAM's defaults 0.88 / 0.95, raw IoU", SAM_DEFAULTS, {}),
    ]
    if old_th:
        rows.append(("the checkpoint's previous thresholds", old_th, old_cal))
    rows += [("fitted, calibrated IoU", result["thresholds"], cal),
             ("SAM's defaults 0.88 / 0.95, calibrated IoU", SAM_DEFAULTS, cal)]
    report: Dict[str, Any] = {
        "checkpoint": str(source), "strategy": strategy,
        "settings": {k: getattr(settings, k) for k in
                     ("box_nms_thresh", "max_instances", "mask_threshold", "stability_offset",
                      "ppn_nms_thresh", "multimask")},
        "grids": {"pred_iou_thresh": _grid_text(IOU_GRID),
                  "stability_score_thresh": _grid_text(STABILITY_GRID),
                  **({"ppn_score_thresh": _grid_text(PPN_GRID)} if with_ppn else {})},
        "fit": {"data": fit_on, **{k: v for k, v in result.items() if k != "f1"},
                "f1_fitted": result["f1"],
                "table": compare(fit_c, settings, rows, cal)["f1"]},
    }
    if report_samples is not None:
        rep_c = cache_candidates(backend, report_samples, settings, strategy, progress,
                                 "report set")
        best, best_row = search_thresholds(rep_c, cal, settings, with_ppn)
        report["report"] = {"data": report_on,
                            **compare(rep_c, settings, rows, cal),
                            "best_on_this_set": {"thresholds": best, **best_row,
                                                 "note": "fitted on the report set itself: "
                                                         "an upper bound, not held out"}}
    if out:
        meta = calibrated_metadata(loaded.metadata, result, fit_on, strategy, settings)
        before = weights_sha256(loaded.model)
        save_checkpoint(loaded.model, out, meta)
        again = load_model(out)
        if weights_sha256(again.model) != before:
            raise RuntimeError(f"{out}: the weights changed on writing")
        report["written"] = {"path": str(out), "weights_sha256": before,
                             "thresholds": again.thresholds,
                             "iou_calibration": again.iou_calibration}
    return _finite(report)


__all__ = ["ImageCandidates", "cache_candidates", "fit_iou_calibration", "apply_calibration",
           "calibration_error", "calibration_metrics", "search_thresholds", "f1_at", "fit",
           "compare", "calibrated_metadata", "run_calibration", "mask_iou"]
