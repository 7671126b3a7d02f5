"""Retargeting against an independent computation of the official vid2vid maths (spec §3.6, §1.2)."""

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from aniportrait_lib.landmarks.retarget import RetargetConfig, neutral_frame, retarget, retarget_arrays

T = 9
SIZE = (512, 384)  # (W, H): not square, so the aspect ratio matters


def _matrix(euler_deg, t):
    m = np.eye(4)
    m[:3, :3] = Rotation.from_euler("xyz", euler_deg, degrees=True).as_matrix()
    m[:3, 3] = t
    return m


@pytest.fixture(scope="module")
def oracle(oracle_dir):
    with np.load(oracle_dir / "landmarks" / "landmark_oracle.npz") as data:
        return {k: data[k] for k in ("lmks3d", "trans_mat", "bs", "pose_vectors")}


@pytest.fixture(scope="module")
def source(oracle):
    """A short synthetic source video built from the oracle's real MediaPipe arrays."""
    i = np.arange(T)[:, None]
    vertex = np.arange(468)[None]
    wobble = 0.08 * np.sin(0.7 * i + 0.05 * vertex)  # (T, 468)
    lmks3d = oracle["lmks3d"][None] + wobble[..., None] * np.array([0.5, 1.0, 0.3])
    poses = np.concatenate([oracle["pose_vectors"], 0.5 * oracle["pose_vectors"], -oracle["pose_vectors"]])
    trans_mat = np.stack([oracle["trans_mat"] @ _matrix(p[:3], p[3:]) for p in poses])
    bs = oracle["bs"][None] * (1.0 + 0.5 * np.cos(0.9 * np.arange(T)))[:, None]  # minimum at frame 3
    return SimpleNamespace(lmks3d=lmks3d, trans_mat=trans_mat, bs=bs, found=np.ones(T, bool), fps=25.0,
                           image_size=SIZE, source="synthetic")  # fmt: skip


@pytest.fixture(scope="module")
def target(oracle):
    ref_mat = oracle["trans_mat"] @ _matrix([4.0, -9.0, 2.0], [0.5, -0.3, -4.0])
    return SimpleNamespace(lmks3d=oracle["lmks3d"] * 1.04 + np.array([0.1, -0.2, 0.05]), trans_mat=ref_mat)


def _spec_projection(points, model, height, width):
    """Spec §1.2 written out: P from the 16 floats, q = [p, 1]·Mᵀ·P, pixels from q_x/q_w, q_y/q_w."""
    f = 1.0 / np.tan(np.radians(63.0) / 2.0)
    near, far = 1.0, 10000.0
    flat = np.zeros(16)
    flat[0], flat[5], flat[10], flat[11] = f / (width / height), -f, (near + far) / (near - far), -1.0
    flat[14] = near * far / (near - far)
    q = np.hstack([points, np.ones((len(points), 1))]) @ model.T @ flat.reshape(4, 4).T
    return np.stack([(q[:, 0] / q[:, 3] + 1) * 0.5 * width, (q[:, 1] / q[:, 3] + 1) * 0.5 * height], 1)


def _spec_vid2vid(src, ref, height, width):
    """Spec §3.6 step by step, in plain loops."""
    k = int(np.argmin(src.bs.sum(axis=1)))
    mesh = src.lmks3d - src.lmks3d[k] + ref.lmks3d
    poses = []
    for m in src.trans_mat:
        euler = Rotation.from_matrix(m[:3, :3]).as_euler("xyz", degrees=True)
        poses.append(np.concatenate([euler, m[:3, 3] - src.trans_mat[0][:3, 3] + ref.trans_mat[:3, 3]]))
    poses = np.array(poses)
    smooth = np.array([poses[max(0, i - 1) : min(len(poses), i + 2)].mean(axis=0) for i in range(len(poses))])
    mats = [_matrix(p[:3], p[3:]) for p in smooth]
    lmks2d = np.stack([_spec_projection(mesh[i], mats[i], height, width) for i in range(len(mats))])
    return k, mesh, np.stack(mats), lmks2d


def test_official_retargeting_matches_the_spec(source, target):
    k, mesh, mats, lmks2d = _spec_vid2vid(source, target, SIZE[1], SIZE[0])
    assert neutral_frame(source.bs) == k == 3
    performance = retarget(source, target)  # default = official
    np.testing.assert_allclose(performance.mesh, mesh, atol=1e-9)
    # the performance stores pose relative to the reference matrix; MediaPipe's float32 rotation block is
    # orthonormal only to ~1e-7, so the round trip through ``ref⁻¹ · M`` and euler angles costs ~5e-7
    np.testing.assert_allclose(performance.matrices(), mats, atol=1e-5)
    np.testing.assert_allclose(performance.landmarks_px(), lmks2d, atol=1e-4)
    assert performance.image_size == SIZE and performance.fps == 25.0
    raw_mesh, raw_mats = retarget_arrays(
        source.lmks3d, source.trans_mat, source.bs, target.lmks3d, target.trans_mat
    )
    np.testing.assert_allclose(raw_mats, mats, atol=1e-12)
    np.testing.assert_allclose(raw_mesh, mesh, atol=1e-12)


def test_relative_rotation_keeps_the_reference_pose_for_an_off_axis_source(source, target):
    # the source's head is turned by a constant 20° yaw (filmed off-axis), and does not rotate
    off_axis = _matrix([0.0, 20.0, 0.0], [0.0, 0.0, 0.0])
    still = np.stack([off_axis @ source.trans_mat[0]] * T)
    still[:, :3, 3] += np.linspace(0, 1, T)[:, None] * np.array([0.5, 0.2, 0.0])  # some translation
    src = SimpleNamespace(**{**vars(source), "trans_mat": still})
    k = neutral_frame(src.bs)
    relative = retarget(src, target, RetargetConfig(rotation="relative")).matrices()
    official = retarget(src, target).matrices()
    np.testing.assert_allclose(relative[k, :3, :3], target.trans_mat[:3, :3], atol=1e-9)
    np.testing.assert_allclose(relative[:, :3, :3], np.stack([target.trans_mat[:3, :3]] * T), atol=1e-9)
    np.testing.assert_allclose(relative[k, :3, 3], target.trans_mat[:3, 3], atol=1e-9)  # anchored at k
    angle = Rotation.from_matrix(official[k, :3, :3] @ target.trans_mat[:3, :3].T).magnitude()
    assert np.degrees(angle) > 15.0  # the official transfer turns the reference's head


def test_relative_rotation_transfers_a_nod_in_the_head_frame(source, target):
    base = _matrix([0.0, 20.0, 5.0], [0.0, 0.0, -40.0])
    nods = np.array([0.0, 0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 10.0, 10.0])
    mats = np.stack([base @ _matrix([n, 0.0, 0.0], [0.0, 0.0, 0.0]) for n in nods])
    src = SimpleNamespace(**{**vars(source), "trans_mat": mats})  # neutral frame 3 is un-nodded
    relative = retarget(src, target, RetargetConfig(rotation="relative", smooth_window=1))
    np.testing.assert_allclose(relative.pose[:, 0], nods, atol=1e-9)  # pitch relative to the reference
    np.testing.assert_allclose(relative.pose[:, 1:3], 0.0, atol=1e-9)


def test_retarget_stops_at_the_first_frame_without_a_face(source, target):
    found = np.ones(T, bool)
    found[6] = False
    lmks3d = source.lmks3d.copy()
    lmks3d[6] = np.nan
    src = SimpleNamespace(**{**vars(source), "found": found, "lmks3d": lmks3d})
    assert retarget(src, target).n_frames == 6
    src.found = np.zeros(T, bool)
    with pytest.raises(ValueError, match="no face in the first frame of synthetic"):
        retarget(src, target)


def test_retarget_rejects_bad_inputs(source, target):
    with pytest.raises(ValueError, match="disagree"):
        retarget_arrays(source.lmks3d, source.trans_mat[:3], source.bs, target.lmks3d, target.trans_mat)
    bad = source.lmks3d.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        retarget_arrays(bad, source.trans_mat, source.bs, target.lmks3d, target.trans_mat)
    with pytest.raises(ValueError, match="unknown rotation mode"):
        retarget(source, target, RetargetConfig(rotation="sideways"))
