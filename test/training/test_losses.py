"""Loss functions: hard mining, box regression, SAM mask losses."""
import pytest
import torch

from litesam_ros.training.losses import (box_regression_loss, dice, hard_mining_mse,
                                         mask_losses, sigmoid_focal)


def test_hard_mining_uses_positives_and_hardest_negatives():
    target = torch.zeros(1, 3, 4, 4)
    target[0, 1, 0, 0] = 1.0
    pred = torch.zeros(1, 3, 4, 4)
    pred[0, 1, 0, 0] = 0.5          # positive error 0.25
    pred[0, 1, 3, 3] = 0.9          # hardest negative 0.81
    pred[0, 1, 2, 2] = 0.1          # easy negative 0.01
    valid = torch.ones(1, 4, 4)
    # k = max(3 * 1, min_neg=1) = 3 negatives: 0.81, 0.01, 0 -> mean over 4 cells
    loss = hard_mining_mse(pred, target, valid, neg_ratio=3, min_neg=1)
    assert loss.item() == pytest.approx((0.25 + 0.81 + 0.01) / 4, rel=1e-5)
    # ignoring the hard negative's cell removes it from the loss
    valid[0, 3, 3] = 0
    loss2 = hard_mining_mse(pred, target, valid, neg_ratio=3, min_neg=1)
    assert loss2.item() == pytest.approx((0.25 + 0.01) / 4, rel=1e-5)
    # groups with no positives still learn from their hardest negatives
    pred0 = torch.zeros(1, 3, 4, 4)
    pred0[0, 0, 1, 1] = 1.0
    assert hard_mining_mse(pred0, torch.zeros(1, 3, 4, 4), torch.ones(1, 4, 4),
                           min_neg=2).item() == pytest.approx(0.5)


def test_box_loss_only_at_weighted_cells():
    pred = torch.zeros(1, 2, 2, 4)
    tgt = torch.zeros(1, 2, 2, 4)
    tgt[0, 1, 1] = 32.0
    w = torch.zeros(1, 2, 2)
    assert box_regression_loss(pred, tgt, w, 32.0).item() == 0.0
    w[0, 1, 1] = 1
    l1 = box_regression_loss(pred, tgt, w, 32.0).item()
    assert l1 == pytest.approx(1.0 - 0.5 / 9, rel=1e-5)  # smooth-L1(1, beta=1/9)


def test_mask_losses_prefer_correct_masks():
    gt = torch.zeros(2, 16, 16)
    gt[:, 4:12, 4:12] = 1
    good = (gt * 20 - 10).unsqueeze(1).repeat(1, 4, 1, 1)
    bad = -good
    assert dice(good, gt[:, None].expand_as(good)).max() < 0.01
    assert sigmoid_focal(bad, gt[:, None].expand_as(bad)).min() > 1.0
    iou_pred = torch.ones(2, 4)
    lg, info = mask_losses(good, iou_pred, gt, torch.tensor([True, False]))
    lb, _ = mask_losses(bad, iou_pred, gt, torch.tensor([True, False]))
    assert lg.item() < 0.05 and lb.item() > 10
    assert info["train_iou"].item() == pytest.approx(1.0)
    # predicted IoU 0 on perfect masks costs exactly 1 (MSE)
    _, info0 = mask_losses(good, torch.zeros(2, 4), gt, torch.tensor([False, False]))
    assert info0["iou"].item() == pytest.approx(1.0)


def test_bce_weight_adds_plain_bce_to_every_output():
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 8, 8)
    gt = (torch.rand(3, 8, 8) > 0.5).float()
    multi = torch.tensor([False, False, False])
    iou = torch.zeros(3, 4)
    base, _ = mask_losses(logits, iou, gt, multi, focal_w=0.0, dice_w=1.0)
    with_bce, _ = mask_losses(logits, iou, gt, multi, focal_w=0.0, dice_w=1.0, bce_w=2.0)
    # no multimask prompts: only output 0 enters the mask loss
    expected = 2.0 * torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], gt)
    assert (with_bce - base).item() == pytest.approx(expected.item(), rel=1e-5)
