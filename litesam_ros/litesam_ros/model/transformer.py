"""SAM's two-way transformer, written so the image side may have batch 1 against P prompts.

Every op broadcasts over the batch dim: image keys of shape [1, HW, C] are projected once and
shared by all prompts until the first image-to-token attention makes them prompt-specific.
"""
from __future__ import annotations

import math
from typing import Tuple, Type

import torch
from torch import nn


class MLPBlock(nn.Module):
    """Linear -> act -> Linear."""

    def __init__(self, embedding_dim: int, mlp_dim: int, act: Type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.lin1 = nn.Linear(embedding_dim, mlp_dim)
        self.lin2 = nn.Linear(mlp_dim, embedding_dim)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(self.act(self.lin1(x)))


class Attention(nn.Module):
    """Multi-head attention with an optional downscaled internal width (SAM)."""

    def __init__(self, embedding_dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        if self.internal_dim % num_heads:
            raise ValueError("num_heads must divide embedding_dim // downsample_rate")
        self.head_dim = self.internal_dim // num_heads
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.v_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)

    def _separate_heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.num_heads, self.head_dim)).transpose(-3, -2)  # B,h,N,d

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q [B1,Nq,C], k/v [B2,Nk,C] with B1, B2 equal or 1 -> [max(B1,B2),Nq,C]."""
        q = self._separate_heads(self.q_proj(q))
        k = self._separate_heads(self.k_proj(k))
        v = self._separate_heads(self.v_proj(v))
        attn = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)
        out = torch.softmax(attn, dim=-1) @ v
        return self.out_proj(out.transpose(-3, -2).flatten(-2))


class TwoWayAttentionBlock(nn.Module):
    """Self-attn on tokens, token->image, MLP on tokens, image->token (each + LayerNorm)."""

    def __init__(self, embedding_dim: int, num_heads: int, mlp_dim: int,
                 attention_downsample_rate: int = 2, skip_first_layer_pe: bool = False) -> None:
        super().__init__()
        self.self_attn = Attention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(embedding_dim, num_heads,
                                                   attention_downsample_rate)
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = self.make_mlp(embedding_dim, mlp_dim)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(embedding_dim, num_heads,
                                                   attention_downsample_rate)
        self.skip_first_layer_pe = skip_first_layer_pe

    def make_mlp(self, embedding_dim: int, mlp_dim: int) -> nn.Module:
        """The token MLP (a hook for decoder variants with other MLPs, e.g. EfficientSAM's)."""
        return MLPBlock(embedding_dim, mlp_dim, nn.ReLU)

    def attend_tokens(self, queries: torch.Tensor, query_pe: torch.Tensor) -> torch.Tensor:
        """Self-attention on the tokens, before norm1. SAM: the first layer has no residual
        and no PE; the others add the PE to queries and keys only."""
        if self.skip_first_layer_pe:
            return self.self_attn(queries, queries, queries)
        q = queries + query_pe
        return queries + self.self_attn(q, q, queries)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor,
                key_pe: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        queries = self.norm1(self.attend_tokens(queries, query_pe))

        q = queries + query_pe
        k = keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(q, k, keys))
        queries = self.norm3(queries + self.mlp(queries))

        q = queries + query_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(k, q, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    """``depth`` TwoWayAttentionBlocks (or a variant: ``block``) and a final token->image
    attention."""

    def __init__(self, depth: int, embedding_dim: int, num_heads: int, mlp_dim: int,
                 attention_downsample_rate: int = 2,
                 block: Type[TwoWayAttentionBlock] = TwoWayAttentionBlock) -> None:
        super().__init__()
        self.layers = nn.ModuleList([
            block(embedding_dim, num_heads, mlp_dim, attention_downsample_rate,
                  skip_first_layer_pe=(i == 0)) for i in range(depth)])
        self.final_attn_token_to_image = Attention(embedding_dim, num_heads,
                                                   attention_downsample_rate)
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(self, image_embedding: torch.Tensor, image_pe: torch.Tensor,
                point_embedding: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """image_embedding/image_pe [1 or P, C, H, W]; point_embedding [P, T, C].

        Returns (tokens [P,T,C], image tokens [P,HW,C]).
        """
        keys = image_embedding.flatten(2).transpose(1, 2)
        key_pe = image_pe.flatten(2).transpose(1, 2)
        queries = point_embedding
        for layer in self.layers:
            queries, keys = layer(queries, keys, point_embedding, key_pe)
        q = queries + point_embedding
        k = keys + key_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q, k, keys))
        return queries, keys


__all__ = ["MLPBlock", "Attention", "TwoWayAttentionBlock", "TwoWayTransformer"]
