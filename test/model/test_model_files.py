"""load_model on every kind of bad model file: one CheckpointError line naming the file and the
cause; official files recognised by content (never by name); convert is bit-exact."""
from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Callable, Dict

import pytest
import torch

from litesam_ros.model import (CheckpointError, build_model, convert, load_model,
                               save_checkpoint, source_kind)
from litesam_ros.apps.model_cli import main as model_cli


@pytest.fixture(scope="module")
def efficient_state() -> Dict[str, torch.Tensor]:
    """EfficientSAM ViT-Ti's state dict with random weights, as the official file holds it."""
    torch.manual_seed(0)
    return dict(build_model("efficient_sam_vitt").state_dict())


def _official(path: Path, state: Dict[str, torch.Tensor]) -> Path:
    torch.save({"model": state}, path)  # EfficientSAM's file layout
    return path


def test_an_efficient_sam_file_is_recognised_by_content_not_name(
        efficient_state: Dict[str, torch.Tensor], tmp_path: Path) -> None:
    path = _official(tmp_path / "sam_vit_h_4b8939.pth", efficient_state)  # a misleading name
    loaded = load_model(path)
    assert loaded.kind == "efficient_sam" and loaded.config.name == "efficient_sam_vitt"
    state = loaded.model.state_dict()
    assert state.keys() == efficient_state.keys()
    assert all(torch.equal(state[k], v) for k, v in efficient_state.items())


def test_convert_then_reload_is_bit_exact_and_self_describing(
        efficient_state: Dict[str, torch.Tensor], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    src = _official(tmp_path / "official.pt", efficient_state)
    out = tmp_path / "converted.pt"
    assert model_cli(["convert", str(src), str(out)]) == 0
    assert "efficient_sam_vitt" in capsys.readouterr().out
    loaded = load_model(out)
    assert loaded.kind == "checkpoint" and loaded.config.name == "efficient_sam_vitt"
    assert loaded.metadata["family"] == "efficient_sam"
    state = loaded.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in efficient_state.items())
    again = tmp_path / "again.pt"
    convert(out, again)  # converting our own format again changes nothing
    assert all(torch.equal(a, b) for a, b in zip(load_model(again).model.state_dict().values(),
                                                  state.values()))


def test_convert_fp16_halves_the_file_and_keeps_the_masks(tmp_path: Path) -> None:
    """--fp16 (how a GPU run brings weights back under 16 MiB): the shipped demo weights stored
    as float16 load as float32 with the same thresholds and calibration, and give the same box
    mask on a real photo."""
    from skimage import data as skdata

    from litesam_ros.model.geometry import Geometry

    demo = Path(__file__).resolve().parents[2] / "weights" / "lite_sam_r320_demo.pt"
    out = tmp_path / "demo_fp16.pt"
    assert model_cli(["convert", str(demo), str(out), "--fp16"]) == 0
    assert out.stat().st_size < 0.55 * demo.stat().st_size
    full, half = load_model(demo), load_model(out)
    assert half.metadata["weights_dtype"] == "float16" and "weights_dtype" not in full.metadata
    assert half.thresholds == full.thresholds and half.thresholds
    assert half.iou_calibration == full.iou_calibration
    assert all(p.dtype == torch.float32 for p in half.model.parameters())
    x = Geometry.of(full.config).preprocess(skdata.astronaut())
    box = torch.tensor([[[100.0, 50.0], [300.0, 250.0]]]) * 320 / 512
    labels = torch.tensor([[2.0, 3.0]])
    with torch.no_grad():
        masks = [m.model.decode(m.model.encode(x)[0], box, labels)[0][0, 0] > 0
                 for m in (full, half)]
    inter = (masks[0] & masks[1]).sum().item()
    union = (masks[0] | masks[1]).sum().item()
    assert union > 100 and inter / union > 0.98


def _truncated(path: Path, state: Dict[str, torch.Tensor]) -> None:
    _official(path, state)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _mis_shaped(path: Path, state: Dict[str, torch.Tensor]) -> None:
    bad = dict(state)
    bad["mask_decoder.iou_token.weight"] = torch.zeros(1, 128)
    _official(path, bad)


def _missing(path: Path, state: Dict[str, torch.Tensor]) -> None:
    _official(path, {k: v for k, v in state.items() if k != "prompt_encoder.invalid_points.weight"
                     and k != "mask_decoder.iou_token.weight"})


def _unexpected(path: Path, state: Dict[str, torch.Tensor]) -> None:
    _official(path, {**state, "mask_decoder.extra_head.weight": torch.zeros(3)})


def _wrong_config(path: Path, state: Dict[str, torch.Tensor]) -> None:
    """This project's checkpoint whose config (r640 widths) disagrees with its weights (2x)."""
    torch.manual_seed(0)
    model = build_model("lite_sam_2x_r640")
    save_checkpoint(model, path)
    payload = torch.load(path, weights_only=True)
    payload["config"]["stage_dims"] = [64, 96, 128, 256]
    payload["config_name"] = payload["config"]["name"]
    torch.save(payload, path)


def _unreadable(path: Path, state: Dict[str, torch.Tensor]) -> None:
    if os.geteuid() == 0:  # root reads any mode: a socket file cannot be opened for reading
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))
        sock.close()
    else:
        path.write_bytes(b"x")
        path.chmod(0)


def _pickle_of_module(path: Path, state: Dict[str, torch.Tensor]) -> None:
    torch.save(torch.nn.Linear(2, 2), path)


def _unknown_state(path: Path, state: Dict[str, torch.Tensor]) -> None:
    torch.save({"backbone.conv1.weight": torch.zeros(2, 2)}, path)


CASES: Dict[str, tuple[Callable[[Path, Dict[str, torch.Tensor]], None], str]] = {
    "empty": (lambda p, s: p.write_bytes(b""), "empty file"),
    "truncated": (_truncated, "truncated or damaged torch.save archive"),
    "not_a_checkpoint": (lambda p, s: p.write_text("model: sam_vit_b\n" * 20),
                         "not a torch.save archive"),
    "pickle_of_something_else": (_pickle_of_module, "pickles a torch.nn.modules.linear.Linear"),
    "list_not_weights": (lambda p, s: torch.save([1, 2, 3], p), "holds a list"),
    "unknown_keys": (_unknown_state, "not a recognised checkpoint"),
    "wrong_shapes": (_mis_shaped, "mask_decoder.iou_token.weight [1, 128] in the file vs "
                                  "[1, 256] in the model"),
    "missing_keys": (_missing, "2 missing keys (prompt_encoder.invalid_points.weight, "
                               "mask_decoder.iou_token.weight)"),
    "unexpected_keys": (_unexpected, "1 unexpected keys (mask_decoder.extra_head.weight)"),
    "directory": (lambda p, s: p.mkdir(), "is a directory"),
    "unreadable": (_unreadable, "cannot read it"),
    "config_disagrees_with_weights": (_wrong_config, "weights do not fit its config"),
    "no_such_file": (lambda p, s: None, "no such file"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_model_files_give_one_line_naming_file_and_cause(
        case: str, efficient_state: Dict[str, torch.Tensor], tmp_path: Path) -> None:
    make, words = CASES[case]
    path = tmp_path / f"{case}.pt"
    make(path, efficient_state)
    with pytest.raises(CheckpointError) as err:
        load_model(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: "), msg
    assert words in msg, msg
    assert "\n" not in msg and len(msg) < 600, msg


def test_the_model_cli_reports_a_bad_file_in_one_line(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"")
    assert model_cli(["info", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"litesam-model info: {bad}: empty file, not a checkpoint"


def test_source_kind_is_the_one_file_or_name_decision(tmp_path: Path) -> None:
    assert source_kind("mobile_sam") == "registry"
    assert source_kind(str(tmp_path / "x.pth")) == "file"  # shaped like a path: a file
    (tmp_path / "mobile_sam").write_bytes(b"")
    assert source_kind(str(tmp_path / "mobile_sam")) == "file"
    with pytest.raises(ValueError, match="neither a model file nor a model name"):
        source_kind("no_such_model")
