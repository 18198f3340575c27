"""litesam_node as a process with an official-format EfficientSAM file (made here with random
weights: the real files cannot be downloaded here): it publishes masks for a real photo and
answers ~/segment with the masks the pipeline computes from the same file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ros_harness import ProcessStarter, spin_until
from test_node_in_process import Client, _decode, _image_msg

TIMEOUT = 180.0


def test_node_runs_an_official_efficient_sam_file(
        ros_processes: ProcessStarter, ros_context: Any, ros_executor: Any, tmp_path: Path,
        photo: np.ndarray) -> None:
    from litesam_ros.engines import create_backend
    from litesam_ros.model import build_model
    from litesam_msgs.msg import Prompt
    from litesam_ros.segment import Prompt as SegPrompt
    from litesam_ros.segment import Segmenter, SegmentSettings
    from litesam_msgs.srv import SegmentPrompt

    torch.manual_seed(3)
    path = tmp_path / "efficient_sam_vitt.pt"
    torch.save({"model": build_model("efficient_sam_vitt").state_dict()}, path)  # official layout

    proc = ros_processes.start("litesam_node", [
        ros_processes.executable("litesam_node"), "--ros-args",
        "-p", f"model:={path}", "-p", "backend:=torch", "-p", "points_per_side:=4",
        "-p", "pred_iou_thresh:=0.0", "-p", "stability_score_thresh:=0.0",
        "-p", "max_instances:=10"])
    client = Client(ros_context, ros_executor)
    assert spin_until(ros_executor, lambda: client.camera.get_subscription_count() > 0,
                      TIMEOUT), proc.output()
    assert "official EfficientSAM file" in proc.output() or proc.alive(), proc.output()
    frame = _image_msg(photo, frame_id="cam")
    result = client.stream_until_result(frame, TIMEOUT)
    assert result.strategy == "grid"  # auto: EfficientSAM has no AutoPPN head
    assert result.header.frame_id == "cam" and (result.height, result.width) == photo.shape[:2]
    assert len(result.instances) > 0 and all(i.area > 0 for i in result.instances)

    box = [150.0, 60.0, 420.0, 470.0]
    request = SegmentPrompt.Request(image=frame, prompts=[
        Prompt(has_box=True, box=box), Prompt(points=[300.0, 200.0], labels=[1])])
    response = client.call(request, TIMEOUT)
    assert response.success, response.message
    assert len(response.result.instances) == 2

    segmenter = Segmenter(create_backend("torch", str(path)), SegmentSettings(strategy="grid"))
    want = segmenter.segment_prompts(photo, [SegPrompt(box=box),
                                             SegPrompt(points=[[300.0, 200.0]], labels=[1])])
    for inst, mask in zip(response.result.instances, want.masks):
        got = _decode(inst)
        union = (got | mask).sum()
        assert union == 0 or (got & mask).sum() / union >= 0.99
    assert proc.alive()
    assert "Traceback" not in proc.output()
