"""TinyViT-5M: the image encoder of MobileSAM and TinySAM, with SAM's neck.

Our own implementation, computing what MobileSAM's ``mobile_sam.modeling.TinyViT`` computes
(TinySAM ships a byte-identical copy) and with the same state_dict keys and shapes, minus the
ImageNet classifier (``head.*``, ``norm_head.*``), so official ``image_encoder.*`` weights load
with ``strict=True``. Every shape is fixed by ``image_size`` at construction (static window
padding, no data-dependent branches), so it exports to ONNX and builds in TensorRT.

Layout: patch embed (/4) -> MBConv stage -> merge (/2) -> 3 TinyViT stages, merged (/2) and
then (/1) -> neck. MobileSAM changed TinyViT's last patch merging to stride 1 (its code keys
that on ``out_dim in (320, 448, 576)``, which is the last merge for every TinyViT size), so
the output is at S/16, SAM's embedding grid.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .activations import GELU
from .norms import sam_neck

#: Prefixes of official TinyViT keys that the SAM image encoder never uses (ImageNet classifier).
UNUSED_KEY_PREFIXES = ("head.", "norm_head.")


class ConvBN(nn.Sequential):
    """Bias-free conv followed by BatchNorm (keys ``c.*``, ``bn.*``); BN runs on running stats
    once the model is in eval mode."""

    def __init__(self, in_dim: int, out_dim: int, kernel: int = 1, stride: int = 1,
                 groups: int = 1, bn_weight_init: float = 1.0) -> None:
        super().__init__()
        self.c = nn.Conv2d(in_dim, out_dim, kernel, stride, kernel // 2, groups=groups,
                           bias=False)
        self.bn = nn.BatchNorm2d(out_dim)
        nn.init.constant_(self.bn.weight, bn_weight_init)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, 3x3 depthwise, 1x1 project, + x, GELU after the sum."""

    def __init__(self, dim: int, expand_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * expand_ratio)
        self.conv1 = ConvBN(dim, hidden)
        self.conv2 = ConvBN(hidden, hidden, 3, groups=hidden)
        self.conv3 = ConvBN(hidden, dim, bn_weight_init=0.0)
        self.act = GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.conv2(self.act(self.conv1(x))))
        return self.act(x + self.conv3(y))


class PatchEmbed(nn.Module):
    """Two stride-2 3x3 ConvBNs with GELU between: [B,3,S,S] -> [B,dim,S/4,S/4]."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.seq = nn.Sequential(ConvBN(3, dim // 2, 3, 2), GELU(), ConvBN(dim // 2, dim, 3, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x)


class PatchMerging(nn.Module):
    """1x1 conv, 3x3 depthwise conv with ``stride``, 1x1 conv (GELU between), on [B,C,H,W]."""

    def __init__(self, in_dim: int, out_dim: int, stride: int) -> None:
        super().__init__()
        self.conv1 = ConvBN(in_dim, out_dim)
        self.conv2 = ConvBN(out_dim, out_dim, 3, stride, groups=out_dim)
        self.conv3 = ConvBN(out_dim, out_dim)
        self.act = GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.act(self.conv2(self.act(self.conv1(x)))))


class Attention(nn.Module):
    """Pre-norm multi-head self-attention over one ``window x window`` token window, with a
    learned bias per head and per relative offset (|dy|, |dx|) (LeViT-style)."""

    attention_bias_idxs: torch.Tensor

    def __init__(self, dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        # The official enumerates offsets in first-seen order over the window's points; the
        # first point is (0, 0), so offset (dy, dx) gets index dy * window + dx.
        ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
        ys, xs = ys.flatten(), xs.flatten()
        idxs = (ys[:, None] - ys[None]).abs() * window + (xs[:, None] - xs[None]).abs()
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, window * window))
        self.register_buffer("attention_bias_idxs", idxs, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B,N,C] -> [B,N,C], N = window**2."""
        b, n, c = x.shape
        # qkv is laid out per head as (q, k, v), each head_dim wide.
        qkv = self.qkv(self.norm(x)).view(b, n, self.num_heads, 3 * self.head_dim)
        q, k, v = qkv.permute(0, 2, 1, 3).split(self.head_dim, dim=3)
        bias = self.attention_biases[:, self.attention_bias_idxs]
        attn = ((q @ k.transpose(-2, -1)) * self.scale + bias).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    """Pre-norm MLP: LayerNorm -> fc1 -> GELU -> fc2."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


class TinyViTBlock(nn.Module):
    """x + windowed attention(x); depthwise local conv (no residual); x + MLP(x).

    Works on channels-last [B,H,W,C] maps of the fixed ``resolution``. The map is zero-padded
    at bottom/right to whole windows *before* the attention's LayerNorm and the padded tokens
    are not masked (as in the official), so they take part as keys; then cropped back.
    """

    def __init__(self, dim: int, resolution: int, num_heads: int, window: int,
                 mlp_ratio: float, local_conv_size: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.resolution = resolution
        self.window = window
        self.pad = (-resolution) % window
        self.attn = Attention(dim, num_heads, window)
        self.local_conv = ConvBN(dim, dim, local_conv_size, groups=dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def _windowed_attention(self, x: torch.Tensor) -> torch.Tensor:
        b, _, _, c = x.shape
        w, p = self.window, self.pad
        if p:
            x = F.pad(x, (0, 0, 0, p, 0, p))
        n = (self.resolution + p) // w  # windows per side
        x = x.view(b, n, w, n, w, c).transpose(2, 3).reshape(b * n * n, w * w, c)
        x = self.attn(x)
        x = x.view(b, n, n, w, w, c).transpose(2, 3).reshape(b, n * w, n * w, c)
        return x[:, :self.resolution, :self.resolution] if p else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self._windowed_attention(x)
        x = self.local_conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x + self.mlp(x)


class Stage(nn.Module):
    """Blocks then an optional ``downsample`` (keys ``blocks.*``, ``downsample.*``), on and to
    [B,C,H,W]; ``channels_last`` blocks get [B,H,W,C]."""

    def __init__(self, blocks: Sequence[nn.Module], downsample: nn.Module | None,
                 channels_last: bool) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample
        self.channels_last = channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.permute(0, 2, 3, 1)
        for block in self.blocks:
            x = block(x)
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)
        return x if self.downsample is None else self.downsample(x)


class TinyViT(nn.Module):
    """MobileSAM/TinySAM image encoder (defaults: TinyViT-5M at 1024, as ``vit_t``).

    ``image_size`` must be a multiple of 16; any such size works with any window sizes (the
    windows are padded). Call ``.eval()`` for inference (BatchNorm on running stats).
    """

    def __init__(self, image_size: int = 1024, embed_dims: Sequence[int] = (64, 128, 160, 320),
                 depths: Sequence[int] = (2, 2, 6, 2), num_heads: Sequence[int] = (2, 4, 5, 10),
                 window_sizes: Sequence[int] = (7, 7, 14, 7), mlp_ratio: float = 4.0,
                 mbconv_expand_ratio: float = 4.0, local_conv_size: int = 3,
                 out_dim: int = 256) -> None:
        super().__init__()
        if image_size % 16:
            raise ValueError(f"image_size {image_size} is not a multiple of 16")
        if not len(embed_dims) == len(depths) == len(num_heads) == len(window_sizes) == 4:
            raise ValueError("TinyViT has 4 stages: give 4 embed_dims/depths/num_heads/windows")
        self.image_size = image_size
        self.embed_size = image_size // 16
        self.patch_embed = PatchEmbed(embed_dims[0])
        # The merges after stages 0-2 stride 2, 2 and (MobileSAM's change) 1, so the stages run
        # at S/4, S/8, S/16, S/16 and the output is on SAM's S/16 grid.
        merge_strides = (2, 2, 1)
        resolutions = [image_size // 4]
        for stride in merge_strides:
            resolutions.append(resolutions[-1] // stride)
        self.layers = nn.ModuleList()
        for i, (dim, depth, res) in enumerate(zip(embed_dims, depths, resolutions)):
            if i == 0:
                blocks: list[nn.Module] = [MBConv(dim, mbconv_expand_ratio) for _ in range(depth)]
            else:
                blocks = [TinyViTBlock(dim, res, num_heads[i], window_sizes[i], mlp_ratio,
                                       local_conv_size) for _ in range(depth)]
            merge = PatchMerging(dim, embed_dims[i + 1], merge_strides[i]) if i < 3 else None
            self.layers.append(Stage(blocks, merge, channels_last=i > 0))
        self.neck = sam_neck(embed_dims[-1], out_dim)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[B,3,S,S] normalised -> [B,out_dim,S/16,S/16]"""
        if tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(f"expected {self.image_size}x{self.image_size} images, "
                             f"got {tuple(images.shape[-2:])}")
        x = self.patch_embed(images)
        for layer in self.layers:
            x = layer(x)
        return self.neck(x)


__all__ = ["TinyViT", "UNUSED_KEY_PREFIXES"]
