"""SamModel: an image encoder (+ optional AutoPPN head) and a prompt encoder + mask decoder.

One class serves Lite-SAM and the SAM family. The config says which parts it holds; the module
names (``image_encoder``, ``prompt_encoder``, ``mask_decoder``) and the parts' own key names are
those of the official checkpoints, so their state dicts load without renaming.
Contract (docs/ARCHITECTURE.md): ``encode`` -> (embedding, AutoPPN proposals or None);
``decode`` -> (logits of every mask output, predicted IoU).
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
from torch import nn

from .autoppn import AutoPPN, PPNMaps, PPNProposals
from .config import ModelConfig
from .efficient_sam import EfficientSamMaskDecoder, EfficientSamPromptEncoder, EfficientSamViT
from .litevit import ImageEncoder
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder
from .sam_vit import SamViT
from .tiny_vit import TinyViT
from .transformer import TwoWayTransformer


def build_image_encoder(cfg: ModelConfig) -> nn.Module:
    """The image encoder named by ``cfg.encoder``: [B,3,S,S] -> [B,embed_dim,E,E]."""
    if cfg.encoder == "litevit":
        return ImageEncoder(cfg)
    if cfg.encoder == "sam_vit":
        return SamViT(image_size=cfg.image_size, patch_size=cfg.stage_strides[0],
                      embed_dim=cfg.stage_dims[0], depth=cfg.stage_depths[0],
                      num_heads=cfg.stage_heads[0], mlp_ratio=cfg.mlp_ratio,
                      out_dim=cfg.embed_dim, window_size=cfg.window_sizes[0],
                      global_attn_indexes=cfg.global_attn_indexes)
    if cfg.encoder == "tiny_vit":
        return TinyViT(image_size=cfg.image_size, embed_dims=cfg.stage_dims,
                       depths=cfg.stage_depths, num_heads=cfg.stage_heads,
                       window_sizes=cfg.window_sizes, mlp_ratio=cfg.mlp_ratio,
                       out_dim=cfg.embed_dim)
    if cfg.encoder == "efficient_sam_vit":
        return EfficientSamViT(image_size=cfg.image_size, patch_size=cfg.stage_strides[0],
                               embed_dim=cfg.stage_dims[0], depth=cfg.stage_depths[0],
                               num_heads=cfg.stage_heads[0], mlp_ratio=cfg.mlp_ratio,
                               out_dim=cfg.embed_dim)
    raise ValueError(f"unknown encoder {cfg.encoder!r}")


def build_prompt_decoder(cfg: ModelConfig) -> Tuple[nn.Module, nn.Module]:
    """(prompt encoder, mask decoder) named by ``cfg.decoder``."""
    e, c = cfg.embedding_size, cfg.embed_dim
    if cfg.decoder == "sam":
        return PromptEncoder(c, e, cfg.image_size), MaskDecoder(
            c, TwoWayTransformer(cfg.decoder_depth, c, cfg.decoder_heads, cfg.decoder_mlp_dim,
                                 cfg.attention_downsample_rate),
            num_multimask_outputs=cfg.num_multimask_outputs,
            iou_head_depth=cfg.iou_head_depth, iou_head_hidden_dim=cfg.iou_head_hidden_dim)
    if cfg.decoder == "efficient_sam":
        return EfficientSamPromptEncoder(c, e, cfg.image_size), EfficientSamMaskDecoder(
            transformer_dim=c, depth=cfg.decoder_depth, num_heads=cfg.decoder_heads,
            mlp_dim=cfg.decoder_mlp_dim, num_multimask_outputs=cfg.num_multimask_outputs,
            iou_head_depth=cfg.iou_head_depth, iou_head_hidden_dim=cfg.iou_head_hidden_dim)
    raise ValueError(f"unknown decoder {cfg.decoder!r}")


def pad_prompt_points(point_coords: torch.Tensor, point_labels: torch.Tensor,
                      num_points: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """[P,K,2] / [P,K] padded with label -1 (coords -1) to exactly ``num_points``, or cut.

    EfficientSAM's decoder was trained on a fixed number of tokens and padding tokens are real
    inputs there, so its official code pads every prompt the same way; static shapes too.
    """
    p, k = point_labels.shape
    if k > num_points:
        return point_coords[:, :num_points], point_labels[:, :num_points]
    if k < num_points:
        pad = num_points - k
        point_coords = torch.cat([point_coords, point_coords.new_full((p, pad, 2), -1.0)], 1)
        point_labels = torch.cat([point_labels, point_labels.new_full((p, pad), -1)], 1)
    return point_coords, point_labels


class SamModel(nn.Module):
    """The whole model; see the module docstring for the ``encode``/``decode`` contract."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.image_encoder = build_image_encoder(config)
        self.autoppn: Optional[AutoPPN] = None
        if config.autoppn:
            self.autoppn = AutoPPN(
                in_dim=config.embed_dim, dim=config.ppn_dim, blocks=config.ppn_blocks,
                groups=config.ppn_groups, stride=config.encoder_stride,
                image_size=config.image_size, top_n=config.ppn_top_n,
                min_score=config.ppn_min_score, nms_kernel=config.ppn_nms_kernel,
                mlp_ratio=config.ppn_mlp_ratio, mspm_kernels=config.mspm_kernels,
                layer_scale_init=config.layer_scale_init, offsets=config.ppn_offsets)
        self.prompt_encoder, self.mask_decoder = build_prompt_decoder(config)

    @property
    def has_autoppn(self) -> bool:
        return self.autoppn is not None

    # -- encoder side --------------------------------------------------------------------------
    def _check_images(self, images: torch.Tensor) -> None:
        s = self.config.image_size
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, s, s):
            raise ValueError(f"images must be [B,3,{s},{s}] (normalised, padded), "
                             f"got {list(images.shape)}")

    def _autoppn(self) -> AutoPPN:
        if self.autoppn is None:
            raise ValueError(f"model {self.config.name!r} has no AutoPPN head")
        return self.autoppn

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """images [B,3,S,S] normalised -> embedding [B,C,E,E]."""
        self._check_images(images)
        return self.image_encoder(images)

    def encode_maps(self, images: torch.Tensor) -> Tuple[torch.Tensor, PPNMaps]:
        """Embedding [B,C,E,E] and the raw AutoPPN maps (for training)."""
        emb = self.encode_image(images)
        return emb, self._autoppn()(emb)

    def encode_raw(self, images: torch.Tensor
                   ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(embedding [B,C,E,E], heatmap logits [B,G,E,E], boxes [B,E,E,4] xyxy pixels)."""
        emb, maps = self.encode_maps(images)
        return emb, maps.heatmap_logits, maps.boxes

    def encode(self, images: torch.Tensor) -> Tuple[torch.Tensor, Optional[PPNProposals]]:
        """images [B,3,S,S] normalised -> (embedding [B,C,E,E], PPNProposals with N = top_n,
        or None for a model without an AutoPPN head)."""
        emb = self.encode_image(images)
        if self.autoppn is None:
            return emb, None
        return emb, self.autoppn.propose(self.autoppn(emb))

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, Optional[PPNProposals]]:
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
        if self.config.prompt_points:
            point_coords, point_labels = pad_prompt_points(point_coords, point_labels,
                                                           self.config.prompt_points)
        prompt_encoder: Any = self.prompt_encoder  # PromptEncoder or EfficientSamPromptEncoder
        sparse = prompt_encoder(point_coords, point_labels)
        pe = prompt_encoder.get_dense_pe()
        if self.config.decoder == "efficient_sam":  # no dense (mask) prompt at all
            return self.mask_decoder(image_embeddings, pe, sparse)
        return self.mask_decoder(image_embeddings, pe, sparse, prompt_encoder.dense_embedding())

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


__all__ = ["SamModel", "build_image_encoder", "build_prompt_decoder", "pad_prompt_points"]
