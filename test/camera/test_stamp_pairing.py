"""The approximate-time pairing that stands in for message_filters (not on PyPI)."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from litesam_ros.camera.stamp_pairing import StampPairing

MS = 1_000_000


def _ids(pairs):
    return [(p.primary, p.secondary) for p in pairs]


def test_exact_stamps_pair_at_once_whichever_comes_first():
    s = StampPairing(5 * MS)
    assert s.add_secondary(100 * MS, "d0") == []
    assert _ids(s.add_primary(100 * MS, "c0")) == [("c0", "d0")]  # depth was there already
    assert s.add_primary(133 * MS, "c1") == []  # waits: a closer depth may still come
    assert _ids(s.add_secondary(133 * MS, "d1")) == [("c1", "d1")]
    assert s.stats == {"paired": 2, "unpaired": 0, "out_of_order": 0}


def test_closest_within_tolerance_wins_and_far_ones_do_not_pair():
    s = StampPairing(10 * MS)
    s.add_secondary(92 * MS, "early")
    assert s.add_primary(100 * MS, "c") == []  # 8 ms away: a closer one may come
    out = s.add_secondary(103 * MS, "close")
    assert _ids(out) == [("c", "close")] and out[0].secondary_stamp_ns == 103 * MS
    assert s.add_primary(200 * MS, "lonely") == []
    assert _ids(s.add_secondary(230 * MS, "late")) == [("lonely", None)]  # 30 ms > 10 ms
    assert s.stats["unpaired"] == 1


def test_dead_depth_stream_never_stalls_colour():
    s = StampPairing(5 * MS, max_pending=2)
    s.add_secondary(0, "d0")
    assert _ids(s.add_primary(0, "c0")) == [("c0", "d0")]
    released = []
    for i in range(1, 8):  # depth stops
        released += s.add_primary(i * 33 * MS, f"c{i}")
    assert [p.primary for p in released] == [f"c{i}" for i in range(1, 6)]
    assert all(p.secondary is None for p in released) and s.pending == 2
    assert [p.primary for p in s.flush()] == ["c6", "c7"] and s.pending == 0


def test_out_of_order_messages_are_dropped_and_counted():
    s = StampPairing(5 * MS)
    s.add_secondary(100 * MS, "d1")
    assert s.add_secondary(50 * MS, "old") == []
    assert _ids(s.add_primary(100 * MS, "c1")) == [("c1", "d1")]
    assert s.add_primary(90 * MS, "c0") == []
    assert s.stats["out_of_order"] == 2


@pytest.mark.parametrize("seed", range(5))
def test_matches_brute_force_on_jittered_streams(seed):
    """30 fps colour, 15-90 fps depth with jitter and gaps: every colour frame is released
    once, in order, with the closest depth frame of the whole stream within tolerance."""
    rng = np.random.default_rng(seed)
    tol = 8 * MS
    colour = np.cumsum(rng.integers(25, 41, 60)) * MS
    depth_rate = rng.choice([11, 33, 66])
    depth = np.cumsum(rng.integers(depth_rate - 3, depth_rate + 4, 200)) * MS
    depth = depth[rng.random(len(depth)) > 0.15]  # dropped depth frames
    depth = depth[depth < colour[-1] + 100 * MS]
    events = sorted([(t + int(rng.integers(0, 20)) * MS, "c", t) for t in colour]
                    + [(t + int(rng.integers(0, 20)) * MS, "d", t) for t in depth])
    s = StampPairing(tol, max_pending=10, max_secondary=64)
    out = []
    delivered = []
    for _, kind, t in events:  # arrival order: late ones of a stream are out of order
        out += s.add_primary(t, t) if kind == "c" else s.add_secondary(t, t)
        if kind == "d" and (not delivered or t >= delivered[-1]):
            delivered.append(t)
    out += s.flush()
    depth = np.array(delivered)
    got = [p.primary for p in out]
    assert got == sorted(got) and len(set(got)) == len(got)
    for p in out:
        d = np.abs(depth - p.primary)
        best = depth[np.argmin(d)] if d.min() <= tol else None
        assert p.secondary == best, (p.primary, p.secondary, best)


def test_two_threads_release_every_primary_once():
    s = StampPairing(2 * MS, max_pending=3)
    out, lock = [], threading.Lock()

    def feed(kind):
        for i in range(2000):
            r = s.add_primary(i * MS, i) if kind == "c" else s.add_secondary(i * MS, i)
            with lock:
                out.extend(r)

    ts = [threading.Thread(target=feed, args=(k,)) for k in "cd"]
    [t.start() for t in ts]
    [t.join() for t in ts]
    out += s.flush()
    assert sorted(p.primary for p in out) == list(range(2000))
    assert s.stats["paired"] + s.stats["unpaired"] == 2000
    assert all(p.secondary is None or abs(p.secondary - p.primary) <= 2 for p in out)
