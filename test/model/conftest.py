"""Fixtures for the model tests: a tiny config where only shapes and logic matter."""
from __future__ import annotations

import pytest
import torch

from litesam_ros.model import SamModel, ModelConfig, build_model


def tiny_config(**changes: object) -> ModelConfig:
    """64x64 input, E = 4, small widths: runs in milliseconds."""
    base = dict(name="tiny_test", image_size=64, embed_dim=32, stage_dims=(8, 16, 16, 32),
                stage_depths=(1, 1, 1, 1), ppn_dim=8, ppn_blocks=1, ppn_top_n=16,
                decoder_heads=4, decoder_mlp_dim=64, iou_head_hidden_dim=32)
    base.update(changes)
    return ModelConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture
def make_tiny_config():
    """The :func:`tiny_config` factory, for tests that need variants."""
    return tiny_config


@pytest.fixture
def tiny_model() -> SamModel:
    torch.manual_seed(0)
    model = build_model(tiny_config()).eval()
    # Layer scales start at 1e-5, which would hide the blocks; make them matter in tests.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_scale" in name:
                p.fill_(0.5)
    return model
