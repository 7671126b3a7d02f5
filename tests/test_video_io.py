import numpy as np
import pytest

from aniportrait_lib.video_io import VideoWriter, probe_video, read_frames, write_video


def _frames(n, h=48, w=64):
    ramp = np.linspace(0, 255, w, dtype=np.uint8)[None, :, None]
    return [np.broadcast_to(np.roll(ramp, 4 * i, axis=1), (h, w, 3)).copy() for i in range(n)]


def test_round_trip_with_audio(tmp_path):
    rate = 16_000
    audio = 0.3 * np.sin(2 * np.pi * 220 * np.arange(rate) / rate).astype(np.float32)  # 1.0 s
    path = write_video(tmp_path / "clip.mp4", _frames(25), fps=25, audio=(audio, rate))
    info = probe_video(path)
    assert (info.width, info.height, info.num_frames) == (64, 48, 25)
    assert info.fps == pytest.approx(25)
    assert info.audio_sample_rate == rate
    assert info.audio_duration == pytest.approx(1.0, abs=0.05)
    frames = list(read_frames(path))
    assert len(frames) == 25 and frames[0].shape == (48, 64, 3)
    assert np.abs(frames[3].astype(int) - _frames(25)[3]).mean() < 4  # lossy but close


def test_odd_sizes_are_padded(tmp_path):
    path = write_video(tmp_path / "odd.mp4", _frames(3, h=31, w=45), fps=10)
    info = probe_video(path)
    assert (info.width, info.height) == (46, 32)


def test_failure_leaves_no_file(tmp_path):
    dest = tmp_path / "never.mp4"
    with pytest.raises(RuntimeError, match="killed"):
        with VideoWriter(dest, fps=10) as writer:
            writer.write(_frames(1)[0])
            raise RuntimeError("killed mid-video")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="no frame"):
        with VideoWriter(dest, fps=10):
            pass
    assert list(tmp_path.iterdir()) == []


def test_bad_frames_and_files_get_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        with VideoWriter(tmp_path / "x.mp4", fps=10) as writer:
            writer.write(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="frame 1"):
        with VideoWriter(tmp_path / "y.mp4", fps=10) as writer:
            writer.write(np.zeros((8, 8, 3), np.uint8))
            writer.write(np.zeros((8, 10, 3), np.uint8))
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        probe_video(tmp_path / "empty.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 10)
    with pytest.raises(ValueError, match="junk.mp4"):
        list(read_frames(tmp_path / "junk.mp4"))
    with pytest.raises(FileNotFoundError):
        probe_video(tmp_path / "missing.mp4")
