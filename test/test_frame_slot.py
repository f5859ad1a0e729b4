"""LatestFrameSlots: newest frame per camera, drops counted, fair round-robin batches, clean wake-up."""

import threading
import time

import pytest

from depth_anything_ros.ros.frame_slot import LatestFrameSlots


def test_newest_frame_wins_and_replaced_frames_are_dropped():
    slots = LatestFrameSlots(["cam"])
    assert slots.put("cam", 1) is False
    assert slots.put("cam", 2) is True
    assert slots.put("cam", 3) is True
    assert slots.take(timeout=0) == [("cam", 3)]
    assert slots.received == {"cam": 3}
    assert slots.dropped == {"cam": 2}
    assert slots.take(timeout=0.01) == []


def test_take_waits_for_a_frame_from_another_thread():
    slots = LatestFrameSlots(["cam"])
    timer = threading.Timer(0.05, slots.put, args=("cam", "frame"))
    timer.start()
    assert slots.take(timeout=10) == [("cam", "frame")]
    timer.join()


def test_batch_holds_one_frame_per_camera_with_pending_input():
    slots = LatestFrameSlots(["a", "b", "c"])
    slots.put("c", "c1")
    slots.put("a", "a1")
    slots.put("a", "a2")
    assert slots.take(timeout=0) == [("a", "a2"), ("c", "c1")]
    assert slots.dropped == {"a": 1, "b": 0, "c": 0}


def test_round_robin_keeps_a_fast_camera_from_starving_a_slow_one():
    slots = LatestFrameSlots(["fast", "slow", "other"], max_batch=1)
    served = []
    slots.put("slow", "s0")
    for i in range(6):
        slots.put("fast", f"f{i}")  # the fast camera always has a frame pending
        served += [camera for camera, _ in slots.take(timeout=0)]
        if i == 2:
            slots.put("other", "o0")
    assert "slow" in served[:2]
    assert "other" in served[3:5]
    assert served.count("fast") >= 3


def test_close_wakes_a_waiting_take_and_reopen_restores_it():
    slots = LatestFrameSlots(["cam"])
    result = []
    thread = threading.Thread(target=lambda: result.append(slots.take(timeout=30)))
    thread.start()
    time.sleep(0.05)
    slots.close()
    thread.join(timeout=10)
    assert not thread.is_alive() and result == [[]]
    slots.put("cam", 1)
    assert slots.take(timeout=0) == []
    slots.reopen()
    assert slots.take(timeout=0) == [("cam", 1)]


def test_clear_counts_pending_frames_as_dropped():
    slots = LatestFrameSlots(["a", "b"])
    slots.put("a", 1)
    slots.put("b", 2)
    assert slots.clear() == 2
    assert slots.dropped == {"a": 1, "b": 1}
    assert slots.take(timeout=0) == []


@pytest.mark.parametrize("cameras, max_batch, match", [([], 0, "at least one"), (["a", "a"], 0, "unique"),
                                                        (["a"], -1, "max_batch")])
def test_invalid_construction_is_rejected(cameras, max_batch, match):
    with pytest.raises(ValueError, match=match):
        LatestFrameSlots(cameras, max_batch=max_batch)


def test_unknown_camera_is_rejected():
    with pytest.raises(KeyError, match="unknown camera"):
        LatestFrameSlots(["a"]).put("b", 1)
