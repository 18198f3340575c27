"""The runtime's newest-frame slots: newest wins per source, drops are counted, memory stays one
frame per source, sources are served round-robin, also when taken several at once (a batch)."""

from __future__ import annotations

import threading
import time

import pytest

from litesam_ros.runtime import FrameSlots, wait_until


def test_newest_wins_and_drops_are_counted() -> None:
    slots: FrameSlots[int] = FrameSlots()
    assert slots.put("cam", 1) is False
    assert slots.put("cam", 2) is True and slots.put("cam", 3) is True  # 1, 2 never taken
    assert slots.dropped == 2
    assert slots.take(timeout=0.0) == 3
    assert slots.take(timeout=0.05) is None  # nothing left: one frame at most is held


def test_take_waits_for_a_frame_and_close_wakes_it() -> None:
    slots: FrameSlots[str] = FrameSlots()
    got: list[str | None] = []
    reader = threading.Thread(target=lambda: got.append(slots.take(timeout=5.0)))
    reader.start()
    time.sleep(0.1)
    slots.put("cam", "frame")
    reader.join(2.0)
    assert got == ["frame"]

    waiter = threading.Thread(target=lambda: got.append(slots.take()))
    waiter.start()
    time.sleep(0.1)
    slots.close()
    waiter.join(2.0)
    assert not waiter.is_alive() and got[-1] is None
    slots.reopen()
    slots.put("cam", "again")
    assert slots.take(timeout=0.1) == "again"


def test_a_fast_producer_never_grows_memory() -> None:
    slots: FrameSlots[bytes] = FrameSlots()
    for _ in range(10_000):
        slots.put("a", bytes(10))
        slots.put("b", bytes(10))
    assert slots.pending() == 2
    assert slots.dropped == 2 * 9_999


def test_sources_are_served_in_turn() -> None:
    """A source that always has a frame waiting cannot starve the others."""
    slots: FrameSlots[str] = FrameSlots()
    taken: list[str] = []
    for i in range(6):
        slots.put("fast", f"fast{i}")
        if i % 3 == 0:
            slots.put("slow", f"slow{i}")
        slots.put("third", f"third{i}")
        item = slots.take(timeout=0.0)
        assert item is not None
        taken.append(item)
    # Order of first put: fast, slow, third; each take starts after the last served source.
    assert taken == ["fast0", "slow0", "third2", "fast3", "slow3", "third5"]
    assert slots.sources == ["fast", "slow", "third"]
    assert slots.pending() == 1  # fast5 waits; slow and third have nothing new
    assert slots.dropped == 7    # fast1, fast2, fast4, third0, third1, third3, third4


def test_a_source_that_appears_later_is_served_next() -> None:
    slots: FrameSlots[str] = FrameSlots()
    slots.put("a", "a1")
    assert slots.take(timeout=0.0) == "a1"  # only "a" known yet
    slots.put("a", "a2")
    slots.put("b", "b1")
    assert slots.take(timeout=0.0) == "b1"  # "a" was served last
    assert slots.take(timeout=0.0) == "a2"


def test_take_many_takes_one_per_source_in_round_robin_order() -> None:
    """take_many(n) gives what n takes would, in that order, and moves the turn as they would."""
    slots: FrameSlots[str] = FrameSlots()
    for source in ("a", "b", "c", "d"):
        slots.put(source, f"{source}1")
    assert slots.take_many(2, timeout=0.0) == ["a1", "b1"]
    slots.put("a", "a2")  # a newer frame of a source already served this round
    slots.put("a", "a3")  # newest wins inside the slot, as for take()
    assert slots.take_many(3, timeout=0.0) == ["c1", "d1", "a3"]  # the turn goes on after b
    assert slots.take_many(4, timeout=0.0) == []
    for source in ("d", "b"):
        slots.put(source, f"{source}2")
    assert slots.take_many(4, timeout=0.0) == ["b2", "d2"]  # after a: b, then d
    assert slots.dropped == 1 and slots.pending() == 0


def test_take_many_equals_repeated_take_and_never_starves_a_source() -> None:
    """The same puts, taken one by one and in batches of 2: the same order of items."""
    def run(batch: int) -> list[str]:
        slots: FrameSlots[str] = FrameSlots()
        out: list[str] = []
        for i in range(12):
            slots.put("fast", f"fast{i}")
            if i % 4 == 0:
                slots.put("slow", f"slow{i}")
            if i % 2 == 0:
                slots.put("mid", f"mid{i}")
            if i % 2 == 1:  # take every other step
                if batch == 1:
                    while (item := slots.take(timeout=0.0)) is not None:
                        out.append(item)
                else:
                    while items := slots.take_many(batch, timeout=0.0):
                        out.extend(items)
        return out

    one, two = run(1), run(2)
    assert one == two
    assert {"slow0", "slow4", "slow8"} <= set(two)  # the slow source is always served


def test_take_many_waits_for_the_first_and_close_wakes_it() -> None:
    slots: FrameSlots[str] = FrameSlots()
    assert slots.take_many(3, timeout=0.05) == []
    got: list[list[str]] = []
    reader = threading.Thread(target=lambda: got.append(slots.take_many(3, timeout=5.0)))
    reader.start()
    time.sleep(0.1)
    slots.put("cam", "frame")
    reader.join(2.0)
    assert got == [["frame"]]  # it does not wait for the batch to fill
    waiter = threading.Thread(target=lambda: got.append(slots.take_many(2)))
    waiter.start()
    time.sleep(0.1)
    slots.close()
    waiter.join(2.0)
    assert not waiter.is_alive() and got[-1] == []
    with pytest.raises(ValueError):
        slots.take_many(0)


def test_clear_forgets_waiting_frames_without_counting_drops() -> None:
    slots: FrameSlots[int] = FrameSlots()
    slots.put("a", 1)
    slots.put("b", 2)
    assert slots.clear("a") == 1 and slots.clear("a") == 0
    assert slots.take(timeout=0.0) == 2 and slots.take(timeout=0.0) is None
    slots.put("a", 3)
    slots.put("b", 4)
    assert slots.clear() == 2
    assert slots.pending() == 0 and slots.dropped == 0


def test_wait_until_stops_early_when_asked() -> None:
    stop = threading.Event()
    start = time.monotonic()
    assert wait_until(start + 0.05, stop) is True
    assert time.monotonic() - start >= 0.05
    stop.set()
    assert wait_until(time.monotonic() + 10.0, stop) is False
