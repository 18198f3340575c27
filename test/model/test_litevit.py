"""LiteViT pieces: MSPM values, block residuals, strides and widths."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from litesam_ros.model import MSPM, LiteViT, LiteViTBlock
from litesam_ros.model.litevit import FoldedLiteViTBlock, fold_for_inference
from litesam_ros.model.mspm import average_pools


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


def _randomised_block(dim: int, seed: int) -> LiteViTBlock:
    """A block whose norm affines, branch weights and layer scales are all non-trivial."""
    g = torch.Generator().manual_seed(seed)
    block = LiteViTBlock(dim, mlp_ratio=2.0, kernels=(3, 5, 7), layer_scale_init=1e-5)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5 + (1.0 if p.dim() == 1 else 0.0))
    return block.eval()


def test_separable_pools_are_the_2d_pools() -> None:
    # every size includes maps smaller than the kernel, where the window count is clipped
    g = torch.Generator().manual_seed(0)
    for h, w in [(9, 9), (5, 7), (3, 11), (2, 2), (20, 13)]:
        x = torch.randn(2, 3, h, w, generator=g)
        for k, pooled in zip((3, 5, 7), average_pools(x, (3, 5, 7), separable=True)):
            want = F.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=False)
            torch.testing.assert_close(pooled, want, atol=1e-6, rtol=1e-6)


def test_folded_block_matches_block() -> None:
    for seed, (h, w) in enumerate([(8, 8), (5, 9), (20, 20)]):
        block = _randomised_block(16, seed)
        x = torch.randn(2, 16, h, w, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            want, got = block(x), FoldedLiteViTBlock(block)(x)
        assert float((got - want).norm() / want.norm()) < 1e-6
        # the residual branches are not negligible here, so a wrong fold shows
        assert float((want - x).norm() / x.norm()) > 0.1


def test_fold_for_inference_keeps_the_model_and_its_outputs() -> None:
    from litesam_ros.model import build_model

    model = build_model("lite_sam_r320").eval()
    for block in [m for m in model.modules() if isinstance(m, LiteViTBlock)]:
        with torch.no_grad():
            block.layer_scale_1.fill_(0.7)
            block.layer_scale_2.fill_(0.4)
            block.norm1.bias.fill_(0.3)
            block.norm2.weight.fill_(1.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fold_for_inference(model)
    n_blocks = sum(isinstance(m, LiteViTBlock) for m in model.modules())
    assert n_blocks == sum(isinstance(m, FoldedLiteViTBlock) for m in folded.modules()) > 0
    assert not any(isinstance(m, LiteViTBlock) for m in folded.modules())
    x = torch.randn(1, 3, 320, 320, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        (emb, props), (emb2, props2) = model.encode(x), folded.encode(x)
    assert float((emb2 - emb).norm() / emb.norm()) < 1e-5
    torch.testing.assert_close(props2.scores, props.scores, atol=1e-5, rtol=1e-5)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    plain = LiteViT([8], [1], [4])
    plain_vit = torch.nn.Linear(2, 2)
    assert fold_for_inference(plain_vit) is plain_vit
    assert fold_for_inference(plain) is not plain
