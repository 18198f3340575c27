"""The node's one-frame mailbox: newest wins, drops are counted, memory stays one frame."""

from __future__ import annotations

import threading
import time

from litesam_ros.ros.frame_slot import FrameSlot, wait_until


def test_newest_wins_and_drops_are_counted() -> None:
    slot: FrameSlot[int] = FrameSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True and slot.put(3) is True  # 1 and 2 were never taken
    assert slot.dropped == 2
    assert slot.take(timeout=0.0) == 3
    assert slot.take(timeout=0.05) is None  # nothing left: one frame at most is held


def test_take_waits_for_a_frame_and_close_wakes_it() -> None:
    slot: FrameSlot[str] = FrameSlot()
    got: list[str | None] = []
    reader = threading.Thread(target=lambda: got.append(slot.take(timeout=5.0)))
    reader.start()
    time.sleep(0.1)
    slot.put("frame")
    reader.join(2.0)
    assert got == ["frame"]

    waiter = threading.Thread(target=lambda: got.append(slot.take()))
    waiter.start()
    time.sleep(0.1)
    slot.close()
    waiter.join(2.0)
    assert not waiter.is_alive() and got[-1] is None
    slot.reopen()
    slot.put("again")
    assert slot.take(timeout=0.1) == "again"


def test_a_fast_producer_never_grows_memory() -> None:
    slot: FrameSlot[bytes] = FrameSlot()
    for i in range(10_000):
        slot.put(bytes(10))
    assert slot.dropped == 9_999 and slot.take(0.0) == bytes(10)


def test_wait_until_stops_early_when_asked() -> None:
    stop = threading.Event()
    start = time.monotonic()
    assert wait_until(start + 0.05, stop) is True
    assert time.monotonic() - start >= 0.05
    stop.set()
    assert wait_until(time.monotonic() + 10.0, stop) is False
