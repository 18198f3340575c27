"""Mask primitives every layer uses: the package's only box-from-mask, mask IoU and COCO RLE.

The ground floor: it imports nothing of ours, so model, segment, runtime, ros and training all
may import it. Conventions, one each:

- boxes are xyxy float32 with x0, y0 inclusive and x1, y1 EXCLUSIVE (the last column / row
  + 1), zeros for an empty mask: ``mask_boxes``;
- IoU is |a & b| / |a | b|, with ``empty`` (0 unless told) where both masks are empty:
  ``mask_iou`` (pairs, batched), ``pairwise_mask_iou`` (every pair, [N, M]) and ``rle_iou``
  (every pair of RLEs);
- RLE is COCO's, through pycocotools, as ``{"size": [H, W], "counts": str}``: ``encode_rle`` /
  ``decode_rle`` (``pycocotools_rle`` turns ours back into pycocotools' bytes form).
"""
from .boxes import mask_boxes, mask_profiles
from .iou import mask_iou, pairwise_mask_iou, rle_iou
from .rle import decode_rle, decode_rles, encode_rle, pycocotools_rle

__all__ = ["mask_boxes", "mask_profiles", "mask_iou", "pairwise_mask_iou", "rle_iou",
           "encode_rle", "decode_rle", "decode_rles", "pycocotools_rle"]
