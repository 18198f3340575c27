"""Distillation losses as one ``forward`` each (what DDP wraps): ``encoder_mse`` (MobileSAM),
``sami`` (EfficientSAM) and ``full_kd`` (TinySAM). ``pseudo_labels`` trains with the ordinary
trainer (``training.distill.pseudo_labels``).

The teacher is held outside the module tree (it is frozen and must not be wrapped by DDP).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...masks import mask_iou
from ...model.geometry import Geometry
from ..losses import dice
from .embedding_align import weighted_mse
from .sami import SamiHead, mask_pixels, masked_share

if TYPE_CHECKING:
    from litesam_ros.model import SamModel

RECIPES = ("encoder_mse", "sami", "full_kd", "pseudo_labels")


class EncoderMSE(nn.Module):
    """MobileSAM's decoupled distillation: MSE between the student's and the (aligned)
    teacher's image embeddings."""

    def __init__(self, student: SamModel) -> None:
        super().__init__()
        self.student = student

    def forward(self, images: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                **unused: Any) -> Dict[str, torch.Tensor]:
        emb = self.student.encode_image(images)
        loss = weighted_mse(emb, target, weight)
        return {"loss": loss, "emb_mse": loss.detach()}


class Sami(nn.Module):
    """EfficientSAM's SAMI: reconstruct the teacher's features of masked patches."""

    def __init__(self, student: SamModel, teacher_dim: int, depth: int = 2,
                 heads: int = 4) -> None:
        super().__init__()
        self.student = student
        self.head = SamiHead(student.config.embed_dim, teacher_dim, depth, heads)

    def forward(self, images: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                masked: torch.Tensor, **unused: Any) -> Dict[str, torch.Tensor]:
        e = target.shape[-1]
        feats = self.student.encode_image(mask_pixels(images, masked, e))
        out = self.head(feats, masked.to(images.device))
        loss = weighted_mse(out, target, weight)  # every token, as the paper's loss
        m, v = masked_share(masked, e)
        with torch.no_grad():
            lm = weighted_mse(out, target, weight * m.to(weight.device))
            lv = weighted_mse(out, target, weight * v.to(weight.device))
        return {"loss": loss, "masked_mse": lm, "visible_mse": lv}


class FullKD(nn.Module):
    """TinySAM's full-stage distillation with hard prompt sampling and hard mask weighting.

    Loss = emb_weight * embedding MSE + mask_weight * (soft BCE + dice between the student's and
    the teacher's mask logits, every output) + iou_weight * MSE(student IoU, teacher IoU).
    Prompts: ``candidate_factor * prompts_per_image`` candidates per image (half single points,
    half boxes around the teacher's mask for a point); ``hard_rounds`` times, each candidate gets
    one more point sampled where the student's and the teacher's masks disagree (label = the
    teacher's answer there), so later points move to the hard boundary regions (TinySAM Fig. 2);
    the ``prompts_per_image`` candidates with the largest disagreement (1 - IoU) train, each
    weighted by 1 + its disagreement (normalised to mean 1).
    """

    def __init__(self, student: SamModel, teacher: SamModel, prompts_per_image: int = 8,
                 candidate_factor: int = 4, hard_rounds: int = 2, emb_weight: float = 1.0,
                 mask_weight: float = 1.0, iou_weight: float = 1.0) -> None:
        super().__init__()
        self.student = student
        self._teacher = [teacher]  # not a submodule
        self.p, self.factor, self.rounds = prompts_per_image, candidate_factor, hard_rounds
        self.w_emb, self.w_mask, self.w_iou = emb_weight, mask_weight, iou_weight
        self.gs, self.gt = Geometry.of(student.config), Geometry.of(teacher.config)

    @property
    def teacher(self) -> SamModel:
        return self._teacher[0]

    def _logits(self, model: SamModel, g: Geometry, emb: torch.Tensor, coords: np.ndarray,
                labels: torch.Tensor, hw: Tuple[int, int], cmp_hw: Tuple[int, int]
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Logits [P,M,h,w] in the comparison frame (the image at the student's low-res
        scale) and predicted IoU [P,M], for prompts in original pixels."""
        c = torch.from_numpy(g.coords_to_input(coords, hw)).to(emb.device)
        c = torch.where(labels[..., None] < 0, torch.full_like(c, -1.0), c)
        lg, iou = model.decode(emb, c, labels)
        P, M = lg.shape[:2]
        up = g.upsample_logits(lg.flatten(0, 1), g.input_hw(hw), cmp_hw)
        return up.view(P, M, *cmp_hw), iou

    def _candidates(self, rng: np.random.Generator, hw: Tuple[int, int], emb_t: torch.Tensor,
                    cmp_hw: Tuple[int, int]) -> Tuple[np.ndarray, torch.Tensor]:
        """Coords [n,K,2] (original pixels, numpy) and labels [n,K] (on the teacher's device):
        a point each, the first half boxes around the teacher's mask for it (one host sync
        for all the boxes)."""
        H, W = hw
        n = self.p * self.factor
        K = 2 + self.rounds
        coords = np.zeros((n, K, 2), np.float32)
        labels = torch.full((n, K), -1.0, device=emb_t.device)
        pts = rng.uniform(0, 1, (n, 2)) * np.array([W, H])
        coords[:, 0] = pts
        labels[:, 0] = 1.0
        n_box = n // 2
        if n_box:
            lt, _ = self._logits(self.teacher, self.gt, emb_t, coords[:n_box, :1],
                                 labels[:n_box, :1], hw, cmp_hw)
            x0, y0, x1, y1, count = mask_extents(lt[:, 0] > 0)
            sx, sy = W / cmp_hw[1], H / cmp_hw[0]
            for i in range(n_box):
                if count[i] >= 4:
                    box = [int(x0[i]) * sx, int(y0[i]) * sy, (int(x1[i]) + 1) * sx,
                           (int(y1[i]) + 1) * sy]
                else:
                    s = rng.uniform(0.1, 0.5) * np.array([W, H])
                    box = [*(pts[i] - s / 2), *(pts[i] + s / 2)]
                coords[i, :2] = np.clip(np.array(box).reshape(2, 2), 0, [W, H])
            labels[:n_box, 0] = 2.0
            labels[:n_box, 1] = 3.0
        return coords, labels

    def forward(self, images: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                teacher_emb: List[torch.Tensor], orig_hw: List[Tuple[int, int]],
                rng: np.random.Generator, **unused: Any) -> Dict[str, torch.Tensor]:
        emb = self.student.encode_image(images)
        l_emb = weighted_mse(emb, target, weight)
        mask_terms, iou_terms, agree, gaps = [], [], [], []
        for b in range(images.shape[0]):
            hw = (int(orig_hw[b][0]), int(orig_hw[b][1]))
            cmp_hw = self.gs.low_res_valid_hw(self.gs.input_hw(hw))
            et = teacher_emb[b].to(images.device).float()[None]
            es = emb[b:b + 1]
            with torch.no_grad():
                coords, labels = self._candidates(rng, hw, et, cmp_hw)
                labels = labels.to(images.device)
                for r in range(self.rounds + 1):
                    lt, _ = self._logits(self.teacher, self.gt, et, coords, labels, hw, cmp_hw)
                    ls, _ = self._logits(self.student, self.gs, es.detach(), coords, labels, hw,
                                         cmp_hw)
                    mt, ms = lt[:, 0] > 0, ls[:, 0] > 0
                    if r == self.rounds:
                        break
                    # the disagreement and the teacher's masks to the host at once (1 sync)
                    err, mt_host = torch.stack([mt ^ ms, mt]).cpu().numpy()
                    added = np.full(len(coords), -1.0, np.float32)  # this round's labels
                    for i in range(len(coords)):
                        ys, xs = np.nonzero(err[i])
                        if len(ys) == 0:
                            continue
                        k = int(rng.integers(len(ys)))
                        y, x = int(ys[k]), int(xs[k])
                        coords[i, 2 + r] = ((x + 0.5) * hw[1] / cmp_hw[1],
                                            (y + 0.5) * hw[0] / cmp_hw[0])
                        added[i] = 1.0 if mt_host[i, y, x] else 0.0
                    labels[:, 2 + r] = torch.from_numpy(added).to(labels.device)
                gap = 1.0 - mask_iou(mt, ms, empty=1.0)
                sel = hardest_per_kind(gap, len(gap) // 2, self.p)
                w = 1.0 + gap[sel]
                w = w / w.mean()
                picked = coords[sel.cpu().numpy()]
                t_logits, t_iou = self._logits(self.teacher, self.gt, et, picked, labels[sel],
                                               hw, cmp_hw)
            s_logits, s_iou = self._logits(self.student, self.gs, es, picked, labels[sel], hw,
                                           cmp_hw)
            soft = torch.sigmoid(t_logits)
            bce = F.binary_cross_entropy_with_logits(s_logits, soft, reduction="none")
            per = bce.flatten(2).mean(-1) + dice(s_logits, (t_logits > 0).float())  # [P,M]
            mask_terms.append((per.mean(1) * w).mean())
            iou_terms.append(((s_iou - t_iou) ** 2).mean())
            agree.append(mask_iou(s_logits[:, 0].detach() > 0, t_logits[:, 0] > 0,
                                  empty=1.0).mean())
            gaps.append(gap.mean())
        l_mask = torch.stack(mask_terms).mean()
        l_iou = torch.stack(iou_terms).mean()
        loss = self.w_emb * l_emb + self.w_mask * l_mask + self.w_iou * l_iou
        return {"loss": loss, "emb_mse": l_emb.detach(), "mask": l_mask.detach(),
                "iou": l_iou.detach(), "agree_iou": torch.stack(agree).mean(),
                "candidate_gap": torch.stack(gaps).mean()}


def mask_extents(masks: torch.Tensor) -> Tuple[np.ndarray, ...]:
    """(x0, y0, x1, y1, count) of bool masks [N,h,w] as numpy arrays, read back in one copy:
    the first and last foreground column and row (inclusive; meaningless where count is 0)
    and the foreground pixel count."""
    n, h, w = masks.shape
    rows, cols = masks.any(2), masks.any(1)
    ar_y = torch.arange(h, device=masks.device).expand(n, h)
    ar_x = torch.arange(w, device=masks.device).expand(n, w)
    out = torch.stack([torch.where(cols, ar_x, w).amin(1), torch.where(rows, ar_y, h).amin(1),
                       torch.where(cols, ar_x, -1).amax(1), torch.where(rows, ar_y, -1).amax(1),
                       masks.flatten(1).sum(1)])
    return tuple(out.cpu().numpy())


def hardest_per_kind(gap: torch.Tensor, n_box: int, k: int) -> torch.Tensor:
    """Indices of the ``k`` hardest prompts (largest student-teacher gap), taken from boxes
    (the first ``n_box`` candidates) and points (the rest) in their candidate shares. Picking
    the hardest overall lets one kind crowd out the other: with a trained teacher the points
    are always harder, and 150 steps without boxes made the student forget them (box
    agreement 0.08 -> 0.0004 on the held-out photos)."""
    n = len(gap)
    k = min(k, n)
    k_box = min(n_box, int(round(k * n_box / max(1, n))))
    boxes = torch.argsort(gap[:n_box], descending=True, stable=True)[:k_box]
    points = n_box + torch.argsort(gap[n_box:], descending=True, stable=True)[:k - k_box]
    return torch.cat([boxes, points])


def build_step(recipe: str, student: SamModel, teacher: SamModel, cfg: Any) -> nn.Module:
    """The loss module of a recipe (``cfg``: a DistillConfig)."""
    if recipe == "encoder_mse":
        return EncoderMSE(student)
    if recipe == "sami":
        return Sami(student, teacher.config.embed_dim, cfg.sami_depth, cfg.sami_heads)
    if recipe == "full_kd":
        return FullKD(student, teacher, cfg.prompts_per_image, cfg.candidate_factor,
                      cfg.hard_rounds, cfg.emb_weight, cfg.mask_weight, cfg.iou_weight)
    raise ValueError(f"unknown recipe {recipe!r}; recipes: {list(RECIPES)}")


def aux_module(step: nn.Module) -> Optional[nn.Module]:
    """The module that trains besides the student (SAMI's decoder + head), or None."""
    return getattr(step, "head", None)


__all__ = ["RECIPES", "EncoderMSE", "Sami", "FullKD", "build_step", "aux_module"]
