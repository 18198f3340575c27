"""Camera layout from parameters (litesam_ros.ros.cameras, plain Python)."""

from __future__ import annotations

import pytest

from litesam_ros.ros.cameras import cameras_from_values

BASE = {"image_topic": "image", "image_topics": [], "camera_names": [], "depth_topic": "",
        "camera_info_topic": "", "depth_topics": [], "camera_info_topics": []}


def cams(**kw):  # type: ignore[no-untyped-def]
    return cameras_from_values({**BASE, **kw})


def test_single_camera_is_exactly_as_before() -> None:
    (c,) = cams()
    assert (c.name, c.image_topic, c.prefix, c.source, c.has_depth) == ("", "image", "~/",
                                                                        "image", False)
    (c,) = cams(image_topics=["/cam/color"], depth_topic="/cam/depth",
                camera_info_topic="/cam/info")
    assert (c.image_topic, c.depth_topic, c.camera_info_topic, c.prefix) == (
        "/cam/color", "/cam/depth", "/cam/info", "~/")


def test_names_from_first_namespace_segment_else_whole_topic_else_explicit() -> None:
    a, b = cams(image_topics=["/front/color/image_raw", "rear/color/image_raw"])
    assert (a.name, b.name, a.prefix, b.source) == ("front", "rear", "~/front/", "rear")
    a, b = cams(image_topics=["/cam/left", "/cam/right"])  # same first segment
    assert (a.name, b.name) == ("cam_left", "cam_right")
    a, b = cams(image_topics=["image_a", "/cam/image_b"])  # one has a single segment
    assert (a.name, b.name) == ("image_a", "cam_image_b")
    a, b = cams(image_topics=["/x/a", "/y/b"], camera_names=["left", "right"],
                depth_topics=["/x/depth", ""], camera_info_topics=["/x/info", ""])
    assert (a.name, a.depth_topic, a.camera_info_topic, b.has_depth) == (
        "left", "/x/depth", "/x/info", False)


@pytest.mark.parametrize("kw, says", [
    ({"image_topics": ["/a/i", "/b/i"], "camera_names": ["one"]}, "camera_names has 1"),
    ({"image_topics": ["/a/i", "/b/i"], "depth_topics": ["/a/d"]}, "depth_topics has 1"),
    ({"image_topics": ["/a/i", "/b/i"], "depth_topic": "/d"}, "depth_topics"),
    ({"image_topics": ["/a/i", "/b/i"], "camera_names": ["x", "x"]}, "not distinct"),
    ({"image_topics": ["/a/i", "/b/i"], "camera_names": ["x-1", "y"]}, "ROS name"),
    ({"image_topics": ["/a/i", ""]}, "empty entry"),
])
def test_inconsistent_camera_parameters_are_refused(kw: dict, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        cams(**kw)
