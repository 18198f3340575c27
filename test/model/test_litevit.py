"""LiteViT pieces: MSPM values, block residuals, strides and widths."""
from __future__ import annotations

import torch

from litesam_ros.model import MSPM, LiteViT, LiteViTBlock


def test_mspm_is_weighted_pools_minus_identity() -> None:
    mspm = MSPM(1, kernels=(3, 5))
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 4, 4] = 1.0
    with torch.no_grad():
        out = mspm(x)
        assert torch.allclose(mspm(torch.full((1, 1, 7, 7), 2.0)), torch.zeros(1, 1, 7, 7))
    # centre: 0.5/9 + 0.5/25 - 1; one cell away (inside both windows): 0.5/9 + 0.5/25;
    # two cells away (only the 5x5 window): 0.5/25
    assert torch.isclose(out[0, 0, 4, 4], torch.tensor(0.5 / 9 + 0.5 / 25 - 1))
    assert torch.isclose(out[0, 0, 3, 5], torch.tensor(0.5 / 9 + 0.5 / 25))
    assert torch.isclose(out[0, 0, 2, 4], torch.tensor(0.5 / 25))
    assert out[0, 0, 0, 0] == 0
    # count_include_pad=False: at a corner the 3x3 window averages 4 cells, not 9
    y = torch.zeros(1, 1, 7, 7)
    y[0, 0, 0, 0] = 1.0
    with torch.no_grad():
        corner = mspm(y)[0, 0, 0, 0]
    assert torch.isclose(corner, torch.tensor(0.5 / 4 + 0.5 / 9 - 1))


def test_block_with_zero_layer_scale_is_identity() -> None:
    torch.manual_seed(0)
    block = LiteViTBlock(8, mlp_ratio=2.0, kernels=(3, 5, 7), layer_scale_init=0.0)
    x = torch.randn(2, 8, 6, 6)
    assert torch.equal(block(x), x)
    assert block.mlp.fc1.out_channels == 16
    with torch.no_grad():
        block.layer_scale_1.fill_(1.0)
    assert not torch.allclose(block(x), x)


def test_litevit_strides_and_widths() -> None:
    net = LiteViT(stage_dims=(8, 12, 16, 24), stage_depths=(1, 1, 2, 1),
                  stage_strides=(2, 2, 2, 2), stem_kernel=7, merge_kernel=2)
    assert net(torch.zeros(1, 3, 64, 48)).shape == (1, 24, 4, 3)
    kernels = [m.proj.kernel_size for m in net.merges]  # type: ignore[union-attr]
    assert kernels == [(7, 7), (2, 2), (2, 2), (2, 2)]
    assert [len(s) for s in net.stages] == [1, 1, 2, 1]  # type: ignore[arg-type]
