"""SAM prompt encoder (points and boxes as labelled points; no mask input).

Labels follow SAM: 1 foreground point, 0 background point, 2 box top-left, 3 box bottom-right,
-1 padding (its coordinates are ignored). ``decode`` callers pad prompts to a fixed K with -1.
"""
from __future__ import annotations

import math
import typing

import torch
from torch import nn

# Label -1..3 -> row of the label table: not-a-point, background, foreground, corner 1, corner 2.
_NUM_POINT_EMBEDDINGS = 4


class PositionEmbeddingRandom(nn.Module):
    """Random Fourier features of normalised (x, y) coordinates (SAM)."""

    positional_encoding_gaussian_matrix: torch.Tensor

    def __init__(self, num_pos_feats: int, scale: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix",
                             scale * torch.randn((2, num_pos_feats)))

    def encode(self, coords: torch.Tensor) -> torch.Tensor:
        """coords [..., 2] in [0, 1] -> [..., 2 * num_pos_feats]."""
        coords = (2 * coords - 1) @ self.positional_encoding_gaussian_matrix
        coords = 2 * math.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def grid(self, size: int) -> torch.Tensor:
        """Dense encoding of a size x size grid of cell centres -> [C, size, size]."""
        g = self.positional_encoding_gaussian_matrix
        c = (torch.arange(size, device=g.device, dtype=g.dtype) + 0.5) / size
        xy = torch.stack((c.view(1, size).expand(size, size), c.view(size, 1).expand(size, size)),
                         dim=-1)
        return self.encode(xy).permute(2, 0, 1)


class PromptEncoder(nn.Module):
    """Sparse point/box embeddings and the dense (no-mask) embedding of SAM."""

    def __init__(self, embed_dim: int, embedding_size: int, input_size: int) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.embedding_size = embedding_size
        self.input_size = input_size
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        self.point_embeddings = nn.ModuleList(
            [nn.Embedding(1, embed_dim) for _ in range(_NUM_POINT_EMBEDDINGS)])
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def get_dense_pe(self) -> torch.Tensor:
        """Positional encoding of the image embedding grid, [1, C, E, E]."""
        return self.pe_layer.grid(self.embedding_size).unsqueeze(0)

    def dense_embedding(self) -> torch.Tensor:
        """The no-mask dense embedding, [1, C, 1, 1] (broadcasts over the grid)."""
        return self.no_mask_embed.weight.reshape(1, -1, 1, 1)

    def forward(self, point_coords: torch.Tensor, point_labels: torch.Tensor) -> torch.Tensor:
        """coords [P,K,2] input-frame pixels, labels [P,K] (float or int) -> [P,K,C]."""
        coords = (point_coords.to(self.no_mask_embed.weight.dtype) + 0.5) / self.input_size
        pe = self.pe_layer.encode(coords)
        labels = point_labels.to(torch.int64)
        table = torch.cat([self.not_a_point_embed.weight] +
                          [typing.cast(nn.Embedding, e).weight for e in self.point_embeddings],
                          dim=0)  # [5, C]
        # a clamp written as two Wheres: the exporter turns clamp and Min/Max into Clip,
        # which TensorRT's ONNX parser takes on floats only (trt_graph_rules)
        index = labels + 1
        index = torch.where(index < 0, torch.zeros_like(index), index)
        index = torch.where(index > _NUM_POINT_EMBEDDINGS,
                            torch.full_like(index, _NUM_POINT_EMBEDDINGS), index)
        is_point = (labels != -1).unsqueeze(-1).to(pe.dtype)
        return pe * is_point + table[index]


__all__ = ["PositionEmbeddingRandom", "PromptEncoder"]
