"""SAM mask decoder returning all mask outputs (index 0 single-mask, 1.. multimask).

The 4x upscaling of the image tokens (two 2x2 stride-2 transposed convs) runs channels-last on
the transformer's [P, HW, C] output: a kernel-2 = stride-2 transposed conv is a Linear per input
pixel, so the convs are two matmuls and the feature maps are never transposed; only the small
[P, M, ...] mask tensor is reordered into its [4h, 4w] grid at the end.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .activations import GELU
from .norms import LayerNorm2d
from .transformer import TwoWayTransformer


class MLP(nn.Module):
    """``num_layers`` Linear layers with ReLU between them."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [input_dim] + [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


def transposed_conv2x2(x: torch.Tensor, conv: nn.ConvTranspose2d,
                       column_major: bool = False) -> torch.Tensor:
    """``conv`` (a ConvTranspose2d with kernel 2 = stride 2, no padding) on channels-last
    pixels: x [B, N, C_in] -> [B, N*4, C_out], each input pixel followed by its 4 output
    sub-pixels (ki, kj) in row-major order, or in the order (kj, ki) with ``column_major``.

    The kernels of such a conv do not overlap, so it is one Linear per input pixel:
    out[2i+ki, 2j+kj, o] = sum_c x[i, j, c] * weight[c, o, ki, kj] + bias[o].
    """
    if conv.kernel_size != (2, 2) or conv.stride != (2, 2) or conv.padding != (0, 0) \
            or conv.output_padding != (0, 0) or conv.groups != 1 or conv.dilation != (1, 1):
        raise ValueError("transposed_conv2x2 needs a plain kernel-2 stride-2 ConvTranspose2d")
    order = (3, 2, 1, 0) if column_major else (2, 3, 1, 0)  # -> [k, k, C_out, C_in]
    weight = conv.weight.permute(order).reshape(4 * conv.out_channels, conv.in_channels)
    bias = None if conv.bias is None else conv.bias.repeat(4)
    return F.linear(x, weight, bias).reshape(-1, 4 * x.shape[1], conv.out_channels)


def sub_pixels_to_grid(masks: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """[B, M, h*w*16] in the order of two :func:`transposed_conv2x2` (the first
    ``column_major``) -> [B, M, 4h, 4w].

    That order is (i, j, kj, ki, li, lj): input pixel (i, j), the first conv's sub-pixel
    (ki, kj) column-major, the second's (li, lj) row-major; the output pixel is
    (4i + 2ki + li, 4j + 2kj + lj). So (j, kj) and (ki, li) are adjacent index pairs in both
    orders and the reorder is one 6-D transpose [h, 2w, 4, 2] -> [h, 4, 2w, 2] of the small
    mask tensor.
    """
    m = masks.shape[1]
    masks = masks.reshape(-1, m, h, 2 * w, 4, 2).transpose(3, 4)
    return masks.reshape(-1, m, 4 * h, 4 * w)


class MaskDecoder(nn.Module):
    """Two-way transformer over (IoU token, mask tokens, prompt tokens) and image tokens,
    then hypernetwork dot products with 4x upscaled image tokens."""

    def __init__(self, transformer_dim: int, transformer: TwoWayTransformer,
                 num_multimask_outputs: int = 3, iou_head_depth: int = 3,
                 iou_head_hidden_dim: int = 256) -> None:
        super().__init__()
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        # Two 2x transposed convs: low-res masks are 4x the embedding (config.MASK_UPSCALE).
        # SAM's modules and keys; forward applies them channels-last (upscale_channels_last).
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            GELU(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2,
                               stride=2),
            GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3)
            for _ in range(self.num_mask_tokens))
        self.iou_prediction_head = MLP(transformer_dim, iou_head_hidden_dim, self.num_mask_tokens,
                                       iou_head_depth)

    def forward(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                sparse_prompt_embeddings: torch.Tensor, dense_prompt_embeddings: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """image_embeddings [1 or P,C,E,E]; image_pe [1,C,E,E]; sparse [P,K,C];
        dense broadcastable to the embeddings -> (masks [P,M,4E,4E], iou [P,M])."""
        p = sparse_prompt_embeddings.shape[0]
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        output_tokens = output_tokens.unsqueeze(0).expand(p, -1, -1)
        tokens = torch.cat((output_tokens, sparse_prompt_embeddings), dim=1)

        src = image_embeddings + dense_prompt_embeddings  # stays batch 1: shared by all prompts
        h, w = src.shape[-2:]
        hs, src = self.transformer(src, image_pe, tokens)
        iou_token_out = hs[:, 0, :]
        mask_tokens_out = hs[:, 1:1 + self.num_mask_tokens, :]

        upscaled = self.upscale_channels_last(src)  # [P, HW*16, C/8]
        hyper_in = torch.stack([mlp(mask_tokens_out[:, i, :])
                                for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1)
        masks = sub_pixels_to_grid(hyper_in @ upscaled.transpose(1, 2), h, w)
        iou_pred = self.iou_prediction_head(iou_token_out)
        return masks, iou_pred

    def upscale_channels_last(self, src: torch.Tensor) -> torch.Tensor:
        """``output_upscaling`` on channels-last image tokens: src [B, HW, C] ->
        [B, HW*16, C/8] in the order of :func:`sub_pixels_to_grid`, i.e. the NCHW result
        ``output_upscaling(src as [B, C, h, w])`` with its pixels permuted."""
        up1, norm, act1, up2, act2 = self.output_upscaling
        assert isinstance(up1, nn.ConvTranspose2d) and isinstance(up2, nn.ConvTranspose2d)
        assert isinstance(norm, LayerNorm2d)
        x = transposed_conv2x2(src, up1, column_major=True)  # [B, HW*4, C/4]
        x = act1(F.layer_norm(x, norm.weight.shape, norm.weight, norm.bias, norm.eps))
        return act2(transposed_conv2x2(x, up2))


__all__ = ["MLP", "MaskDecoder", "transposed_conv2x2", "sub_pixels_to_grid"]
