"""The node's /diagnostics message: rate, latency, frame counters, backend, model."""

from __future__ import annotations

from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from litesam_ros.runtime import RuntimeStats


def diagnostics_message(name: str, stats: RuntimeStats, stamp: Any, *, active: bool, backend: str,
                        model: str) -> DiagnosticArray:
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
        "rate_hz": f"{rate:.2f}",
        "latency_mean_ms": f"{mean_latency * 1e3:.1f}",
        "latency_max_ms": f"{max_latency * 1e3:.1f}",
        "frames_received": str(counts["received"]),
        "frames_processed": str(counts["processed"]),
        "frames_dropped": str(counts["dropped"]),
        "frames_invalid": str(counts["invalid"]),
        "frames_failed": str(counts["errors"]),
    }
    status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
    msg = DiagnosticArray()
    msg.header.stamp = stamp
    msg.status = [status]
    return msg
