"""Export a SamModel to two ONNX graphs: encoder (+AutoPPN proposals) and prompt decoder.

encoder: image [1,3,S,S] -> embeddings [1,C,E,E], points [1,N,2], scores [1,N], groups [1,N],
         boxes [1,N,4] (static shapes); a model without an AutoPPN head: embeddings only.
         With dynamic_batch (a separate file, encoder_graph_name): batch B dynamic on the input
         and every output, all other dims static (several cameras' frames in one run).
decoder: image_embeddings [1,C,E,E], point_coords [P,K,2], point_labels [P,K] (P and K dynamic;
         K static for a model with a fixed point count, EfficientSAM's 6)
         -> low_res_logits [P,M,L,L], iou_predictions [P,M].
Opset >= 17 so LayerNorm is one LayerNormalization op (TensorRT keeps it accurate in FP16); no
image-size shape tensors: upsampling and cropping happen outside the graphs. The encoder is
exported from ``fold_for_inference(model)`` (LiteViT blocks with their constants folded), the
decoder from ``fold_decoder_attention(model)`` (cross-attentions reassociated onto the prompt
tokens): the same numbers with fewer operations.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np
import onnx
import torch
from torch import nn

from ..model.attention_fold import fold_decoder_attention
from ..model.litevit import fold_for_inference
from .base import (DECODER_INPUTS, DECODER_OUTPUTS, ENCODER_INPUTS, GRAPH_PARTS,
                   encoder_outputs)

if TYPE_CHECKING:
    from ..model import SamModel

log = logging.getLogger(__name__)

DEFAULT_OPSET = 18
#: Version of what the export writes; part of the cache folder name, so a change to the exported
#: graphs (2: folded LiteViT blocks, separable pools; 3: reassociated decoder cross-attentions;
#: 4: LiteViT mixer branches as depthwise convs; 5: AutoPPN indices by integer division and the
#: prompt-label clamp as Wheres, for TensorRT) replaces graphs cached by older versions.
GRAPH_FORMAT = 5
#: The name of the encoder graph's dynamic batch axis.
BATCH_AXIS = "batch"


def encoder_graph_name(dynamic_batch: bool = False) -> str:
    """File name of the exported encoder graph: the static batch-1 one, or the dynamic-batch
    one (both can sit side by side in a cache folder)."""
    return "encoder-dynbatch.onnx" if dynamic_batch else "encoder.onnx"


class EncoderGraph(nn.Module):
    """image -> (embeddings, points, scores, groups, boxes), or (embeddings,) without AutoPPN."""

    def __init__(self, model: "SamModel") -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        emb, props = self.model.encode(image)
        if props is None:
            return (emb,)
        return emb, props.points, props.scores, props.groups, props.boxes


class DecoderGraph(nn.Module):
    """(image_embeddings, point_coords, point_labels) -> (low_res_logits, iou_predictions)."""

    def __init__(self, model: "SamModel") -> None:
        super().__init__()
        self.model = model

    def forward(self, image_embeddings: torch.Tensor, point_coords: torch.Tensor,
                point_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, iou = self.model.decode(image_embeddings, point_coords, point_labels)
        return logits, iou


@dataclass(frozen=True)
class ExportedGraphs:
    """Paths of the two exported graphs."""

    encoder: Path
    decoder: Path


def _example_prompts(image_size: int, p: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    coords = torch.rand(p, k, 2, generator=g) * image_size
    labels = torch.ones(p, k)
    labels[:, -1] = -1.0
    return coords, labels


def _export(module: nn.Module, args: tuple[torch.Tensor, ...], path: Path,
            input_names: tuple[str, ...], output_names: tuple[str, ...],
            dynamic: Optional[dict[str, dict[int, str]]], opset: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            dynamic_shapes = None
            if dynamic:
                dims = {n: torch.export.Dim(n, min=1, max=4096) for d in dynamic.values()
                        for n in d.values()}
                dynamic_shapes = tuple({ax: dims[n] for ax, n in dynamic[name].items()}
                                       if name in dynamic else None for name in input_names)
            prog = torch.onnx.export(module, args, dynamo=True, input_names=list(input_names),
                                     output_names=list(output_names), opset_version=opset,
                                     dynamic_shapes=dynamic_shapes, optimize=True,
                                     external_data=False)
            assert prog is not None
            # None: weights inline, or in path.data beside the graph when they pass
            # protobuf's 2 GB limit (SAM ViT-H); ONNX Runtime and TensorRT load either.
            prog.save(str(path), external_data=None)
        except Exception as exc:  # noqa: BLE001 - fall back to the TorchScript exporter
            # The dynamo exporter is preferred; the legacy exporter is kept as a fallback for
            # torch versions / graphs where torch.export cannot trace (it is deprecated).
            log.warning("dynamo ONNX export failed (%s); using dynamo=False", exc)
            torch.onnx.export(module, args, str(path), dynamo=False,
                              input_names=list(input_names), output_names=list(output_names),
                              opset_version=opset, dynamic_axes=dynamic or None,
                              do_constant_folding=True)
    onnx.checker.check_model(str(path), full_check=True)  # by path: works past 2 GB too


def export_encoder(model: "SamModel", path: Union[str, Path], opset: int = DEFAULT_OPSET,
                   dynamic_batch: bool = False) -> Path:
    """Export the encoder(+AutoPPN) graph with a static [1,3,S,S] input, or with dynamic_batch
    a [B,3,S,S] input and batch-B outputs (every other dim static)."""
    s = model.config.image_size
    path = Path(path)
    outputs = encoder_outputs(model.config)
    # traced at batch 2 when dynamic: torch.export specialises a dim whose example size is 1
    image = torch.randn(2 if dynamic_batch else 1, 3, s, s,
                        generator=torch.Generator().manual_seed(0))
    dynamic = ({name: {0: BATCH_AXIS} for name in ENCODER_INPUTS + outputs}
               if dynamic_batch else None)
    # LiteViT blocks go out with their per-channel constants folded (same numbers, fewer ops)
    graph = EncoderGraph(fold_for_inference(model)).eval()
    _export(graph, (image,), path, ENCODER_INPUTS, outputs, dynamic, opset)
    return path


def export_decoder(model: "SamModel", path: Union[str, Path], opset: int = DEFAULT_OPSET) -> Path:
    """Export the prompt decoder with dynamic prompt batch P and points per prompt K (K static
    for a model with a fixed point count)."""
    cfg = model.config
    path = Path(path)
    emb = torch.randn(1, cfg.embed_dim, cfg.embedding_size, cfg.embedding_size)
    k = cfg.prompt_points or 2
    coords, labels = _example_prompts(cfg.image_size, 3, k)
    axes = {0: "P"} if cfg.prompt_points else {0: "P", 1: "K"}
    dynamic = {name: axes for name in DECODER_INPUTS[1:]}  # the prompts; embeddings static
    # the cross-attentions' image-sized projections move onto the prompt tokens (same numbers)
    graph = DecoderGraph(fold_decoder_attention(model)).eval()
    _export(graph, (emb, coords, labels), path, DECODER_INPUTS, DECODER_OUTPUTS, dynamic, opset)
    return path


def export_model(model: "SamModel", out_dir: Union[str, Path], opset: int = DEFAULT_OPSET,
                 dynamic_batch: bool = False, parts: tuple[str, ...] = GRAPH_PARTS
                 ) -> ExportedGraphs:
    """Export the graphs (``parts`` of them) into out_dir as encoder.onnx (dynamic_batch:
    encoder-dynbatch.onnx) and decoder.onnx; the paths of both are returned either way."""
    out_dir = Path(out_dir)
    graphs = ExportedGraphs(out_dir / encoder_graph_name(dynamic_batch), out_dir / "decoder.onnx")
    model = model.eval().cpu()
    with torch.no_grad():
        if GRAPH_PARTS[0] in parts:
            export_encoder(model, graphs.encoder, opset, dynamic_batch)
        if GRAPH_PARTS[1] in parts:
            export_decoder(model, graphs.decoder, opset)
    return graphs


def op_types(path: Union[str, Path]) -> set[str]:
    """ONNX op types used by a graph (e.g. to check LayerNormalization is there)."""
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def compare_with_ort(model: "SamModel", graphs: ExportedGraphs, prompts: int = 5,
                     seed: int = 0) -> dict[str, float]:
    """Max abs differences between torch and ONNX Runtime (CPU) outputs on random inputs."""
    import onnxruntime as ort

    cfg = model.config
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(1, 3, cfg.image_size, cfg.image_size, generator=g)
    so = ort.SessionOptions()
    enc_s = ort.InferenceSession(str(graphs.encoder), so, providers=["CPUExecutionProvider"])
    dec_s = ort.InferenceSession(str(graphs.decoder), so, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        want = EncoderGraph(model)(image)
        got = enc_s.run(None, {enc_s.get_inputs()[0].name: image.numpy()})
        diffs: dict[str, Any] = {n: float(np.abs(w.numpy() - o).max())
                                 for n, w, o in zip(encoder_outputs(cfg), want, got)}
        coords, labels = _example_prompts(cfg.image_size, prompts, cfg.prompt_points or 2)
        want_d = model.decode(want[0], coords, labels)
        got_d = dec_s.run(None, dict(zip(DECODER_INPUTS, (want[0].numpy(), coords.numpy(),
                                                          labels.numpy()))))
        diffs.update({n: float(np.abs(w.numpy() - o).max())
                      for n, w, o in zip(DECODER_OUTPUTS, want_d, got_d)})
    return diffs
