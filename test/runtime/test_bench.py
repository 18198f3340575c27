"""`litesam-engines bench` (apps/bench.py): the shipped r320 weights on ONNX Runtime CPU, a
real photo, no mocks. Timings are only checked to be measured (finite, > 0); the checks that
can fail on a wrong bench are structural: every row, the segment-everything frame equals a
direct Segmenter call with the checkpoint's thresholds, the JSON equals the printed table."""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from skimage import data as skdata

from litesam_ros.apps import engines_cli as cli
from litesam_ros.engines import create_backend
from litesam_ros.segment import Segmenter, SegmentSettings

WEIGHTS = Path(__file__).resolve().parents[2] / "weights" / "lite_sam_r320_demo.pt"
MEASURES = ("encoder", "decode per prompt (4 at once)", "decode, 1 prompt alone",
            "1 box after encoding", "segment everything frame (autoppn)",
            "node overhead (SegmentRuntime)", "encoder vs matmul floor")
TIMES = ("encoder_s", "decode_batch_s", "decode_per_prompt_s", "decode_1_prompt_s", "box_1_s",
         "everything_s", "runtime_frame_s", "node_overhead_s", "encoder_floor_s")


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(argv)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def cache(engine_cache: Path) -> Path:
    """The run's shared graph cache: the node tests have exported the demo weights' graphs."""
    return engine_cache


@pytest.fixture(scope="module")
def bench(cache: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One bench run: return code, printed table rows, header line and the JSON."""
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    rc, out, err = _run(["bench", "--model", str(WEIGHTS), "--backend", "onnxruntime",
                         "--threads", "2", "--repeats", "1", "--prompts", "4", "--cpu-floor",
                         "--cache-dir", str(cache), "--json", str(path)])
    assert rc == 0, err
    lines = out.splitlines()
    table = [line for line in lines if line.startswith("| ")][1:]  # without the title row
    cells = [[c.strip() for c in line.strip("|").split(" | ")] for line in table]
    return {"out": out, "lines": lines, "rows": cells, "json": json.loads(path.read_text())}


def test_every_row_is_printed_and_timed(bench: dict[str, Any]) -> None:
    assert [row[0] for row in bench["rows"]] == list(MEASURES)
    fig = bench["json"]["figures"]
    for key in TIMES:
        assert math.isfinite(fig[key]) and fig[key] > 0, (key, fig[key])
    assert fig["decode_prompts"] == 4
    assert fig["decode_per_prompt_s"] == pytest.approx(fig["decode_batch_s"] / 4)
    assert fig["encoder_images_per_s"] == pytest.approx(1.0 / fig["encoder_s"])
    # the runtime frame holds the Segmenter's own time plus the overhead
    assert fig["node_overhead_s"] < fig["runtime_frame_s"]
    # the stage splits come from the timed calls themselves (one here), not the warm-up
    assert 0 < fig["box_1_decode_s"] + fig["box_1_postprocess_s"] <= fig["box_1_s"]
    stages = fig["everything_stages_s"]
    assert set(stages) == {"preprocess", "encode", "decode", "postprocess"}
    assert all(v > 0 for v in stages.values()) and sum(stages.values()) <= fig["everything_s"]


def test_header_names_backend_device_and_versions(bench: dict[str, Any]) -> None:
    head = bench["json"]["header"]
    assert head["backend"] == "onnxruntime:CPUExecutionProvider:fp32"
    assert head["threads"] == 2 and head["input_size"] == 320
    assert head["config"] == "lite_sam_r320" and head["image_hw"] == [512, 512]
    assert {"torch", "onnxruntime"} <= set(head["versions"])
    line = bench["lines"][0]
    assert line.startswith("litesam-engines bench: backend onnxruntime:CPUExecutionProvider")
    for text in (head["device"], f"onnxruntime {head['versions']['onnxruntime']}",
                 "threads 2", "input 320x320", "image astronaut 512x512"):
        assert text in line


def test_json_equals_the_printed_table(bench: dict[str, Any]) -> None:
    rows = bench["json"]["rows"]
    assert [[r["measure"], r["value"], r["notes"]] for r in rows] == bench["rows"]
    fig = bench["json"]["figures"]
    # each printed time is its figure, rounded as printed
    for row, key in zip(rows, ("encoder_s", "decode_per_prompt_s", "decode_1_prompt_s",
                               "box_1_s", "everything_s", "node_overhead_s")):
        value, unit = row["value"].split()
        decimals = len(value.partition(".")[2])
        assert unit == "ms" and float(value) == pytest.approx(fig[key] * 1e3,
                                                              abs=0.51 * 10 ** -decimals)
    floor = rows[-1]["value"]
    assert float(floor.rstrip("x")) == pytest.approx(fig["encoder_s"] / fig["encoder_floor_s"],
                                                     abs=0.0051)


def test_segment_everything_row_equals_a_direct_segmenter(bench: dict[str, Any],
                                                         cache: Path) -> None:
    fig = bench["json"]["figures"]
    backend = create_backend("onnxruntime", WEIGHTS, cache_dir=cache, threads=2)
    assert backend.model_thresholds  # the shipped checkpoint records its own thresholds
    settings = SegmentSettings(strategy="autoppn", **backend.model_thresholds)
    result = Segmenter(backend, settings).segment_everything(skdata.astronaut())
    assert fig["thresholds"] == backend.model_thresholds
    assert fig["everything_strategy"] == result.strategy == "autoppn"
    assert fig["everything_masks"] == len(result) > 0
    assert fig["everything_prompts"] > 0
    note = bench["rows"][4][2]
    assert re.match(rf"{len(result)} masks kept, {fig['everything_prompts']} prompts decoded; "
                    r"checkpoint's thresholds", note), note


def test_tensorrt_without_tensorrt_fails_with_one_line(cache: Path) -> None:
    rc, out, err = _run(["bench", "--model", str(WEIGHTS), "--backend", "tensorrt",
                         "--repeats", "1", "--cache-dir", str(cache)])
    assert rc != 0 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("litesam-engines bench: backend tensorrt cannot start: ")
    assert "TensorRT" in lines[0] and "Traceback" not in err


def test_unknown_image_fails_with_one_line(cache: Path) -> None:
    rc, _, err = _run(["bench", "--model", str(WEIGHTS), "--image", "no_such_photo",
                       "--cache-dir", str(cache)])
    assert rc != 0 and len(err.strip().splitlines()) == 1
    assert "no_such_photo" in err
