"""Typed errors raised by the segmentation pipeline before any work reaches a backend."""


class SegmentError(ValueError):
    """Base class of every error the segmentation pipeline raises on bad input."""


class InvalidImageError(SegmentError):
    """The image is empty, has the wrong dtype or channel count, or none was set."""


class InvalidPromptError(SegmentError):
    """A prompt is malformed: NaN, outside the image, mismatched labels, inverted box, ..."""
