"""The mask decoder's image/token cross-attentions, reassociated for inference: same numbers,
fewer multiply-adds.

Between T prompt tokens (5 output tokens + the prompt's points, 7 for a box) and N = E*E image
tokens, SAM's attention projects every image token to the internal width (C -> C/2, twice per
attention: 2*N*C*C/2 MACs). With h heads and h*T < C/2 the projections can move onto the tokens
instead, where each head's T rows meet the C-wide image tokens once (h*T*N*C per product):

- token -> image (queries are tokens): scores_h = (q_h Wk_h) x^T (the key bias adds the same value
  to a query's every score and cancels in the softmax), and softmax(scores_h) (x Wv_h^T + bv_h) =
  (softmax(scores_h) x) Wv_h^T + bv_h (a softmax row sums to 1).
- image -> token (queries are image tokens): scores_h = x (Wq_h^T k_h^T) + bq_h k_h^T, and the
  output projection applied per head to the T values first: out = sum_h softmax(scores_h)
  (v_h Wo_h^T) + bo.

At r320 (N = 400, C = 256, h = 8, T = 7) each image-sized projection pair costs 11.5 M MACs
instead of 26.2 M, and no image-sized tensor is split into heads or transposed. Only the export
uses it (:func:`fold_decoder_attention`); training keeps SAM's modules and checkpoint keys.
"""
from __future__ import annotations

import copy
import math
from typing import Type, TypeVar

import torch
from torch import nn

from .transformer import Attention, TwoWayAttentionBlock, TwoWayTransformer


class _FoldedAttention(nn.Module):
    """Shared parts: the original projections, viewed per head."""

    def __init__(self, attention: Attention) -> None:
        super().__init__()
        self.num_heads, self.head_dim = attention.num_heads, attention.head_dim
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.q_proj, self.k_proj = attention.q_proj, attention.k_proj
        self.v_proj, self.out_proj = attention.v_proj, attention.out_proj

    def _heads(self, linear: nn.Linear) -> torch.Tensor:
        """A projection's weight [h*d, C] as [h, d, C]."""
        return linear.weight.reshape(self.num_heads, self.head_dim, -1)


class TokenToImageAttention(_FoldedAttention):
    """``Attention(q=tokens [B1,T,C], k=image [B2,N,C], v=image)``, reassociated (module doc)."""

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        h, d = self.num_heads, self.head_dim
        t = q.shape[1]
        qh = self.q_proj(q).unflatten(-1, (h, d)).transpose(1, 2)  # [B1,h,T,d]
        a = (qh * self.scale) @ self._heads(self.k_proj)  # [B1,h,T,C]: queries in image space
        attn = torch.softmax(a.flatten(1, 2) @ k.transpose(1, 2), dim=-1)  # [B,hT,N]
        g = (attn @ v).unflatten(1, (h, t))  # [B,h,T,C]: attention-weighted image tokens
        out = g @ self._heads(self.v_proj).transpose(1, 2)  # [B,h,T,d]
        out = out + self.v_proj.bias.reshape(h, 1, d)
        return self.out_proj(out.transpose(1, 2).flatten(2))


class ImageToTokenAttention(_FoldedAttention):
    """``Attention(q=image [B1,N,C], k=tokens [B2,T,C], v=tokens)``, reassociated (module doc)."""

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        h, d = self.num_heads, self.head_dim
        kh = self.k_proj(k).unflatten(-1, (h, d)).permute(0, 2, 3, 1) * self.scale  # [B2,h,d,T]
        keys = self._heads(self.q_proj).transpose(1, 2) @ kh  # [B2,h,C,T]: keys in image space
        keys = keys.permute(0, 2, 1, 3).flatten(2)  # [B2,C,hT]
        bias = (self.q_proj.bias.reshape(1, h, 1, d) @ kh).flatten(1)  # [B2,hT]
        scores = q @ keys + bias.unsqueeze(1)  # [B,N,hT]
        attn = torch.softmax(scores.unflatten(-1, (h, -1)), dim=-1).flatten(2)
        vh = self.v_proj(v).unflatten(-1, (h, d)).transpose(1, 2)  # [B2,h,T,d]
        wo = self.out_proj.weight.reshape(-1, h, d).permute(1, 2, 0)  # [h,d,C]
        values = (vh @ wo).flatten(1, 2)  # [B2,hT,C]: each head's values, output-projected
        return attn @ values + self.out_proj.bias


ModuleT = TypeVar("ModuleT", bound=nn.Module)


def fold_decoder_attention(module: ModuleT, first_layer: bool = True) -> ModuleT:
    """A copy of ``module`` whose two-way transformers' cross-attentions are the reassociated
    ones above (``module`` itself when it has no TwoWayTransformer). The ONNX export uses it.

    ``first_layer=False`` keeps SAM's form for the first layer's token -> image attention,
    whose keys are the image embedding alone: its projections then run once per call (26 M
    MACs at r320) instead of 11.5 M per prompt. Fewer MACs from 3 prompts on, but measured in
    ONNX Runtime (benchmarks/bench_decoder_graph.py, r320, 2 threads, two runs) folding all is
    1.07-1.16x faster for one prompt (a prompt request), 0.97-1.09x for 4 and 0.94-1.00x for
    16-64 (a segment-everything frame, where decode is a third of the time): all are folded."""
    if not any(isinstance(m, TwoWayTransformer) for m in module.modules()):
        return module
    folded = copy.deepcopy(module)
    for m in list(folded.modules()):
        if isinstance(m, TwoWayTransformer):
            _swap(m, "final_attn_token_to_image", TokenToImageAttention)
            for i, layer in enumerate(m.layers):
                assert isinstance(layer, TwoWayAttentionBlock)
                if i or first_layer:
                    _swap(layer, "cross_attn_token_to_image", TokenToImageAttention)
                _swap(layer, "cross_attn_image_to_token", ImageToTokenAttention)
    return folded


def _swap(parent: nn.Module, name: str, folded: Type[_FoldedAttention]) -> None:
    """parent.<name> (an Attention) -> ``folded`` built from it (sharing its projections)."""
    setattr(parent, name, folded(getattr(parent, name)))


__all__ = ["TokenToImageAttention", "ImageToTokenAttention", "fold_decoder_attention"]
