"""Segmentation pipeline: pre/post-processing, prompts, segment-everything strategies, results."""
from .errors import InvalidImageError, InvalidPromptError, SegmentError
from .pipeline import Segmenter, SegmentSettings, check_image, resolve_strategy
from .prompts import Prompt
from .results import SegmentationResult
from .strategies import STRATEGIES, STRATEGY_CHOICES

__all__ = ["Segmenter", "SegmentSettings", "Prompt", "SegmentationResult", "SegmentError",
           "InvalidImageError", "InvalidPromptError", "check_image", "resolve_strategy", "STRATEGIES", "STRATEGY_CHOICES"]
