"""Shipped-file lookup and the model-card status the node and demo print."""

from __future__ import annotations

from pathlib import Path

from litesam_ros.model.resources import FALLBACK_MODEL, default_model, weights_status


def test_weights_status_reads_the_cards_status_paragraph(tmp_path: Path) -> None:
    (tmp_path / "MODEL_CARD.md").write_text(
        "# Card\n\n**Status: not usable.** Box mIoU 0.1\nagainst 0.85.\n\n## Data\nmore\n")
    weights = tmp_path / "w.pt"
    assert weights_status(str(weights)) == "Status: not usable. Box mIoU 0.1 against 0.85."
    # every checkpoint suffix the node loads, not only .pt
    assert weights_status(str(tmp_path / "w.ckpt")) == weights_status(str(weights))
    assert weights_status(str(tmp_path / "other" / "w.pt")) is None  # no card there
    assert weights_status("lite_sam_r320") is None  # registry names have no card


def test_default_model_is_the_shipped_weights_or_the_registry_fallback() -> None:
    model = default_model()
    assert model == FALLBACK_MODEL or (model.endswith("lite_sam_r320_demo.pt") and Path(model).is_file())
