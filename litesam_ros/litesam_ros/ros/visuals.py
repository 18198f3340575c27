"""3D outputs for rviz and point-cloud consumers: the instances' points as PointCloud2 and their
boxes and labels as a MarkerArray (message building only; the numbers come from the runtime)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from litesam_ros.segment.overlay import id_colors

#: PointCloud2 layout of ~/points: x, y, z float32 (metres, optical frame), instance uint32
#: (the InstanceMask id of the point's instance).
POINT_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("instance", "<u4")])
_FIELDS = (("x", 0), ("y", 4), ("z", 8), ("instance", 12))

# The 12 edges of a box as corner index pairs; corner bit 0 = x max, bit 1 = y max, bit 2 = z.
_EDGES = [(a, b) for a in range(8) for b in range(8) if a < b and bin(a ^ b).count("1") == 1]


def points_cloud(header: Any, points: Sequence[np.ndarray | None]) -> Any:
    """PointCloud2 of every instance's points (points[i] belongs to instance id i + 1)."""
    from sensor_msgs.msg import PointCloud2, PointField

    chunks = []
    for i, pts in enumerate(points):
        if pts is None or len(pts) == 0:
            continue
        chunk = np.empty(len(pts), POINT_DTYPE)
        chunk["x"], chunk["y"], chunk["z"] = pts[:, 0], pts[:, 1], pts[:, 2]
        chunk["instance"] = i + 1
        chunks.append(chunk)
    cloud = np.concatenate(chunks) if chunks else np.empty(0, POINT_DTYPE)
    msg = PointCloud2()
    msg.header = header
    msg.height, msg.width = 1, len(cloud)
    msg.fields = [PointField(name=name, offset=offset,
                             datatype=PointField.UINT32 if name == "instance"
                             else PointField.FLOAT32, count=1)
                  for name, offset in _FIELDS]
    msg.is_bigendian = False
    msg.point_step = POINT_DTYPE.itemsize
    msg.row_step = msg.point_step * len(cloud)
    msg.is_dense = True
    msg.data = cloud.tobytes()
    return msg


def markers(header: Any, instances: Sequence[Any]) -> Any:
    """MarkerArray: a DELETEALL (clears the previous frame's), then per instance with depth a
    LINE_LIST box (namespace "boxes") and a TEXT_VIEW_FACING label at its centroid ("labels":
    "id 3 / track 17 / 0.92"); colours by track id when tracked, else by id, as the overlay.
    `instances`: litesam_msgs/Instance3D messages."""
    from geometry_msgs.msg import Point
    from std_msgs.msg import ColorRGBA
    from visualization_msgs.msg import Marker, MarkerArray

    out = MarkerArray()
    clear = Marker()
    clear.header = header
    clear.action = Marker.DELETEALL
    out.markers.append(clear)
    for inst in instances:
        if inst.num_points == 0:
            continue
        key = inst.track_id or inst.id
        r, g, b = (int(c) / 255.0 for c in id_colors([key])[0])
        colour = ColorRGBA(r=r, g=g, b=b, a=1.0)
        lo = (inst.box_min.x, inst.box_min.y, inst.box_min.z)
        hi = (inst.box_max.x, inst.box_max.y, inst.box_max.z)
        corners = [Point(x=float(hi[0] if c & 1 else lo[0]), y=float(hi[1] if c & 2 else lo[1]),
                         z=float(hi[2] if c & 4 else lo[2])) for c in range(8)]
        box = Marker()
        box.header, box.ns, box.id = header, "boxes", int(inst.id)
        box.type, box.action = Marker.LINE_LIST, Marker.ADD
        box.pose.orientation.w = 1.0
        box.scale.x = 0.005
        box.color = colour
        box.points = [corners[i] for edge in _EDGES for i in edge]
        out.markers.append(box)
        text = Marker()
        text.header, text.ns, text.id = header, "labels", int(inst.id)
        text.type, text.action = Marker.TEXT_VIEW_FACING, Marker.ADD
        text.pose.position = inst.centroid
        text.pose.orientation.w = 1.0
        text.scale.z = 0.05
        text.color = colour
        track = f" / track {inst.track_id}" if inst.track_id else ""
        text.text = f"id {inst.id}{track} / {inst.score:.2f}"
        out.markers.append(text)
    return out


__all__ = ["POINT_DTYPE", "markers", "points_cloud"]
