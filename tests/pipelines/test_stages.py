"""StageMeter: seconds and peak memory per stage."""

import mmap
import time

import pytest

from aniportrait_lib.pipelines.stages import StageMeter, current_rss_mib, stage_key


def test_a_stage_sees_the_memory_it_held_and_gave_back():
    meter = StageMeter(interval_s=0.002)
    before = current_rss_mib()
    with meter.stage("allocate"):
        # 64 MiB of fresh pages, touched: an anonymous mapping, so that no allocator can serve it from memory
        # an earlier test freed but the process still holds (np.ones did not raise RSS after some suites)
        block = mmap.mmap(-1, 64 * 1024 * 1024)
        block.write(b"\x01" * len(block))
        time.sleep(0.25)  # the sampler thread must run at least once, even on a loaded machine
        block.close()
    record = meter.records[0]
    assert record.stage == "allocate" and record.seconds >= 0.25
    assert record.peak_rss_mib > before + 48  # the block was seen while it lived
    assert record.rss_growth_mib < 16  # and was given back


def test_stages_accumulate_and_start_ends_the_running_one():
    meter = StageMeter()
    meter.start("a")
    time.sleep(0.02)
    meter.start("b")  # ends "a"
    time.sleep(0.01)
    meter.stop()
    meter.stop()  # nothing running: no-op
    with meter.stage("a"):
        time.sleep(0.02)
    assert list(meter.seconds()) == ["a", "b"]
    assert meter.seconds()["a"] >= 0.04 and 0.01 <= meter.seconds()["b"] < 0.04
    assert [row["stage"] for row in meter.rows()] == ["a", "b"]


def test_a_failing_stage_is_still_recorded():
    meter = StageMeter()
    with pytest.raises(RuntimeError), meter.stage("fails"):
        raise RuntimeError("boom")
    assert meter._running is None and list(meter.seconds()) == ["fails"]


def test_stage_names_become_metric_names():
    assert stage_key("VAE decode + interpolation + mp4") == "vae_decode_interpolation_mp4"
    assert stage_key("Audio2Lmk (mesh + pose)") == "audio2lmk_mesh_pose"
