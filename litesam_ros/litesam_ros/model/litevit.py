"""LiteViT image encoder: MetaFormer blocks with the MSPM token mixer, plus the SAM-style neck."""
from __future__ import annotations

import copy
from typing import Optional, Sequence, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from .activations import GELU
from .config import ModelConfig
from .mspm import MSPM, average_pools
from .norms import GroupNorm1, LayerNorm2d


class ConvMlp(nn.Module):
    """Pointwise MLP on a [B,C,H,W] map: conv1x1 -> GELU -> conv1x1."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden_dim, 1)
        self.act = GELU()
        self.fc2 = nn.Conv2d(hidden_dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class LiteViTBlock(nn.Module):
    """x + ls1 * MSPM(norm(x)); x + ls2 * MLP(norm(x)) (PoolFormer block with MSPM)."""

    def __init__(self, dim: int, mlp_ratio: float, kernels: Sequence[int],
                 layer_scale_init: float) -> None:
        super().__init__()
        self.norm1 = GroupNorm1(dim)
        self.token_mixer = MSPM(dim, kernels)
        self.norm2 = GroupNorm1(dim)
        self.mlp = ConvMlp(dim, int(round(dim * mlp_ratio)))
        self.layer_scale_1 = nn.Parameter(torch.full((dim,), float(layer_scale_init)))
        self.layer_scale_2 = nn.Parameter(torch.full((dim,), float(layer_scale_init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.layer_scale_1[:, None, None] * self.token_mixer(self.norm1(x))
        return x + self.layer_scale_2[:, None, None] * self.mlp(self.norm2(x))


class FoldedLiteViTBlock(nn.Module):
    """A LiteViTBlock for inference with its per-channel constants folded away (same numbers up
    to float rounding): norm affines, MSPM branch weights and layer scales become one weight per
    pool and branch, and the second norm's affine and ls2 go into the MLP's 1x1 convs.

    Because pooling a per-channel constant returns it (padding not counted), the mixer branch
    ``ls1 * (sum_k w_k * Pool_k(g*y + b) - (g*y + b))`` is ``sum_k a_k * Pool_k(y) + a_0 * y + c``
    with ``a_k = ls1*g*w_k``, ``a_0 = -ls1*g``, ``c = ls1*(sum_k w_k - 1)*b``. The exported graph
    loses 7 element-wise passes per block; training keeps the unfolded block.

    Each weighted branch is written as a depthwise 1x1 convolution (the identity one with the bias
    ``c``) and the branches are summed before the residual: ONNX Runtime then keeps the whole
    mixer in its blocked (NCHWc) layout and folds the sums into the convolutions, where per-channel
    Muls and Adds made it reorder each pooled branch back to NCHW first (the r320 encoder: 470
    ops with 99 reorders before, 362 with 61; docs/benchmarks.md, "Encoder graph").
    """

    pool_weights: torch.Tensor
    identity_weight: torch.Tensor
    bias: torch.Tensor

    def __init__(self, block: LiteViTBlock) -> None:
        super().__init__()
        mixer = block.token_mixer
        self.kernels = mixer.kernels
        self.eps1, self.eps2 = block.norm1.eps, block.norm2.eps
        with torch.no_grad():
            g1, b1, ls1 = block.norm1.weight, block.norm1.bias, block.layer_scale_1
            pool_weights = ls1 * g1 * mixer.branch_weights
            constant = ls1 * (mixer.branch_weights.sum(0) - 1) * b1
            # depthwise 1x1 conv weights [C, 1, 1, 1] (pool_weights: one per pool) and bias [C]
            self.register_buffer("pool_weights", pool_weights[..., None, None, None])
            self.register_buffer("identity_weight", (-ls1 * g1)[:, None, None, None])
            self.register_buffer("bias", constant)
            g2, b2, ls2 = block.norm2.weight, block.norm2.bias, block.layer_scale_2
            self.fc1, self.fc2 = copy.deepcopy(block.mlp.fc1), copy.deepcopy(block.mlp.fc2)
            self.act = block.mlp.act
            fc1, fc2 = self.fc1, self.fc2
            assert fc1.bias is not None and fc2.bias is not None
            fc1.bias.copy_(fc1.bias + fc1.weight[:, :, 0, 0] @ b2)
            fc1.weight.mul_(g2[None, :, None, None])
            fc2.weight.mul_(ls2[:, None, None, None])
            fc2.bias.mul_(ls2)

    def mix(self, y: torch.Tensor) -> torch.Tensor:
        """The folded mixer branch on the normalised input y (added to x by ``forward``)."""
        channels = y.shape[1]
        mixed: Optional[torch.Tensor] = None
        for w, pooled in zip(self.pool_weights, average_pools(y, self.kernels, separable=True)):
            branch = F.conv2d(pooled, w, groups=channels)
            mixed = branch if mixed is None else mixed + branch
        identity = F.conv2d(y, self.identity_weight, self.bias, groups=channels)
        return identity if mixed is None else mixed + identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.mix(F.layer_norm(x, x.shape[1:], eps=self.eps1))
        hidden = self.fc1(F.layer_norm(x, x.shape[1:], eps=self.eps2))
        return x + self.fc2(self.act(hidden))


ModuleT = TypeVar("ModuleT", bound=nn.Module)


def fold_for_inference(module: ModuleT) -> ModuleT:
    """A copy of ``module`` with every LiteViTBlock (backbone and AutoPPN stem) replaced by its
    FoldedLiteViTBlock; other modules unchanged (``module`` itself when it has no LiteViTBlock,
    so a SAM ViT-H is not copied). The ONNX export uses it."""
    if not any(isinstance(m, LiteViTBlock) for m in module.modules()):
        return module
    folded = copy.deepcopy(module)
    for parent in folded.modules():
        for name, child in list(parent.named_children()):
            if isinstance(child, LiteViTBlock):
                setattr(parent, name, FoldedLiteViTBlock(child))
    return folded


class PatchMerging(nn.Module):
    """Strided conv that downsamples by ``stride`` and changes the width (also the stem)."""

    def __init__(self, in_dim: int, out_dim: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_dim, out_dim, kernel, stride=stride, padding=(kernel - 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class LiteViT(nn.Module):
    """Backbone: stem patch merging, then per stage [patch merging] + LiteViT blocks.

    Returns the last stage's features [B, stage_dims[-1], S/stride, S/stride].
    """

    def __init__(self, stage_dims: Sequence[int], stage_depths: Sequence[int],
                 stage_strides: Sequence[int], mlp_ratio: float = 2.0,
                 mspm_kernels: Sequence[int] = (3, 5, 7), stem_kernel: int = 3,
                 merge_kernel: int = 2, layer_scale_init: float = 1e-5, in_chans: int = 3) -> None:
        super().__init__()
        self.merges = nn.ModuleList()
        self.stages = nn.ModuleList()
        prev = in_chans
        for i, (dim, depth, stride) in enumerate(zip(stage_dims, stage_depths, stage_strides)):
            kernel = stem_kernel if i == 0 else merge_kernel
            self.merges.append(PatchMerging(prev, dim, kernel, stride))
            self.stages.append(nn.Sequential(*[
                LiteViTBlock(dim, mlp_ratio, mspm_kernels, layer_scale_init)
                for _ in range(depth)]))
            prev = dim
        self.out_dim = prev

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for merge, stage in zip(self.merges, self.stages):
            x = stage(merge(x))
        return x


class Neck(nn.Module):
    """conv1x1 (no bias) + LayerNorm2d to the ``embed_dim`` image embedding."""

    def __init__(self, in_dim: int, embed_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_dim, embed_dim, 1, bias=False)
        self.norm = LayerNorm2d(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


class ImageEncoder(nn.Module):
    """LiteViT backbone + neck: [B,3,S,S] normalised images -> [B,embed_dim,E,E]."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.backbone = LiteViT(cfg.stage_dims, cfg.stage_depths, cfg.stage_strides,
                                cfg.mlp_ratio, cfg.mspm_kernels, cfg.stem_kernel,
                                cfg.merge_kernel, cfg.layer_scale_init)
        self.neck = Neck(self.backbone.out_dim, cfg.embed_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.neck(self.backbone(images))


__all__ = ["ConvMlp", "LiteViTBlock", "FoldedLiteViTBlock", "fold_for_inference", "PatchMerging",
           "LiteViT", "Neck", "ImageEncoder"]
