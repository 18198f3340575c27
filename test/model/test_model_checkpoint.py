"""Checkpoint round trip and every bad-checkpoint case."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Dict

import pytest
import torch

from litesam_ros.model import (CHECKPOINT_FORMAT, CheckpointError, SamModel, load_checkpoint,
                               read_checkpoint_header, save_checkpoint)


def test_round_trip_is_bit_exact(tiny_model: SamModel, tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    save_checkpoint(tiny_model, path, meta={"trained_on": "synthetic", "steps": 12})
    model, meta = load_checkpoint(path)
    assert model.config == tiny_model.config
    assert not model.training
    ref_state, state = tiny_model.state_dict(), model.state_dict()
    assert ref_state.keys() == state.keys()
    for k, v in ref_state.items():
        assert torch.equal(v, state[k]), k
    assert meta["trained_on"] == "synthetic" and meta["steps"] == 12
    assert meta["litesam_ros_version"] and meta["torch_version"] == torch.__version__
    x = torch.randn(1, 3, 64, 64)
    coords, labels = torch.rand(3, 2, 2) * 64, torch.tensor([[1.0, -1.0], [2.0, 3.0], [0, 1]])
    with torch.no_grad():
        emb, props = tiny_model.encode(x)
        emb2, props2 = model.encode(x)
        assert torch.equal(emb, emb2)
        assert all(torch.equal(p, q) for p, q in zip(props, props2))
        assert all(torch.equal(p, q) for p, q in
                   zip(tiny_model.decode(emb, coords, labels), model.decode(emb, coords, labels)))
    cfg, meta2 = read_checkpoint_header(path)
    assert cfg == tiny_model.config and meta2 == meta
    assert not list(tmp_path.glob("*.tmp*"))  # the atomic write left nothing behind


def test_unplain_metadata_is_refused_on_save(tiny_model: SamModel, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="meta.when"):
        save_checkpoint(tiny_model, tmp_path / "m.pt", meta={"when": object()})
    assert not os.listdir(tmp_path)


def _payload(model: SamModel) -> Dict:
    return {"format": CHECKPOINT_FORMAT, "version": 1, "config_name": model.config.name,
            "config": model.config.to_dict(), "state_dict": dict(model.state_dict()),
            "metadata": {}}


def _drop_key(p: Dict) -> None:
    p["state_dict"].pop("mask_decoder.iou_token.weight")


def _extra_key(p: Dict) -> None:
    p["state_dict"]["extra.weight"] = torch.zeros(2)


def _bad_shape(p: Dict) -> None:
    p["state_dict"]["autoppn.heatmap_head.2.bias"] = torch.zeros(5)


def _wrong_config(p: Dict) -> None:  # a valid config whose shapes differ from the weights
    p["config"] = dict(p["config"], stage_dims=[8, 16, 24, 32])


CASES: Dict[str, tuple] = {
    # name: (mutate payload or None, write raw bytes or None, expected words in the message)
    "format_tag": (lambda p: p.update(format="something.else"), None, "wrong format tag"),
    "newer_version": (lambda p: p.update(version=99), None, "newer"),
    "unknown_config_field": (lambda p: p["config"].update(bogus=1), None,
                             "invalid config 'tiny_test': unknown config fields ['bogus']"),
    "config_name_mismatch": (lambda p: p.update(config_name="lite_sam_r640"), None,
                             "does not match"),
    "no_config": (lambda p: p.pop("config"), None, "lacks config"),
    "missing_key": (_drop_key, None, "1 missing keys (mask_decoder.iou_token.weight)"),
    "unexpected_key": (_extra_key, None, "1 unexpected keys (extra.weight)"),
    "mis_shaped_key": (_bad_shape, None,
                       "1 mis-shaped keys (autoppn.heatmap_head.2.bias [5] in the file vs [3] in "
                       "the model)"),
    "wrong_config": (_wrong_config, None, "mis-shaped keys"),
    "plain_state_dict": (lambda p: None, "state_dict", "plain state_dict"),
    "not_a_dict": (lambda p: None, "list", "holds a list"),
    "garbage_bytes": (None, b"\x00\x01this is not a torch file" * 10,
                      "not a torch.save archive"),
    "empty_file": (None, b"", "empty file"),
    "pickled_module": (lambda p: None, "module", "pickles a torch.nn.modules.linear.Linear"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_checkpoints_raise_one_clear_error(case: str, tiny_model: SamModel,
                                               tmp_path: Path) -> None:
    mutate, raw, words = CASES[case]
    path = tmp_path / f"{case}.pt"
    if isinstance(raw, bytes):
        path.write_bytes(raw)
    elif raw == "state_dict":
        torch.save(tiny_model.state_dict(), path)
    elif raw == "module":
        torch.save(torch.nn.Linear(2, 2), path)
    elif raw == "list":
        torch.save([1, 2, 3], path)
    else:
        payload = _payload(tiny_model)
        mutate(payload)
        torch.save(payload, path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: "), msg
    assert words in msg, msg
    assert "\n" not in msg
    assert err.value.path == str(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    missing: Callable = lambda: load_checkpoint(tmp_path / "nope.pt")  # noqa: E731
    with pytest.raises(CheckpointError, match=r"nope\.pt: no such file"):
        missing()
    with pytest.raises(CheckpointError, match="is a directory"):
        load_checkpoint(tmp_path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_map_location_is_not_called_a_bad_file(tiny_model: SamModel,
                                                           tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    save_checkpoint(tiny_model, path)
    with pytest.raises(CheckpointError, match="torch.load failed: Attempting") as err:
        load_checkpoint(path, map_location="cuda")
    assert "not a litesam_ros checkpoint" not in str(err.value)
