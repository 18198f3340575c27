"""Lite-SAM losses: AutoPPN (hard-mining MSE + smooth-L1 per size group) and SAM mask losses."""
from __future__ import annotations

from typing import Dict, Tuple

import torch
import torch.nn.functional as F

from .. import masks


def hard_mining_mse(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor,
                    neg_ratio: float = 3.0, min_neg: int = 16) -> torch.Tensor:
    """MSE over all positive cells plus the top-k hardest negatives, per size-group channel.

    pred/target [B,G,E,E] (pred = probabilities), valid [B,E,E] (0 = ignored). Positives are
    cells with target > 0; k = max(neg_ratio * #pos, min_neg) per image and group. Returns the sum
    over groups of each group's mean loss (each group has its own loss).
    """
    B, G = pred.shape[:2]
    err = ((pred - target) ** 2).reshape(B, G, -1)
    v = (valid.reshape(B, 1, -1) > 0).expand_as(err)
    pos = (target.reshape(B, G, -1) > 0) & v
    neg = (~pos) & v
    n_pos, n_neg = pos.sum(-1), neg.sum(-1)  # [B,G]
    # k per image and group, as tensors: no boolean indexing, so no host sync per (b, g)
    k = torch.minimum((neg_ratio * n_pos).floor().long().clamp(min=min_neg), n_neg)
    hardest = torch.where(neg, err, float("-inf")).sort(-1, descending=True).values
    top = torch.arange(err.shape[-1], device=err.device) < k[..., None]
    picked = torch.where(pos, err, 0.0).sum(-1) + torch.where(top, hardest, 0.0).sum(-1)
    count = (n_pos + k).sum(0)  # [G]
    per_group = picked.sum(0) / count.clamp(min=1)
    return torch.where(count > 0, per_group, 0.0).sum()


def box_regression_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                        norm: float) -> torch.Tensor:
    """Smooth-L1 on xyxy boxes at weighted cells; pred/target [B,E,E,4] pixels, weight [B,E,E]."""
    w = weight.unsqueeze(-1)
    n = weight.sum().clamp(min=1.0)
    l = F.smooth_l1_loss(pred / norm, target / norm, reduction="none", beta=1.0 / 9)
    return (l * w).sum() / (4 * n)


def offset_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                beta: float = 0.05) -> torch.Tensor:
    """Smooth-L1 on sub-cell offsets at positive cells, per size group.

    pred/target [B,G,E,E,2] (x, y) fractions of the cell in (0, 1); weight [B,G,E,E] (the
    heatmap target at positive, valid cells, 0 elsewhere). Returns the sum over groups of each
    group's weighted mean (each group has its own loss, as the point loss): the small group's
    few cells count as much as the large group's hundreds. ``beta`` 0.05 of a cell is 0.8 px at
    stride 16: L1 beyond, so far-off cells do not dominate.
    """
    per = F.smooth_l1_loss(pred, target, reduction="none", beta=beta).sum(-1)  # [B,G,E,E]
    w = weight.to(per.dtype)
    num = (per * w).sum(dim=(0, 2, 3))
    den = w.sum(dim=(0, 2, 3))
    has = den > 0
    return torch.where(has, num / den.clamp(min=1e-6), torch.zeros_like(num)).sum()


def sigmoid_focal(logits: torch.Tensor, gt: torch.Tensor, alpha: float = 0.25,
                  gamma: float = 2.0) -> torch.Tensor:
    """Per-mask focal loss (mean over pixels); logits/gt [P,M,H,W] -> [P,M]."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, gt, reduction="none")
    pt = p * gt + (1 - p) * (1 - gt)
    loss = ce * (1 - pt) ** gamma
    loss = loss * (alpha * gt + (1 - alpha) * (1 - gt))
    return loss.flatten(2).mean(-1)


def dice(logits: torch.Tensor, gt: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Per-mask dice loss; logits/gt [P,M,H,W] -> [P,M]."""
    p = torch.sigmoid(logits).flatten(2)
    g = gt.flatten(2)
    return 1 - (2 * (p * g).sum(-1) + eps) / (p.sum(-1) + g.sum(-1) + eps)


def mask_iou(logits: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """IoU of (logits > 0) with gt, [P,M,H,W] -> [P,M] (no gradient)."""
    with torch.no_grad():
        return masks.mask_iou(logits > 0, gt > 0.5, empty=1.0)


def mask_losses(logits: torch.Tensor, iou_pred: torch.Tensor, gt: torch.Tensor,
                multimask: torch.Tensor, focal_w: float = 20.0, dice_w: float = 1.0,
                iou_w: float = 1.0, bce_w: float = 0.0
                ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    """SAM mask loss: focal:dice = 20:1 plus MSE(predicted IoU, actual IoU).

    ``bce_w`` adds plain per-pixel binary cross-entropy (not in SAM): from scratch it gives the
    masks a strong, balanced gradient while focal's alpha=0.25 favours all-background logits.

    logits [P,1+M,H,W] (index 0 single-mask, 1.. multimask), iou_pred [P,1+M], gt [P,H,W] float,
    multimask [P] bool: for those prompts (ambiguous points) the best multimask output also gets
    the loss (min over outputs, as SAM); the single-mask output is trained for every prompt.
    The IoU head is trained on every output.
    """
    g = gt.unsqueeze(1).expand_as(logits)
    fl = sigmoid_focal(logits, g)
    dl = dice(logits, g)
    per = focal_w * fl + dice_w * dl  # [P,1+M]
    if bce_w:
        per = per + bce_w * F.binary_cross_entropy_with_logits(
            logits, g, reduction="none").flatten(2).mean(-1)
    single = per[:, 0]
    if logits.shape[1] > 1:
        best = per[:, 1:].min(dim=1).values
        loss_mask = (single + torch.where(multimask, best, torch.zeros_like(best))).mean()
    else:
        loss_mask = single.mean()
    true_iou = mask_iou(logits, g)
    loss_iou = ((iou_pred - true_iou) ** 2).mean()  # every output, so selection by IoU works
    total = loss_mask + iou_w * loss_iou
    return total, {"mask": loss_mask.detach(), "iou": loss_iou.detach(),
                   "focal": fl[:, 0].mean().detach(), "dice": dl[:, 0].mean().detach(),
                   "train_iou": true_iou[:, 0].mean().detach()}
