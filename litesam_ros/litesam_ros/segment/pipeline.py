"""Segmenter: image -> instances, by segment-everything strategies or by prompts."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping, NamedTuple, Optional, Sequence

import numpy as np
import torch

from ..engines.base import Backend, EncoderResult, torch_threads
from ..masks import mask_boxes
from ..model.geometry import Geometry
from ..model.loading import THRESHOLD_NAMES
from .errors import InvalidImageError, SegmentError
from .postprocess import calibrate_iou, nms, remove_small_regions, stability_score
from .prompts import CheckedPrompt, Prompt, check_prompts, prompt_rows, stack_rows
from .results import SegmentationResult, mask_areas
from .strategies import STRATEGIES, STRATEGY_CHOICES, Candidates, run_strategy
from .thresholds import MODEL_OWN, check_threshold, threshold_sources


@dataclass(frozen=True)
class SegmentSettings:
    """Pipeline settings; defaults are SamAutomaticMaskGenerator's where it has one. The
    thresholds default to MODEL_OWN: the Segmenter resolves them (``thresholds`` module: an
    explicit value wins, then the model's own, then SAM's)."""

    strategy: str = "auto"
    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = MODEL_OWN
    stability_score_thresh: float = MODEL_OWN
    stability_offset: float = 1.0
    mask_threshold: float = 0.0
    box_nms_thresh: float = 0.7
    min_mask_region_area: int = 0
    max_instances: int = 100
    max_prompts: int = 64
    multimask: bool = True          # multimask outputs for segment-everything
    ppn_score_thresh: float = MODEL_OWN  # autoppn: proposals with score above this are decoded
    ppn_nms_thresh: float = 0.7     # autoppn: box NMS on proposals before decoding (1 = off)
    hierarchical_logit_thresh: float = 8.5  # TinySAM: first-pass logits above this are covered
    # torch intra-op threads during post-processing (0 = leave torch's setting). Its ops are
    # small: on a busy CPU, waking a second thread costs more than it saves (measured here:
    # one 512x512 mask 2 ms with 1 thread, 40-140 ms with 2 threads under load).
    postprocess_threads: int = 1

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGY_CHOICES:
            raise ValueError(f"strategy must be one of {STRATEGY_CHOICES}, "
                             f"got {self.strategy!r}")
        for name in ("points_per_side", "points_per_batch", "max_instances", "max_prompts"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.postprocess_threads < 0:
            raise ValueError(f"postprocess_threads must be >= 0, got {self.postprocess_threads}")
        if self.min_mask_region_area < 0 or self.stability_offset < 0:
            raise ValueError("min_mask_region_area and stability_offset must be >= 0")
        if not 0.0 <= self.box_nms_thresh <= 1.0:
            raise ValueError(f"box_nms_thresh must be in [0, 1], got {self.box_nms_thresh}")
        for name in THRESHOLD_NAMES:
            check_threshold(name, float(getattr(self, name)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_(self, **changes: Any) -> "SegmentSettings":
        """A copy with some fields changed."""
        return replace(self, **changes)

    def threshold_sources(self, model: Optional[Mapping[str, float]] = None
                          ) -> dict[str, tuple[float, str]]:
        """Each threshold's value and its source, with ``model`` the model's own thresholds
        (``thresholds.threshold_sources``)."""
        return threshold_sources({n: getattr(self, n) for n in THRESHOLD_NAMES}, model)

    def resolved(self, model: Optional[Mapping[str, float]] = None) -> "SegmentSettings":
        """A copy with every MODEL_OWN threshold replaced by ``model``'s own, else SAM's."""
        values: dict[str, Any] = {n: v for n, (v, _) in self.threshold_sources(model).items()}
        return replace(self, **values)


class _ImageState(NamedTuple):
    enc: EncoderResult
    original_hw: tuple[int, int]
    input_hw: tuple[int, int]


class CalibratedBackend(Backend):
    """A backend whose decode() gives calibrated predicted IoUs (``calibrate_iou`` with the
    weights' calibration); everything else is the wrapped backend's. The segment pipeline
    decodes through it, so every backend (torch, ONNX Runtime, TensorRT) and every consumer of
    the predicted IoU (strategies' filters, NMS order, prompt multimask choice, published
    scores) sees the same calibrated value, while the backend itself keeps returning the raw
    head output."""

    def __init__(self, backend: Backend, calibration: dict[str, float]) -> None:
        self.inner = backend
        self.name = backend.name
        self.config = backend.config
        self.model_thresholds = backend.model_thresholds
        self.max_batch = backend.max_batch
        self.iou_calibration = dict(calibration)

    @property
    def device(self) -> torch.device:
        return self.inner.device

    def encode(self, image: torch.Tensor) -> EncoderResult:
        return self.inner.encode(image)

    def decode(self, embeddings: torch.Tensor, point_coords: torch.Tensor,
               point_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, iou = self.inner.decode(embeddings, point_coords, point_labels)
        return logits, calibrate_iou(iou, self.iou_calibration)

    def __getattr__(self, name: str) -> Any:  # anything else a strategy may use
        return getattr(self.__dict__["inner"], name)


def calibrated(backend: Backend) -> Backend:
    """``backend`` with its ``iou_calibration`` applied to decode()'s IoUs; the backend itself
    when it has none (identity)."""
    cal = getattr(backend, "iou_calibration", None) or {}
    return CalibratedBackend(backend, cal) if cal else backend


def resolve_strategy(config: Any, strategy: str) -> str:
    """The strategy to run for a model: "auto" = autoppn where the model has an AutoPPN head,
    else grid. Raises SegmentError for a strategy this model cannot run (autoppn without its
    head): never a silent fallback."""
    has_ppn = bool(getattr(config, "autoppn", True))
    if strategy == "auto":
        return "autoppn" if has_ppn else "grid"
    if strategy not in STRATEGIES:
        raise SegmentError(f"unknown strategy {strategy!r}; choose one of {STRATEGY_CHOICES}")
    cfg = config
    if strategy == "autoppn" and not has_ppn:
        raise SegmentError(f"model {cfg.name!r} has no AutoPPN head, so strategy 'autoppn' is "
                           "not available: use 'grid' or 'hierarchical' (or a config with an "
                           "AutoPPN head, e.g. the '_autoppn' registry variants)")
    return strategy


def check_image(image: Any) -> np.ndarray:
    """Validate an RGB uint8 H x W x 3 image (any strides); raise InvalidImageError."""
    if not isinstance(image, np.ndarray):
        raise InvalidImageError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise InvalidImageError(f"image must have shape H x W x 3 (RGB), got {list(image.shape)}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise InvalidImageError(f"image is empty: shape {list(image.shape)}")
    if image.dtype != np.uint8:
        raise InvalidImageError(f"image must be uint8, got {image.dtype}")
    return np.ascontiguousarray(image)


class Segmenter:
    """Runs the segmentation pipeline on a backend; caches the last image's embedding."""

    def __init__(self, backend: Backend, settings: Optional[SegmentSettings] = None) -> None:
        self.backend = backend
        # decoding goes through the weights' IoU calibration (identity without one); read once
        self._net = calibrated(backend)
        self.geometry = Geometry.of(backend.config)
        self.settings = settings or SegmentSettings()
        self._state: Optional[_ImageState] = None
        resolve_strategy(backend.config, self.settings.strategy)  # fails here, at configure

    @property
    def settings(self) -> SegmentSettings:
        """The settings in use: thresholds resolved (an explicit value, else the model's own,
        else SAM's); set any SegmentSettings, MODEL_OWN thresholds included."""
        return self._settings

    @settings.setter
    def settings(self, settings: SegmentSettings) -> None:
        self.threshold_sources = settings.threshold_sources(self.backend.model_thresholds)
        self._settings = settings.resolved(self.backend.model_thresholds)

    @property
    def has_image(self) -> bool:
        return self._state is not None

    def reset(self) -> None:
        """Forget the cached image embedding."""
        self._state = None

    def set_image(self, image: np.ndarray) -> dict[str, float]:
        """Validate, pre-process and encode an image; cache its embedding. Returns timings."""
        timings: dict[str, float] = {}
        self._encode(check_image(image), timings)
        return timings

    def _encode(self, image: np.ndarray, timings: dict[str, float]) -> _ImageState:
        return self._encode_many([image], [timings])[0]

    def _encode_many(self, images: Sequence[np.ndarray],
                     timings: Sequence[dict[str, float]]) -> list[_ImageState]:
        """Pre-process checked images and encode them, as many per encoder call as the backend
        takes (Backend.max_batch); the cached embedding becomes the last image's. Timings per
        image: its preprocess, its share of its encoder call ("encode") and, where that call
        held several images, their number ("encode_batch")."""
        states: list[_ImageState] = []
        step = max(1, int(self.backend.max_batch))
        for start in range(0, len(images), step):
            chunk, times = images[start:start + step], timings[start:start + step]
            xs = []
            for image, tm in zip(chunk, times):
                t0 = time.perf_counter()
                xs.append(self.geometry.preprocess(image))
                tm["preprocess"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            enc = self.backend.encode(xs[0] if len(xs) == 1 else torch.cat(xs))
            if enc.embeddings.is_cuda:  # CUDA runs asynchronously: time the encoder itself,
                torch.cuda.synchronize(enc.embeddings.device)  # not under "decode"
            share = (time.perf_counter() - t1) / len(chunk)
            for i, (image, tm) in enumerate(zip(chunk, times)):
                tm["encode"] = share
                if len(chunk) > 1:
                    tm["encode_batch"] = float(len(chunk))
                hw = (int(image.shape[0]), int(image.shape[1]))
                one = enc if len(chunk) == 1 else enc.select(i)
                states.append(_ImageState(one, hw, self.geometry.input_hw(hw)))
            self._state = states[-1]
        return states

    # -- segment everything ------------------------------------------------------------------
    def segment_everything(self, image: np.ndarray,
                           strategy: Optional[str] = None) -> SegmentationResult:
        """All instances in the image, by ``strategy`` (None = settings.strategy)."""
        return self.segment_everything_batch([image], strategy)[0]

    def segment_everything_batch(self, images: Sequence[np.ndarray],
                                 strategy: Optional[str] = None) -> list[SegmentationResult]:
        """segment_everything of each image, with their encoder runs batched: the images are
        checked (any invalid one raises InvalidImageError before anything runs), encoded
        together in chunks of at most Backend.max_batch, then each goes through the strategy
        and post-processing on its own. The results equal segment_everything's per image; the
        cached embedding (prompt requests) is the last image's."""
        strategy = resolve_strategy(self.backend.config, strategy or self.settings.strategy)
        checked = [check_image(image) for image in images]
        timings: list[dict[str, float]] = [{} for _ in checked]
        states = self._encode_many(checked, timings)
        return [self._everything(strategy, state, tm) for state, tm in zip(states, timings)]

    def segment_encoded(self, enc: EncoderResult, image_hw: tuple[int, int],
                        strategy: Optional[str] = None) -> SegmentationResult:
        """segment_everything of an image already encoded by this backend's model (e.g. a
        cached embedding [1,C,E,E]; autoppn also needs the encoder's proposals): the same
        strategy and post-processing, without the encoder run. It becomes the cached image."""
        strategy = resolve_strategy(self.backend.config, strategy or self.settings.strategy)
        hw = (int(image_hw[0]), int(image_hw[1]))
        enc = enc._replace(embeddings=enc.embeddings.float().to(self.backend.device))
        self._state = _ImageState(enc, hw, self.geometry.input_hw(hw))
        return self._everything(strategy, self._state, {"preprocess": 0.0, "encode": 0.0})

    def _everything(self, strategy: str, state: _ImageState,
                    timings: dict[str, float]) -> SegmentationResult:
        """Strategy and post-processing of one encoded image; timings["total"] = its
        pre-processing and encoder share plus this."""
        t_start = time.perf_counter()
        valid_hw = self.geometry.low_res_valid_hw(state.input_hw)
        cands = run_strategy(strategy, self._net, state.enc, self.settings, state.input_hw,
                             valid_hw, timings)
        t0 = time.perf_counter()
        with torch_threads(self.settings.postprocess_threads):
            res = self._finish_everything(cands, state)
        t1 = time.perf_counter()
        timings["postprocess"] = t1 - t0
        timings["total"] = timings["preprocess"] + timings["encode"] + t1 - t_start
        res.strategy, res.timings = strategy, timings
        return res

    def _finish_everything(self, c: Candidates, state: _ImageState) -> SegmentationResult:
        s = self.settings
        keep = nms(c.boxes, c.iou, s.box_nms_thresh)[: s.max_instances]
        masks, boxes = self.geometry.upsample_masks(c.logits[keep], state.input_hw,
                                                    state.original_hw, s.mask_threshold)
        iou, stab, points = c.iou[keep], c.stability[keep], c.points[keep]
        if s.min_mask_region_area > 0 and len(masks):
            masks, order = self._clean_regions(masks, iou)
            iou, stab, points = iou[order], stab[order], points[order]
            boxes = mask_boxes(masks)  # the clean-up changed masks
        nonempty = boxes[:, 2] > boxes[:, 0]  # an empty mask's box is zeros
        if not bool(nonempty.all()):  # (indexing copies every full-size mask)
            masks, iou, stab = masks[nonempty], iou[nonempty], stab[nonempty]
            points, boxes = points[nonempty], boxes[nonempty]
        pts = self.geometry.coords_to_original(points.cpu().numpy(), state.original_hw)
        return self._result(masks, iou, stab, [p[None] for p in pts],
                            [np.ones(1, np.float32) for _ in pts], [None] * len(pts), boxes)

    def _clean_regions(self, masks: torch.Tensor,
                       iou: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """SAM's small-region clean-up, then NMS preferring masks that did not change."""
        s = self.settings
        out, unchanged = [], []
        for m in masks.cpu().numpy():
            m, c1 = remove_small_regions(m, s.min_mask_region_area, "holes")
            m, c2 = remove_small_regions(m, s.min_mask_region_area, "islands")
            out.append(m)
            unchanged.append(not (c1 or c2))
        cleaned = torch.from_numpy(np.stack(out)).to(masks.device)
        boxes = mask_boxes(cleaned)
        score = torch.tensor(unchanged, dtype=torch.float32, device=masks.device)
        score = score + iou.clamp(0, 1).cpu() * 0.5  # unchanged first, then by predicted IoU
        order = nms(boxes, score, s.box_nms_thresh)
        order = order.sort().values  # keep the original (score) order
        return cleaned[order], order

    # -- prompts ------------------------------------------------------------------------------
    def segment_prompts(self, image: Optional[np.ndarray], prompts: Sequence[Prompt],
                        multimask: bool = False) -> SegmentationResult:
        """One instance per prompt, in order. image=None reuses the last encoded image.

        multimask=True decodes SAM's three candidate masks and keeps the best-scored one.
        """
        if image is not None:
            image = check_image(image)
            hw = (int(image.shape[0]), int(image.shape[1]))
        elif self._state is None:
            raise InvalidImageError("no image given and no image encoded before")
        else:
            hw = self._state.original_hw
        checked = check_prompts(prompts, hw, self.settings.max_prompts,
                                self.backend.config.max_points_per_prompt)
        t_start = time.perf_counter()
        timings: dict[str, float] = {}
        state = self._encode(image, timings) if image is not None else self._state
        assert state is not None
        t0 = time.perf_counter()
        logits, iou = self._decode_prompts(state, checked, multimask)
        t1 = time.perf_counter()
        with torch_threads(self.settings.postprocess_threads):
            h, w = self.geometry.low_res_valid_hw(state.input_hw)
            stab = stability_score(logits[:, :h, :w], self.settings.mask_threshold,
                                   self.settings.stability_offset)
            masks, boxes = self.geometry.upsample_masks(
                logits[:, : h + 1, : w + 1], state.input_hw, state.original_hw,
                self.settings.mask_threshold)
            res = self._result(masks, iou, stab, [p.points for p in checked],
                               [p.labels for p in checked], [p.box for p in checked], boxes)
        timings["decode"] = t1 - t0
        timings["postprocess"] = time.perf_counter() - t1
        timings["total"] = time.perf_counter() - t_start
        res.strategy, res.timings = "prompts", timings
        return res

    def _decode_prompts(self, state: _ImageState, checked: list[CheckedPrompt],
                        multimask: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode prompts grouped by their number of points K (no padding between prompts,
        so a prompt's mask does not depend on the others), in chunks; results in input order."""
        rows = prompt_rows(checked, state.original_hw, self.geometry)
        dev = state.enc.embeddings.device
        groups: dict[int, list[int]] = {}
        for i, (_, lab) in enumerate(rows):
            groups.setdefault(len(lab), []).append(i)
        order: list[int] = []
        logits_parts: list[torch.Tensor] = []
        iou_parts: list[torch.Tensor] = []
        step = self.settings.points_per_batch
        for idx in groups.values():
            for start in range(0, len(idx), step):
                part = idx[start:start + step]
                coords, labels = stack_rows([rows[i] for i in part])
                logits, iou = self._net.decode(state.enc.embeddings,
                                               torch.from_numpy(coords).to(dev),
                                               torch.from_numpy(labels).to(dev))
                if multimask and logits.shape[1] > 1:
                    best = 1 + iou[:, 1:].argmax(1)
                    r = torch.arange(len(iou), device=iou.device)
                    logits, iou = logits[r, best], iou[r, best]
                else:
                    logits, iou = logits[:, 0], iou[:, 0]
                order.extend(part)
                logits_parts.append(logits.float())
                iou_parts.append(iou.float())
        logits_all, iou_all = torch.cat(logits_parts), torch.cat(iou_parts)
        if order != sorted(order):  # groups of several K: back to input order
            inverse = torch.from_numpy(np.argsort(np.asarray(order))).to(logits_all.device)
            logits_all, iou_all = logits_all[inverse], iou_all[inverse]
        return logits_all, iou_all

    @staticmethod
    def _result(masks: torch.Tensor, iou: torch.Tensor, stab: torch.Tensor,
                points: list[np.ndarray], labels: list[np.ndarray],
                boxes_in: list[Optional[np.ndarray]],
                boxes: torch.Tensor) -> SegmentationResult:
        """The result of final masks and their ``boxes`` (xyxy, exclusive max, zeros when
        empty: Geometry.upsample_masks or mask_boxes gives them)."""
        m = masks.cpu().numpy()
        areas = mask_areas(m)
        return SegmentationResult(
            masks=m, boxes=boxes.cpu().numpy().astype(np.float32),
            iou_scores=iou.cpu().numpy().astype(np.float32),
            stability_scores=stab.cpu().numpy().astype(np.float32),
            areas=areas,
            prompt_points=[np.asarray(p, np.float32).reshape(-1, 2) for p in points],
            prompt_labels=[np.asarray(lab, np.float32).reshape(-1) for lab in labels],
            prompt_boxes=[None if b is None else np.asarray(b, np.float32) for b in boxes_in])
