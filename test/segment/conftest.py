"""A deterministic fake backend: masks are discs around point prompts / the box of box prompts."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from litesam_ros.engines.base import Backend, EncoderResult


class FakeBackend(Backend):
    """Image size S, low-res L = S / 4. Mask m of a point prompt is a disc of radius
    (m + 1) * radius_step low-res pixels around the mean foreground point; a box prompt gives
    the box. iou = iou_values per output."""

    def __init__(self, image_size: int = 64, proposals: int = 6,
                 radius_step: float = 1.5) -> None:
        lr = image_size // 4
        self.config = SimpleNamespace(
            image_size=image_size, low_res_size=lr, embedding_size=lr // 4, embed_dim=4,
            pixel_mean=(123.675, 116.28, 103.53), pixel_std=(58.395, 57.12, 57.375),
            ppn_top_n=proposals, max_points_per_prompt=14)
        self.name = "fake"
        self.radius_step = radius_step
        self.iou_values = torch.tensor([0.5, 0.9, 0.8, 0.7])
        self.decode_calls: list[tuple[int, int]] = []
        self.encode_calls = 0
        self.last_image: torch.Tensor | None = None

    def encode(self, image: torch.Tensor) -> EncoderResult:
        self.encode_calls += 1
        self.last_image = image
        s, n = self.config.image_size, self.config.ppn_top_n
        e = self.config.embedding_size
        emb = torch.nn.functional.adaptive_avg_pool2d(image, e).repeat(1, 2, 1, 1)[:, :4]
        pts = torch.stack([torch.linspace(s * 0.1, s * 0.4, n), torch.full((n,), s * 0.3)], 1)
        scores = torch.linspace(0.9, 0.1, n)
        scores[-2:] = 0.0  # padded entries
        boxes = torch.cat([pts - 2, pts + 2], 1)
        return EncoderResult(emb, pts[None], scores[None], torch.zeros(1, n, dtype=torch.int64),
                             boxes[None])

    def decode(self, embeddings: torch.Tensor, point_coords: torch.Tensor,
               point_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p, k = point_labels.shape
        self.decode_calls.append((p, k))
        lr, s = self.config.low_res_size, self.config.image_size
        f = lr / s
        yy, xx = torch.meshgrid(torch.arange(lr) + 0.5, torch.arange(lr) + 0.5, indexing="ij")
        out = torch.zeros(p, 4, lr, lr)
        for i in range(p):
            lab, c = point_labels[i], point_coords[i] * f
            if (lab == 2).any():
                x0, y0 = c[lab == 2][0]
                x1, y1 = c[lab == 3][0]
                inside = (xx >= x0) & (xx <= x1) & (yy >= y0) & (yy <= y1)
                out[i] = torch.where(inside, 10.0, -10.0)
                continue
            centre = c[lab == 1].mean(0)
            d = ((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2).sqrt()
            for m in range(4):
                r = (m + 1) * self.radius_step
                out[i, m] = 10.0 * (1.0 - d / r)
        return out, self.iou_values.expand(p, 4).clone()


@pytest.fixture
def fake_backend() -> FakeBackend:
    return FakeBackend()
