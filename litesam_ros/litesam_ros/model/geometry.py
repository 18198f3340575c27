"""Image geometry of a model: image -> model input, coordinates both ways, logits -> masks.

The one home of these decisions; serving (segment), quantization calibration (engines),
training and evaluation all call it, so a model sees the same pixels everywhere. What it does is
read from the model's config (``resize``, ``interpolation``, ``pixel_scale``, ``pixel_mean``,
``pixel_std``, ``upsample``), matching each official model's own code:

- SAM, MobileSAM, TinySAM: resize the longest side to S with PIL's bilinear filter on uint8
  (``ResizeLongestSide``), normalise 0-255 values, zero-pad bottom/right; logits are up-sampled
  bilinearly to S x S, cropped to the resized image, then resized to the original size.
- EfficientSAM: stretch to S x S with torch's bilinear interpolation on 0-1 values, normalise
  with ImageNet mean/std; logits are up-sampled bicubically from L x L straight to the original.
- Lite-SAM (this project's configs): longest side with OpenCV (INTER_AREA to shrink,
  INTER_LINEAR to enlarge), SAM's normalisation and up-sampling.

Frames: *original* = the H x W image the caller passed; *input* = the S x S model input, of
which the resized image covers ``input_hw`` (top-left; all of it when stretched).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..masks import mask_boxes

HW = Tuple[int, int]


@dataclass(frozen=True)
class Geometry:
    """The image geometry of one model config (see the module docstring)."""

    image_size: int
    low_res_size: int
    resize: str = "longest_side"
    interpolation: str = "area"
    pixel_scale: float = 1.0
    pixel_mean: Tuple[float, ...] = (123.675, 116.28, 103.53)
    pixel_std: Tuple[float, ...] = (58.395, 57.12, 57.375)
    upsample: str = "bilinear"

    @classmethod
    def of(cls, config: Any) -> "Geometry":
        """The geometry a model config describes (any object with the config's fields)."""
        return cls(int(config.image_size), int(config.low_res_size),
                   str(getattr(config, "resize", "longest_side")),
                   str(getattr(config, "interpolation", "area")),
                   float(getattr(config, "pixel_scale", 1.0)),
                   tuple(config.pixel_mean), tuple(config.pixel_std),
                   str(getattr(config, "upsample", "bilinear")))

    # -- sizes and coordinates -----------------------------------------------------------------
    def input_hw(self, original_hw: HW) -> HW:
        """(h, w) of the input frame that the image covers."""
        if self.resize == "stretch":
            return self.image_size, self.image_size
        h, w = original_hw
        scale = self.image_size / max(h, w)
        return int(h * scale + 0.5), int(w * scale + 0.5)

    def scales(self, original_hw: HW) -> Tuple[float, float]:
        """(sx, sy): input-frame pixels per original pixel along x and y."""
        new_h, new_w = self.input_hw(original_hw)
        return new_w / original_hw[1], new_h / original_hw[0]

    def coords_to_input(self, coords: np.ndarray, original_hw: HW) -> np.ndarray:
        """(x, y) points [..., 2] from original pixels to the input frame."""
        sx, sy = self.scales(original_hw)
        out = np.asarray(coords, dtype=np.float32).copy()
        out[..., 0] *= sx
        out[..., 1] *= sy
        return out

    def coords_to_original(self, coords: np.ndarray, original_hw: HW) -> np.ndarray:
        """(x, y) points [..., 2] from the input frame back to original pixels."""
        sx, sy = self.scales(original_hw)
        out = np.asarray(coords, dtype=np.float32).copy()
        out[..., 0] /= sx
        out[..., 1] /= sy
        return out

    def boxes_to_input(self, boxes: np.ndarray, original_hw: HW) -> np.ndarray:
        """xyxy boxes [..., 4] from original pixels to the input frame."""
        b = np.asarray(boxes, dtype=np.float32)
        return self.coords_to_input(b.reshape(*b.shape[:-1], 2, 2), original_hw).reshape(b.shape)

    def boxes_to_original(self, boxes: np.ndarray, original_hw: HW) -> np.ndarray:
        """xyxy boxes [..., 4] from the input frame back to original pixels."""
        b = np.asarray(boxes, dtype=np.float32)
        return self.coords_to_original(b.reshape(*b.shape[:-1], 2, 2),
                                       original_hw).reshape(b.shape)

    def low_res_valid_hw(self, input_hw: HW) -> HW:
        """Part (h, w) of the L x L low-res logits that overlaps the image, not only padding."""
        f = self.low_res_size / self.image_size
        return (min(self.low_res_size, math.ceil(input_hw[0] * f)),
                min(self.low_res_size, math.ceil(input_hw[1] * f)))

    # -- pixels --------------------------------------------------------------------------------
    def resize_image(self, image: np.ndarray) -> np.ndarray:
        """RGB uint8 H x W x 3 resized to input_hw, uint8 (interpolation area / pil_bilinear)."""
        h, w = self.input_hw(image.shape[:2])
        image = np.ascontiguousarray(image)
        if (h, w) == image.shape[:2]:
            return image
        if self.interpolation == "pil_bilinear":
            from PIL import Image

            return np.array(Image.fromarray(image).resize((w, h), Image.Resampling.BILINEAR))
        if self.interpolation == "area":
            import cv2

            interp = cv2.INTER_AREA if max(image.shape[:2]) > self.image_size \
                else cv2.INTER_LINEAR
            return cv2.resize(image, (w, h), interpolation=interp)
        raise ValueError(f"interpolation {self.interpolation!r} resizes float values, "
                         "not uint8: use preprocess()")

    def _scaled(self, image: np.ndarray) -> torch.Tensor:
        """H x W x 3 uint8 -> float32 [3, H, W] planes, times pixel_scale."""
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous().float()
        return x / (1.0 / self.pixel_scale) if self.pixel_scale != 1.0 else x

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        """RGB uint8 H x W x 3 -> normalised float32 [1, 3, S, S], zero-padded bottom/right.

        Every per-channel op runs on whole planes: on the H x W x 3 layout (a permuted view) the
        innermost run is 3 values long and torch's (x - mean) / std took 3 ms instead of 0.4
        for a 640 x 640 input. Zeroing the whole 1024 x 1024 input first took up to 5 ms."""
        h, w = self.input_hw(image.shape[:2])
        out = torch.empty((1, 3, self.image_size, self.image_size), dtype=torch.float32)
        out[0, :, h:].zero_()  # only the padding is zeroed: the image covers the rest
        out[0, :, :h, w:].zero_()
        x = out[0, :, :h, :w]
        if self.interpolation == "bilinear":
            planes = self._scaled(image)
            if (h, w) != tuple(planes.shape[-2:]):
                planes = F.interpolate(planes[None], (h, w), mode="bilinear",
                                       align_corners=False)[0]
            x.copy_(planes)
        else:
            x.copy_(torch.from_numpy(self.resize_image(image)).permute(2, 0, 1))
            if self.pixel_scale != 1.0:
                x.div_(1.0 / self.pixel_scale)
        mean = torch.tensor(self.pixel_mean, dtype=torch.float32).view(3, 1, 1)
        std = torch.tensor(self.pixel_std, dtype=torch.float32).view(3, 1, 1)
        x.sub_(mean).div_(std)
        return out

    def resize_masks(self, masks: np.ndarray) -> np.ndarray:
        """Boolean masks [N, H, W] -> [N, S, S] in the input frame (nearest, zero-padded)."""
        import cv2

        n = len(masks)
        out = np.zeros((n, self.image_size, self.image_size), bool)
        if n == 0:
            return out
        h, w = self.input_hw(masks.shape[1:])
        for i, m in enumerate(masks):
            out[i, :h, :w] = cv2.resize(m.astype(np.uint8), (w, h),
                                        interpolation=cv2.INTER_NEAREST) > 0
        return out

    # -- logits --------------------------------------------------------------------------------
    def upsample_logits(self, logits: torch.Tensor, input_hw: HW, original_hw: HW,
                        chunk: int = 16) -> torch.Tensor:
        """Low-res logits -> [N, H, W] logits at the original size.

        ``logits`` [N, h, w] is the top-left part of the L x L low-res map (all of it, or at
        least the rows/columns the input image covers plus one). Longest-side models: as SAM,
        up-sample L x L to S x S, crop to input_hw, resize to (H, W) — without up-sampling the
        padding. Stretched models: the whole L x L map is the image; one resize to (H, W).
        """
        out = []
        for part in logits.split(chunk):
            x = part[:, None].float()
            if self.resize == "longest_side":
                x = F.interpolate(x, scale_factor=self.image_size / self.low_res_size,
                                  mode=self.upsample, align_corners=False,
                                  recompute_scale_factor=False)
                x = x[..., : input_hw[0], : input_hw[1]]
            x = F.interpolate(x, original_hw, mode=self.upsample, align_corners=False)
            out.append(x[:, 0])
        if not out:
            return logits.new_zeros((0, *original_hw))
        return torch.cat(out)

    def resize_matrices(self, logits_hw: HW, input_hw: HW, original_hw: HW
                        ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The up-sampling of ``upsample_logits`` as two matrices, rows [H, h] and columns
        [W, w] (float32; ``logits_hw`` = (h, w) of the logits passed in): up-sampled logits =
        rows @ logits @ columns.T. Built by up-sampling an identity with the same calls, so the
        weights (borders included) are those of ``upsample_logits``. Bilinear only."""
        return (_axis_matrix(self, logits_hw[0], input_hw[0], original_hw[0]),
                _axis_matrix(self, logits_hw[1], input_hw[1], original_hw[1]))

    def upsample_masks(self, logits: torch.Tensor, input_hw: HW, original_hw: HW,
                       threshold: float) -> Tuple[torch.Tensor, torch.Tensor]:
        """``upsample_logits(...) > threshold`` and each mask's box, computed only inside the
        box (for bilinear up-sampling).

        A bilinear output value is a convex combination of low-res values, so it can exceed the
        threshold only where its support holds a low-res value above it: each mask is computed
        over the output rectangle reached from its low-res positive box, as two small matmuls,
        instead of up-sampling the whole map (same values up to float rounding). Returns bool
        masks [N, H, W] and float32 boxes [N, 4] (xyxy, exclusive max; zeros when empty).
        Other up-sampling modes take the full path.

        The matmuls are torch's, so they run on the caller's torch threads (the Segmenter's
        ``postprocess_threads``): numpy's OpenBLAS threads spin for a long while after each
        product and took the cores from the next ONNX Runtime run (a box prompt at r640: 35
        ms per request with numpy's products, 18 ms with OPENBLAS_NUM_THREADS=1).
        """
        n = int(logits.shape[0])
        H, W = original_hw
        if self.upsample != "bilinear" or n == 0:
            full = self.upsample_logits(logits, input_hw, original_hw) > threshold
            return full, mask_boxes(full)
        (rows, row_span), (cols, col_span) = _resize_plan(
            self, (int(logits.shape[1]), int(logits.shape[2])), tuple(input_hw),
            tuple(original_hw))
        lg = logits.detach().float().cpu()
        pos = lg.numpy() > threshold
        masks = np.zeros((n, H, W), dtype=bool)
        boxes = np.zeros((n, 4), dtype=np.float32)
        any_row, any_col = np.asarray(pos.any(2)), np.asarray(pos.any(1))
        for i in range(n):
            ys = np.flatnonzero(any_row[i])
            if len(ys) == 0:
                continue
            xs = np.flatnonzero(any_col[i])
            r0, r1, k0, k1 = _window(row_span, int(ys[0]), int(ys[-1]))
            q0, q1, m0, m1 = _window(col_span, int(xs[0]), int(xs[-1]))
            sub = (rows[r0:r1, k0:k1] @ lg[i, k0:k1, m0:m1] @ cols[q0:q1, m0:m1].T
                   > threshold).numpy()
            masks[i, r0:r1, q0:q1] = sub
            sy, sx = np.flatnonzero(sub.any(1)), np.flatnonzero(sub.any(0))
            if len(sy):
                boxes[i] = (q0 + sx[0], r0 + sy[0], q0 + sx[-1] + 1, r0 + sy[-1] + 1)
        return (torch.from_numpy(masks).to(logits.device),
                torch.from_numpy(boxes).to(logits.device))


@functools.lru_cache(maxsize=16)
def _resize_plan(g: Geometry, logits_hw: HW, input_hw: HW, original_hw: HW) -> Tuple[Any, Any]:
    """(matrix, spans) per axis for ``upsample_masks``; frames of one camera share one."""
    rows, cols = g.resize_matrices(logits_hw, input_hw, original_hw)
    return ((rows, _spans(rows.numpy())), (cols, _spans(cols.numpy())))


def _axis_matrix(g: Geometry, n_in: int, input_len: int, original_len: int) -> torch.Tensor:
    """[original_len, n_in]: ``upsample_logits`` along one axis, applied to an identity."""
    x = torch.eye(n_in, dtype=torch.float32)[None]  # channel c = unit impulse at c
    if g.resize == "longest_side":
        x = F.interpolate(x, scale_factor=g.image_size / g.low_res_size, mode="linear",
                          align_corners=False, recompute_scale_factor=False)
        x = x[..., :input_len]
    x = F.interpolate(x, size=original_len, mode="linear", align_corners=False)
    return x[0].T.contiguous()


def _spans(m: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For a resize matrix [out, in]: first / last output index reached by each input index,
    and first / last input index each output index reads. Linear resizing is monotone, so
    these are non-decreasing (an input no output reads gets its neighbours' bounds)."""
    nz = m != 0
    n_out, n_in = nz.shape
    first_in = np.argmax(nz, axis=1)
    last_in = n_in - 1 - np.argmax(nz[:, ::-1], axis=1)
    first_out = np.searchsorted(last_in, np.arange(n_in), side="left")  # last_in[o] >= i
    last_out = np.searchsorted(first_in, np.arange(n_in), side="right") - 1  # first_in[o] <= i
    return first_out, last_out, first_in, last_in


def _window(span: Tuple[np.ndarray, ...], lo: int, hi: int) -> Tuple[int, int, int, int]:
    """Output range [o0, o1) reached from input indices lo..hi, and the input range [i0, i1)
    those outputs read."""
    first_out, last_out, first_in, last_in = span
    o0, o1 = int(first_out[lo]), int(last_out[hi]) + 1
    if o1 <= o0:
        return 0, 0, 0, 0
    return o0, o1, int(first_in[o0]), int(last_in[o1 - 1]) + 1


__all__ = ["Geometry"]
