"""Shared fixtures: a tiny Lite-SAM config for fast CPU training tests."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _few_threads():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_model_config() -> dict:
    from litesam_ros.model.registry import get_config

    cfg = get_config("lite_sam_r320").replace(
        name="tiny_test", image_size=64, embed_dim=32, stage_dims=(8, 8, 16, 16),
        stage_depths=(1, 1, 1, 1), ppn_dim=16, ppn_blocks=1, decoder_heads=2,
        decoder_mlp_dim=64, iou_head_hidden_dim=32, ppn_top_n=16)
    return cfg.to_dict()


def tiny_train_config(tmp_path, **kw):
    from litesam_ros.training.supervised.trainer import TrainConfig

    base = dict(model=tiny_model_config(), checkpoint=str(tmp_path / "ck.pt"), steps=6,
                batch_size=2, prompts_per_image=3, lr=2e-3, warmup_steps=2,
                data={"type": "synthetic", "length": 64,
                      "synthetic": {"height": 64, "width": 80, "min_objects": 2,
                                    "max_objects": 4}},
                ckpt_every_seconds=0, progress=False, log_every=1)
    base.update(kw)
    return TrainConfig(**base)
