"""Shared, session-scoped fixtures: one r320 model, its ONNX graphs and INT8 graphs."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

MODEL = "lite_sam_r320"


@pytest.fixture(scope="session", autouse=True)
def _threads():
    torch.set_num_threads(2)
    for noisy in ("onnx_ir", "onnxscript"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("litesam_cache")


@pytest.fixture(scope="session")
def model_and_id():
    from litesam_ros.engines.factory import resolve_model

    return resolve_model(MODEL)


@pytest.fixture(scope="session")
def graphs_and_folder(model_and_id, cache_dir):
    from litesam_ros.engines.factory import exported_graphs

    model, model_id = model_and_id
    return exported_graphs(model, model_id, cache_dir)


@pytest.fixture(scope="session")
def graphs(graphs_and_folder):
    return graphs_and_folder[0]


@pytest.fixture(scope="session")
def int8_paths(graphs_and_folder, model_and_id):
    """INT8 graphs quantized with two calibration photos, where create_backend looks for them."""
    from litesam_ros.engines.quantize import calibration_images, quantize_model

    graphs, folder = graphs_and_folder
    return quantize_model(graphs.encoder, graphs.decoder, folder, model_and_id[0].config, "cpu",
                          calibration_images(("coffee", "chelsea")))


@pytest.fixture(scope="session")
def trt_int8_encoder(graphs_and_folder, model_and_id):
    """The `tensorrt`-target INT8 encoder (two calibration photos), where create_backend's
    TensorRT int8 path looks for it."""
    from litesam_ros.engines.quantize import calibration_images, quantize_model
    from litesam_ros.engines.tensorrt_backend import QDQ_PARTS

    graphs, folder = graphs_and_folder
    return quantize_model(graphs.encoder, graphs.decoder, folder, model_and_id[0].config,
                          "tensorrt", calibration_images(("coffee", "chelsea")),
                          QDQ_PARTS)["encoder"]


@pytest.fixture(scope="session")
def astronaut():
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)
