"""INT8 post-training static quantization (TinySAM's PTQ idea) with ONNX Runtime, QDQ format.

Calibration runs the FP32 graphs on real photos (scikit-image's sample images): the encoder sees
the pre-processed images; the decoder sees their FP32 embeddings with grid-point and box prompts.
``target="cpu"`` uses ONNX Runtime's CPU-friendly scheme (uint8 activations, int8 per-channel
weights); ``target="tensorrt"`` uses symmetric int8 everywhere (what TensorRT's explicit Q/DQ
quantization expects) and follows the ONNX-TensorRT parser's rules (TENSORRT_EXTRA_OPTIONS):
float biases (IDequantizeLayer takes INT8/FP8/INT4 inputs only, no INT32 bias DQ), Q/DQ on the
inputs of the quantized ops but not on their outputs, the AutoPPN heads' last convolutions left
in float (their logits feed Sigmoid / Softplus), and no graph output made by a DequantizeLinear
(keep_outputs_float: the embeddings leave the encoder in float, not 8-bit per tensor).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                      QuantType, quantize_static)

import torch

from ..model.geometry import Geometry
from .base import DECODER_INPUTS, GRAPH_PARTS, fit_prompt_points

log = logging.getLogger(__name__)

#: bundled with scikit-image (no download); astronaut is left out so tests and benchmarks can
#: measure INT8 agreement on an image the calibration did not see
CALIBRATION_IMAGES = ("coffee", "chelsea", "rocket", "immunohistochemistry", "camera",
                      "stereo_motorcycle")
QUANTIZED_OPS = ("Conv", "MatMul", "Gemm", "ConvTranspose")
#: what create_backend(precision="int8") quantizes for ONNX Runtime with the CUDA provider (on
#: the CPU it refuses int8, issue 15.6: factory.ORT_CPU_INT8_REFUSAL). Measured on these machines
#: (r320, astronaut): the INT8 decoder was slower than FP32 (dynamic prompt batch, attention
#: MatMuls with Q/DQ around them) and lowered box-mask IoU to 0.94 min.
CPU_PARTS = GRAPH_PARTS[:1]
#: cpu: ONNX Runtime's CPU scheme; tensorrt: symmetric int8 for TensorRT's explicit Q/DQ.
QUANTIZE_TARGETS = ("cpu", "tensorrt")
DEFAULT_TARGET = QUANTIZE_TARGETS[0]
#: quantize_static's extra options per target. tensorrt (onnxruntime 1.2x names): float biases,
#: no output Q/DQ after Conv/MatMul (TensorRT fuses the next op's input Q into the producer)
TENSORRT_EXTRA_OPTIONS = {"QuantizeBias": False,
                          "OpTypesToExcludeOutputQuantization": list(QUANTIZED_OPS)}
#: ops whose input is a head's logits: the convolution feeding one stays in float
HEAD_ACTIVATIONS = ("Sigmoid", "Softplus")


def calibration_images(names: Sequence[str] = CALIBRATION_IMAGES) -> list[np.ndarray]:
    """RGB uint8 photos from skimage.data (bundled with scikit-image, no download)."""
    from skimage import data

    out = []
    for n in names:
        img = getattr(data, n)()
        if isinstance(img, tuple):  # stereo pairs
            img = img[0]
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        out.append(np.ascontiguousarray(img[..., :3]).astype(np.uint8))
    return out


def preprocess(image: np.ndarray, config: Any) -> np.ndarray:
    """RGB uint8 -> the model's input [1,3,S,S] as numpy (model.geometry, as serving)."""
    return Geometry.of(config).preprocess(image).numpy()


def _decoder_feed(config: Any, emb: np.ndarray, coords: np.ndarray,
                  labels: np.ndarray) -> dict[str, np.ndarray]:
    c, lab = fit_prompt_points(config, torch.from_numpy(coords), torch.from_numpy(labels))
    return dict(zip(DECODER_INPUTS, (emb, c.numpy(), lab.numpy())))


def grid_points(n: int, hw: tuple[int, int]) -> np.ndarray:
    """SAM's n x n grid of cell centres over an image covering hw of the input frame."""
    side = np.linspace(0.5 / n, 1 - 0.5 / n, n)
    xs, ys = np.meshgrid(side * hw[1], side * hw[0])
    return np.stack([xs.reshape(-1), ys.reshape(-1)], 1).astype(np.float32)


class EncoderCalibrationReader(CalibrationDataReader):
    """Feeds pre-processed images to the encoder graph."""

    def __init__(self, images: Sequence[np.ndarray], config: Any, input_name: str) -> None:
        self._feeds = [{input_name: preprocess(img, config)} for img in images]
        self._it: Iterator[dict[str, np.ndarray]] = iter(self._feeds)

    def get_next(self) -> Optional[dict[str, np.ndarray]]:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = iter(self._feeds)


class DecoderCalibrationReader(CalibrationDataReader):
    """Feeds FP32 embeddings of the images with point-grid and box prompts to the decoder."""

    def __init__(self, images: Sequence[np.ndarray], config: Any, encoder_path: Union[str, Path],
                 points_per_side: int = 8, seed: int = 0) -> None:
        enc = ort.InferenceSession(str(encoder_path), providers=["CPUExecutionProvider"])
        in_name = enc.get_inputs()[0].name
        rng = np.random.default_rng(seed)
        geometry = Geometry.of(config)
        self._feeds = []
        for img in images:
            x = preprocess(img, config)
            emb = enc.run(None, {in_name: x})[0]
            h, w = geometry.input_hw(img.shape[:2])
            pts = grid_points(points_per_side, (h, w))
            coords = np.stack([pts, np.zeros_like(pts)], 1).astype(np.float32)
            labels = np.tile(np.array([[1, -1]], np.float32), (len(pts), 1))
            self._feeds.append(_decoder_feed(config, emb, coords, labels))
            xy0 = rng.uniform(0, 0.7, (16, 2)) * [w, h]
            xy1 = xy0 + rng.uniform(0.1, 0.3, (16, 2)) * [w, h]
            boxes = np.stack([xy0, np.minimum(xy1, [w, h])], 1).astype(np.float32)
            self._feeds.append(_decoder_feed(config, emb, boxes,
                                             np.tile(np.array([[2, 3]], np.float32), (16, 1))))
        self._it: Iterator[dict[str, np.ndarray]] = iter(self._feeds)

    def get_next(self) -> Optional[dict[str, np.ndarray]]:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = iter(self._feeds)


def quantize_graph(fp32_path: Union[str, Path], out_path: Union[str, Path],
                   reader: CalibrationDataReader, target: str = DEFAULT_TARGET,
                   per_channel: bool = True) -> Path:
    """Static INT8 QDQ quantization of Conv/MatMul/Gemm; other ops stay FP32."""
    if target not in QUANTIZE_TARGETS:
        raise ValueError(f"target must be one of {QUANTIZE_TARGETS}, got {target!r}")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    symmetric = target == "tensorrt"
    extra: dict[str, Any] = {"ActivationSymmetric": symmetric, "WeightSymmetric": True}
    exclude: list[str] = []
    if symmetric:
        extra.update(TENSORRT_EXTRA_OPTIONS)
        exclude = head_convolutions(onnx.load(str(fp32_path)))
    quantize_static(
        str(fp32_path), str(out_path), reader, quant_format=QuantFormat.QDQ,
        op_types_to_quantize=list(QUANTIZED_OPS), per_channel=per_channel,
        activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
        nodes_to_exclude=exclude, extra_options=extra)
    if symmetric:
        model = onnx.load(str(out_path))
        if keep_outputs_float(model):
            onnx.save(model, str(out_path))
    return out_path


def head_convolutions(model: onnx.ModelProto) -> list[str]:
    """Names of the Conv / MatMul / Gemm nodes whose output feeds a HEAD_ACTIVATIONS op (the
    AutoPPN heatmap, box and offset logits): quantized, they would reach Sigmoid / Softplus at
    8 bits."""
    users: dict[str, list[str]] = {}
    for n in model.graph.node:
        for i in n.input:
            users.setdefault(i, []).append(n.op_type)
    return [n.name for n in model.graph.node if n.op_type in QUANTIZED_OPS
            and any(u in HEAD_ACTIVATIONS for u in users.get(n.output[0], ()))]


def keep_outputs_float(model: onnx.ModelProto) -> int:
    """Make every graph output produced by a DequantizeLinear the float tensor its
    QuantizeLinear read (ONNX Runtime puts the Q/DQ pair of a tensor that is both an output and
    a quantized op's input on the output itself); the quantized consumers keep the pair.
    Returns how many outputs it rewired."""
    graph = model.graph
    made_by = {o: n for n in graph.node for o in n.output}
    fixed = 0
    for out in graph.output:
        dq = made_by.get(out.name)
        if dq is None or dq.op_type != "DequantizeLinear":
            continue
        q = made_by.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear":
            continue
        inner, dq_out = q.input[0], f"{out.name}_DequantizeLinear_Output"
        for n in graph.node:  # the consumers of the DQ read its renamed output
            for i, name in enumerate(n.input):
                if name == out.name:
                    n.input[i] = dq_out
        dq.output[0] = dq_out
        for n in graph.node:  # the float tensor takes the output's name
            for i, name in enumerate(n.output):
                if name == inner:
                    n.output[i] = out.name
            for i, name in enumerate(n.input):
                if name == inner:
                    n.input[i] = out.name
        fixed += 1
    return fixed


def int8_graph_path(fp32_path: Union[str, Path], out_dir: Union[str, Path], target: str) -> Path:
    """Where the INT8 version of an FP32 graph goes: out_dir/<its name>.int8-<target>.onnx."""
    return Path(out_dir) / f"{Path(fp32_path).stem}.int8-{target}.onnx"


def quantize_model(encoder_path: Union[str, Path], decoder_path: Union[str, Path],
                   out_dir: Union[str, Path], config: Any, target: str = DEFAULT_TARGET,
                   images: Optional[Sequence[np.ndarray]] = None,
                   parts: Sequence[str] = GRAPH_PARTS) -> dict[str, Path]:
    """Quantize the encoder and/or decoder graphs into out_dir (int8_graph_path names them)."""
    images = list(images) if images is not None else calibration_images()
    out_dir = Path(out_dir)
    out: dict[str, Path] = {}
    if "encoder" in parts:
        name = ort.InferenceSession(str(encoder_path),
                                    providers=["CPUExecutionProvider"]).get_inputs()[0].name
        out["encoder"] = quantize_graph(encoder_path,
                                        int8_graph_path(encoder_path, out_dir, target),
                                        EncoderCalibrationReader(images, config, name), target)
    if "decoder" in parts:
        out["decoder"] = quantize_graph(decoder_path,
                                        int8_graph_path(decoder_path, out_dir, target),
                                        DecoderCalibrationReader(images, config, encoder_path),
                                        target)
    return out
