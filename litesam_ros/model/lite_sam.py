"""LiteSam: LiteViT image encoder + AutoPPN + SAM prompt encoder and mask decoder."""
from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from .autoppn import AutoPPN, PPNMaps, PPNProposals
from .config import LiteSamConfig
from .litevit import ImageEncoder
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder
from .transformer import TwoWayTransformer


class LiteSam(nn.Module):
    """The whole model; see docs/ARCHITECTURE.md for the ``encode``/``decode`` contract."""

    def __init__(self, config: LiteSamConfig) -> None:
        super().__init__()
        self.config = config
        e = config.embedding_size
        self.image_encoder = ImageEncoder(config)
        self.autoppn = AutoPPN(
            in_dim=config.embed_dim, dim=config.ppn_dim, blocks=config.ppn_blocks,
            groups=config.ppn_groups, stride=config.encoder_stride, image_size=config.image_size,
            top_n=config.ppn_top_n, min_score=config.ppn_min_score,
            nms_kernel=config.ppn_nms_kernel, mlp_ratio=config.mlp_ratio,
            mspm_kernels=config.mspm_kernels, layer_scale_init=config.layer_scale_init)
        self.prompt_encoder = PromptEncoder(config.embed_dim, e, config.image_size)
        self.mask_decoder = MaskDecoder(
            config.embed_dim,
            TwoWayTransformer(config.decoder_depth, config.embed_dim, config.decoder_heads,
                              config.decoder_mlp_dim, config.attention_downsample_rate),
            num_multimask_outputs=config.num_multimask_outputs,
            iou_head_depth=config.iou_head_depth, iou_head_hidden_dim=config.iou_head_hidden_dim)

    # -- encoder side --------------------------------------------------------------------------
    def _check_images(self, images: torch.Tensor) -> None:
        s = self.config.image_size
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, s, s):
            raise ValueError(f"images must be [B,3,{s},{s}] (normalised, padded), "
                             f"got {list(images.shape)}")

    def encode_maps(self, images: torch.Tensor) -> Tuple[torch.Tensor, PPNMaps]:
        """Embedding [B,C,E,E] and the raw AutoPPN maps (for training)."""
        self._check_images(images)
        emb = self.image_encoder(images)
        return emb, self.autoppn(emb)

    def encode_raw(self, images: torch.Tensor
                   ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(embedding [B,C,E,E], heatmap logits [B,G,E,E], boxes [B,E,E,4] xyxy pixels)."""
        emb, maps = self.encode_maps(images)
        return emb, maps.heatmap_logits, maps.boxes

    def encode(self, images: torch.Tensor) -> Tuple[torch.Tensor, PPNProposals]:
        """images [B,3,S,S] normalised -> (embedding [B,C,E,E], PPNProposals with N = top_n)."""
        emb, maps = self.encode_maps(images)
        return emb, self.autoppn.propose(maps)

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, PPNProposals]:
        """Same as :meth:`encode`."""
        return self.encode(images)

    # -- decoder side --------------------------------------------------------------------------
    def decode(self, image_embeddings: torch.Tensor, point_coords: torch.Tensor,
               point_labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Masks for P prompts against one embedding.

        image_embeddings [1,C,E,E] (shared by every prompt by broadcasting; [P,C,E,E] is also
        accepted), point_coords [P,K,2] input-frame pixels, point_labels [P,K] in {1,0,2,3,-1}.
        Returns logits [P, 1 + num_multimask, L, L] (0 = single-mask output) and iou [P, 1 + m].
        """
        c, e = self.config.embed_dim, self.config.embedding_size
        if image_embeddings.dim() != 4 or tuple(image_embeddings.shape[1:]) != (c, e, e):
            raise ValueError(f"image_embeddings must be [1,{c},{e},{e}], "
                             f"got {list(image_embeddings.shape)}")
        if point_coords.dim() != 3 or point_coords.shape[-1] != 2:
            raise ValueError(f"point_coords must be [P,K,2], got {list(point_coords.shape)}")
        if tuple(point_labels.shape) != tuple(point_coords.shape[:2]):
            raise ValueError(f"point_labels must be [P,K] = {list(point_coords.shape[:2])}, "
                             f"got {list(point_labels.shape)}")
        if image_embeddings.shape[0] not in (1, point_coords.shape[0]):
            raise ValueError("image_embeddings must have batch 1 (or one per prompt), got "
                             f"{image_embeddings.shape[0]} for {point_coords.shape[0]} prompts")
        sparse = self.prompt_encoder(point_coords, point_labels)
        return self.mask_decoder(image_embeddings, self.prompt_encoder.get_dense_pe(), sparse,
                                 self.prompt_encoder.dense_embedding())

    def decode_chunked(self, image_embeddings: torch.Tensor, point_coords: torch.Tensor,
                       point_labels: torch.Tensor, chunk_size: int = 64
                       ) -> Tuple[torch.Tensor, torch.Tensor]:
        """:meth:`decode` over chunks of at most ``chunk_size`` prompts, concatenated."""
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        p = point_coords.shape[0]
        if p <= chunk_size:
            return self.decode(image_embeddings, point_coords, point_labels)
        per_prompt = image_embeddings.shape[0] != 1
        logits, ious = [], []
        for i in range(0, p, chunk_size):
            emb = image_embeddings[i:i + chunk_size] if per_prompt else image_embeddings
            lg, io = self.decode(emb, point_coords[i:i + chunk_size],
                                 point_labels[i:i + chunk_size])
            logits.append(lg)
            ious.append(io)
        return torch.cat(logits), torch.cat(ious)


__all__ = ["LiteSam"]
