"""Registry and config: names, derived sizes, (de)serialisation, errors."""
from __future__ import annotations

import pytest

from litesam_ros.model import (ModelConfig, UnknownModelError, build_model, get_config,
                               list_models)
from litesam_ros.model.registry import at_image_size

EXPECTED = {  # name: (S, E, L, stage dims)
    "lite_sam_r640": (640, 40, 160, (64, 96, 128, 256)),
    "lite_sam_r1024": (1024, 64, 256, (64, 96, 128, 256)),
    "lite_sam_2x_r640": (640, 40, 160, (96, 128, 192, 384)),
    "lite_sam_3x_r640": (640, 40, 160, (128, 160, 256, 512)),
    "lite_sam_r320": (320, 20, 80, (64, 96, 128, 256)),
    "sam_vit_b": (1024, 64, 256, (768,)),
    "sam_vit_l": (1024, 64, 256, (1024,)),
    "sam_vit_h": (1024, 64, 256, (1280,)),
    "mobile_sam": (1024, 64, 256, (64, 128, 160, 320)),
    "tinysam": (1024, 64, 256, (64, 128, 160, 320)),
    "efficient_sam_vitt": (1024, 64, 256, (192,)),
    "efficient_sam_vits": (1024, 64, 256, (384,)),
}
EXPECTED.update({f"{n}_autoppn": v for n, v in list(EXPECTED.items())
                 if not n.startswith("lite_sam")})


def test_a_config_at_another_size_is_named_for_it() -> None:
    """The registry's name where it has that network at that size, else <name>@<size> (a
    resized lite_sam_r320 was still called lite_sam_r320 at 640 px in benchmark headers)."""
    r320 = get_config("lite_sam_r320")
    assert at_image_size(r320, 640) == get_config("lite_sam_r640")
    assert at_image_size(r320, 320) is r320
    small = at_image_size(r320, 160)
    assert (small.name, small.image_size, small.embedding_size) == ("lite_sam_r320@160", 160, 10)
    assert at_image_size(small, 256).name == "lite_sam_r320@256"
    assert at_image_size(small, 640).name == "lite_sam_r640"
    old = r320.replace(ppn_offsets=False)  # the demo weights' config: no registry twin at 640
    assert at_image_size(old, 640).name == "lite_sam_r320@640"
    assert at_image_size(get_config("mobile_sam_autoppn"), 512).name == "mobile_sam_autoppn@512"


def test_old_configs_without_the_added_fields_still_load() -> None:
    """Checkpoints written before the SAM family lack the new fields: they get the values every
    config had then (LiteViT, AutoPPN without sub-cell offsets, SAM decoder, OpenCV geometry)."""
    from litesam_ros.model.config import ADDED_FIELDS

    cfg = get_config("lite_sam_r320")
    assert cfg.ppn_offsets  # new registry configs have the offset head; old files had none
    old = {k: v for k, v in cfg.to_dict().items() if k not in ADDED_FIELDS}
    assert ModelConfig.from_dict(old) == cfg.replace(ppn_offsets=False)
    old["mlp_ratio"] = 3.0  # AutoPPN shared the encoder's mlp_ratio then
    assert ModelConfig.from_dict(old).ppn_mlp_ratio == 3.0


def test_registry_lists_all_models_default_first() -> None:
    names = list_models()
    assert names[0] == "lite_sam_r640"
    assert set(names) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_derived_sizes(name: str) -> None:
    cfg = get_config(name)
    s, e, low, dims = EXPECTED[name]
    assert (cfg.name, cfg.image_size, cfg.embedding_size, cfg.low_res_size) == (name, s, e, low)
    assert cfg.stage_dims == dims
    assert cfg.embed_dim == 256 and cfg.ppn_top_n == 256 and cfg.num_mask_outputs == 4
    if name.startswith("efficient_sam"):  # ImageNet statistics on 0-1 values
        assert cfg.pixel_mean == (0.485, 0.456, 0.406) and cfg.pixel_scale == 1 / 255
        assert (cfg.resize, cfg.upsample, cfg.prompt_points) == ("stretch", "bicubic", 6)
    else:
        assert cfg.pixel_mean == (123.675, 116.28, 103.53)
        assert cfg.pixel_std == (58.395, 57.12, 57.375)
        assert (cfg.resize, cfg.upsample, cfg.prompt_points) == ("longest_side", "bilinear", 0)


def test_dict_round_trip_is_plain_and_exact() -> None:
    cfg = get_config("lite_sam_r320")
    d = cfg.to_dict()
    assert all(isinstance(v, (str, int, float, list)) for v in d.values())
    assert ModelConfig.from_dict(d) == cfg
    assert build_model(d).config == cfg


def test_from_dict_rejects_unknown_and_missing_fields() -> None:
    d = get_config("lite_sam_r640").to_dict()
    with pytest.raises(ValueError, match="unknown config fields.*bogus"):
        ModelConfig.from_dict({**d, "bogus": 1})
    del d["stage_dims"]
    with pytest.raises(ValueError, match="missing config fields.*stage_dims"):
        ModelConfig.from_dict(d)


def test_from_dict_checks_types() -> None:
    d = get_config("lite_sam_r640").to_dict()
    with pytest.raises(ValueError, match="'image_size' must be int, got 640.0"):
        ModelConfig.from_dict({**d, "image_size": 640.0})
    with pytest.raises(ValueError, match="'stage_dims' must be Tuple"):
        ModelConfig.from_dict({**d, "stage_dims": [64, "96", 128, 256]})
    with pytest.raises(ValueError, match="'name' must be str"):
        ModelConfig.from_dict({**d, "name": 3})
    cfg = ModelConfig.from_dict({**d, "mlp_ratio": 2})  # an int where a float is expected
    assert cfg.mlp_ratio == 2.0 and isinstance(cfg.mlp_ratio, float)


def test_invalid_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="multiple of the encoder stride"):
        ModelConfig(name="x", image_size=650)
    with pytest.raises(ValueError, match="ppn_top_n"):
        ModelConfig(name="x", image_size=64, ppn_top_n=49)  # 3 groups x 4 x 4 = 48 cells


def test_unknown_model_name() -> None:
    with pytest.raises(UnknownModelError, match="unknown model 'nope'.*lite_sam_r640"):
        get_config("nope")
    with pytest.raises(KeyError):
        build_model("nope")
