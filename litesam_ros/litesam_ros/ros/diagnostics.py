"""The node's /diagnostics message: rate, latency, frame counters, backend, model; with several
cameras or depth, one more status per camera ("litesam_ros: <node> camera <name>") with its own
rate, counters and depth counters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from litesam_ros.runtime import RuntimeStats


def diagnostics_message(name: str, stats: RuntimeStats, stamp: Any, *, active: bool, backend: str,
                        model: str, cameras: Sequence[tuple[str, RuntimeStats, bool]] = ()
                        ) -> DiagnosticArray:
    rate, mean_latency, max_latency = stats.rate_and_latency()
    counts = stats.snapshot()
    status = DiagnosticStatus(name=f"litesam_ros: {name}", hardware_id=backend or "none")
    if not active:
        status.level, status.message = DiagnosticStatus.WARN, "inactive"
    elif counts["errors"]:
        status.level, status.message = DiagnosticStatus.WARN, f"{counts['errors']} frames failed"
    else:
        status.level, status.message = DiagnosticStatus.OK, "segmenting"
    values = {
        "active": str(active).lower(),
        "backend": backend,
        "model": model,
        **_rate_and_frames(rate, mean_latency, counts),
        "latency_max_ms": f"{max_latency * 1e3:.1f}",
    }
    if any(has_depth for _, _, has_depth in cameras):
        values.update({k: str(v) for k, v in stats.depth_snapshot().items()})
    status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
    msg = DiagnosticArray()
    msg.header.stamp = stamp
    msg.status = [status] + [_camera_status(name, camera, cam_stats, has_depth, active, backend)
                             for camera, cam_stats, has_depth in cameras]
    return msg


def _rate_and_frames(rate: float, mean_latency: float, counts: dict[str, int]) -> dict[str, str]:
    """The values every status carries: rate, mean latency and the frame counters."""
    return {
        "rate_hz": f"{rate:.2f}",
        "latency_mean_ms": f"{mean_latency * 1e3:.1f}",
        "frames_received": str(counts["received"]),
        "frames_processed": str(counts["processed"]),
        "frames_dropped": str(counts["dropped"]),
        "frames_invalid": str(counts["invalid"]),
        "frames_failed": str(counts["errors"]),
    }


def _camera_status(node: str, camera: str, stats: RuntimeStats, has_depth: bool, active: bool,
                   backend: str) -> DiagnosticStatus:
    rate, mean_latency, _ = stats.rate_and_latency()
    counts = stats.snapshot()
    depth = stats.depth_snapshot()
    status = DiagnosticStatus(name=f"litesam_ros: {node} camera {camera}",
                              hardware_id=backend or "none")
    problems = {k: v for k, v in depth.items()
                if v and k in ("depth_unpaired", "depth_no_camera_info", "depth_size_mismatch",
                               "depth_invalid")}
    if not active:
        status.level, status.message = DiagnosticStatus.WARN, "inactive"
    elif has_depth and problems:
        status.level = DiagnosticStatus.WARN
        status.message = "3D missing: " + ", ".join(f"{k} {v}" for k, v in problems.items())
    else:
        status.level, status.message = DiagnosticStatus.OK, "segmenting"
    values = {
        **_rate_and_frames(rate, mean_latency, counts),
        "depth": str(has_depth).lower(),
    }
    if has_depth:
        values.update({k: str(v) for k, v in depth.items()})
    status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
    return status
