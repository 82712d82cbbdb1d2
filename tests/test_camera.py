"""Tests for patchpose.camera: H36M camera loading, rigid transforms, lens model, projection and rays."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from patchpose.camera import (
    H36M_CAMERA_IDS,
    H36M_CAMERA_SUBJECTS,
    Camera,
    camera_to_world,
    distort,
    h36m_camera,
    load_h36m_cameras,
    pixel_rays,
    project,
    quaternion_to_matrix,
    undistort,
    world_to_camera,
)

PROPERTY = settings(max_examples=40, deadline=None, derandomize=True)
ALL_CAMERAS = [h36m_camera("S1", camera_id) for camera_id in H36M_CAMERA_IDS]
unit_cube = arrays(np.float64, (7, 3), elements=st.floats(-1.0, 1.0))
camera_index = st.integers(0, len(H36M_CAMERA_IDS) - 1)


def _raw_json() -> dict:
    return json.loads(resources.files("patchpose").joinpath("data/h36m_cameras.json").read_text(encoding="utf-8"))


def _in_front(unit: np.ndarray) -> np.ndarray:
    """Map values in [-1, 1] to camera-frame points (mm) with Z in [500, 8000] and |X/Z|, |Y/Z| <= 0.6."""
    z = 4250.0 + 3750.0 * unit[..., 2]
    return np.stack([0.6 * unit[..., 0] * z, 0.6 * unit[..., 1] * z, z], axis=-1)


# ---------------------------------------------------------------- loading


def test_all_subjects_and_cameras_load_with_metadata_order_tangential():
    cameras = load_h36m_cameras()
    raw = _raw_json()
    assert tuple(cameras) == H36M_CAMERA_SUBJECTS
    for subject, by_id in cameras.items():
        assert tuple(by_id) == H36M_CAMERA_IDS
        for camera_id, camera in by_id.items():
            intr = raw["intrinsics"][camera_id]
            assert camera.camera_id == camera_id
            assert (camera.res_w, camera.res_h) == (intr["res_w"], intr["res_h"])
            np.testing.assert_array_equal(camera.intrinsics, [intr["fx"], intr["fy"], intr["cx"], intr["cy"]])
            # metadata.xml order [p1, p2] is the reverse of VideoPose3D's stored order.
            np.testing.assert_array_equal(camera.tangential, intr["tangential_distortion_videopose3d_order"][::-1])
            np.testing.assert_array_equal(camera.distortion[3:], intr["p_metadata_order"])
            np.testing.assert_array_equal(camera.distortion[:3], [intr["k1"], intr["k2"], intr["k3"]])
            np.testing.assert_array_equal(
                camera.centre, raw["extrinsics"][subject][camera_id]["translation_mm_camera_centre_world"]
            )
            assert not camera.rotation.flags.writeable


def test_rotation_from_quaternion_matches_derived_world_to_camera_matrix():
    raw = _raw_json()["extrinsics"]
    for subject in H36M_CAMERA_SUBJECTS:
        for camera_id in H36M_CAMERA_IDS:
            expected = np.array(raw[subject][camera_id]["derived"]["R_world_to_cam"])
            np.testing.assert_allclose(h36m_camera(subject, camera_id).rotation, expected, atol=1e-6)


def test_quaternion_to_matrix_known_rotation_and_bad_norm():
    half = np.sqrt(0.5)  # 90 degrees about +z maps x -> y.
    np.testing.assert_allclose(quaternion_to_matrix([half, 0, 0, half]) @ [1.0, 0, 0], [0, 1.0, 0], atol=1e-12)
    with pytest.raises(ValueError, match="unit length"):
        quaternion_to_matrix([1.0, 1.0, 0.0, 0.0])


def test_returned_dicts_are_copies():
    first = load_h36m_cameras()
    first["S1"].clear()
    assert tuple(load_h36m_cameras()["S1"]) == H36M_CAMERA_IDS


def test_unknown_subject_and_camera_id_raise_key_error_naming_known_ones():
    with pytest.raises(KeyError, match="S2.*known subjects: S1, S5"):
        h36m_camera("S2", "54138969")
    with pytest.raises(KeyError, match="12345.*known camera ids: 54138969"):
        h36m_camera("S1", "12345")


def test_camera_rejects_non_rotation():
    good = ALL_CAMERAS[0]
    with pytest.raises(ValueError, match="proper rotation"):
        Camera("x", good.fx, good.fy, good.cx, good.cy, good.radial, good.tangential, 2 * np.eye(3), good.centre,
               1000, 1000)  # fmt: skip


# ---------------------------------------------------------------- golden value


def test_hand_computed_projection_s1_54138969():
    """X_world = (-1000, 2500, 200) mm through S1 / 54138969 (lands near the right image edge, where the lens matters).

    C = (1841.107056, 4955.284668, 1563.445435) mm, R = derived.R_world_to_cam:
        [[-0.915361712, 0.401808376, 0.02574753], [0.051548101, 0.180373499, -0.982246497],
         [-0.399319045, -0.897783614, -0.185819441]]
    d = X - C = (-2841.107056, -2455.284668, -1363.445435)
    X_cam = R d:
        X = -0.915361712*-2841.107056 + 0.401808376*-2455.284668 + 0.02574753*-1363.445435 = 1578.9813
        Y =  0.051548101*-2841.107056 + 0.180373499*-2455.284668 - 0.982246497*-1363.445435 =  749.9175
        Z = -0.399319045*-2841.107056 - 0.897783614*-2455.284668 - 0.185819441*-1363.445435 = 3592.1772
    x = X/Z = 0.4395611,  y = Y/Z = 0.2087641,  r2 = x^2 + y^2 = 0.2367964
    k = (-0.2070989, 0.2477752, -0.003075150);  p1 = -0.001424472, p2 = -0.0009756989 (metadata order)
    radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3 = 1 - 0.0490403 + 0.0138933 - 0.0000408 = 0.9648123
    tan = p1 y + p2 x = -0.000297381 - 0.000428877 = -0.000726258
    x' = x (radial + tan) + p2 r2 = 0.4395611 * 0.9640860 - 0.000231039 = 0.4235437
    y' = y (radial + tan) + p1 r2 = 0.2087641 * 0.9640860 - 0.000337311 = 0.2009292
    u = fx x' + cx = 1145.049438 * 0.4235437 + 512.541504 = 997.5199
    v = fy y' + cy = 1143.781128 * 0.2009292 + 515.451477 = 745.2705
    """
    d = (-1000.0 - 1841.107056, 2500.0 - 4955.284668, 200.0 - 1563.445435)
    assert np.allclose(d, (-2841.107056, -2455.284668, -1363.445435), atol=1e-6)
    rows = ((-0.915361712, 0.401808376, 0.02574753), (0.051548101, 0.180373499, -0.982246497),
            (-0.399319045, -0.897783614, -0.185819441))  # fmt: skip
    cam = [sum(r * di for r, di in zip(row, d, strict=True)) for row in rows]
    assert np.allclose(cam, (1578.9813, 749.9175, 3592.1772), atol=1e-3)
    x, y = 1578.9813 / 3592.1772, 749.9175 / 3592.1772
    assert np.allclose((x, y), (0.4395611, 0.2087641), atol=1e-7)
    r2 = 0.4395611**2 + 0.2087641**2
    assert abs(r2 - 0.2367964) < 1e-7
    radial = 1 - 0.2070989 * r2 + 0.2477752 * r2**2 - 0.003075150 * r2**3
    assert abs(radial - 0.9648123) < 1e-7
    tan = -0.001424472 * 0.2087641 - 0.0009756989 * 0.4395611
    assert abs(tan - -0.000726258) < 1e-9
    x_d = 0.4395611 * (0.9648123 - 0.000726258) - 0.0009756989 * 0.2367964
    y_d = 0.2087641 * (0.9648123 - 0.000726258) - 0.001424472 * 0.2367964
    assert np.allclose((x_d, y_d), (0.4235437, 0.2009292), atol=1e-7)
    u, v = 1145.049438 * 0.4235437 + 512.541504, 1143.781128 * 0.2009292 + 515.451477
    assert np.allclose((u, v), (997.5199, 745.2705), atol=2e-4)

    pixel = h36m_camera("S1", "54138969").project_world(np.array([-1000.0, 2500.0, 200.0]))
    np.testing.assert_allclose(pixel, (997.5199, 745.2705), atol=1e-3)


# ---------------------------------------------------------------- lens model


def _videopose3d_distort(xy: np.ndarray, radial: np.ndarray, tangential_vp3d: np.ndarray) -> np.ndarray:
    """The same model written in VideoPose3D's reversed tangential order [pA, pB] = [p2, p1]."""
    r2 = np.sum(xy**2, axis=-1, keepdims=True)
    radial_factor = 1 + radial[0] * r2 + radial[1] * r2**2 + radial[2] * r2**3
    tan = np.sum(tangential_vp3d * xy, axis=-1, keepdims=True)
    return xy * (radial_factor + tan) + tangential_vp3d * r2


@PROPERTY
@given(unit_cube, camera_index)
def test_distort_agrees_with_videopose3d_order_formula(unit, index):
    camera, xy = ALL_CAMERAS[index], 0.6 * unit[:, :2]
    expected = _videopose3d_distort(xy, camera.radial, camera.tangential[::-1])
    np.testing.assert_allclose(distort(xy, camera.radial, camera.tangential), expected, atol=1e-15)


@PROPERTY
@given(unit_cube, camera_index)
def test_distort_then_undistort_round_trip(unit, index):
    camera, xy = ALL_CAMERAS[index], 0.6 * unit[:, :2]
    recovered = undistort(distort(xy, camera.radial, camera.tangential), camera.radial, camera.tangential)
    np.testing.assert_allclose(recovered, xy, atol=1e-10)


@pytest.mark.parametrize("camera", ALL_CAMERAS, ids=H36M_CAMERA_IDS)
def test_undistort_accurate_over_every_pixel_of_the_image(camera):
    u, v = np.meshgrid(np.arange(-0.5, camera.res_w), np.arange(-0.5, camera.res_h), indexing="xy")
    distorted = (np.stack([u, v], axis=-1) - [camera.cx, camera.cy]) / [camera.fx, camera.fy]
    undistorted = undistort(distorted, camera.radial, camera.tangential)
    residual = distort(undistorted, camera.radial, camera.tangential) - distorted
    assert np.abs(residual).max() < 1e-12
    # Known truth: a dense grid in undistorted space spanning the whole image's undistorted extent.
    low, high = undistorted.reshape(-1, 2).min(axis=0), undistorted.reshape(-1, 2).max(axis=0)
    truth = np.stack(np.meshgrid(np.linspace(low[0], high[0], 700), np.linspace(low[1], high[1], 700)), axis=-1)
    recovered = undistort(distort(truth, camera.radial, camera.tangential), camera.radial, camera.tangential)
    assert np.abs(recovered - truth).max() < 1e-6


def test_undistort_reports_unconverged_points_and_propagates_nan():
    camera = ALL_CAMERAS[0]
    points = np.array([[0.0, 0.0], [0.4, 0.4], [0.3, -0.1]])  # the centre is a fixed point: converged at step 0
    with pytest.raises(ValueError, match="did not converge for 2 of 3 points"):
        undistort(points, camera.radial, camera.tangential, iterations=1)
    with_nan = undistort(np.array([[np.nan, 0.1], [0.2, 0.1]]), camera.radial, camera.tangential)
    assert np.all(np.isnan(with_nan[0])) and np.all(np.isfinite(with_nan[1]))
    with pytest.raises(ValueError, match="iterations must be >= 1"):
        undistort(points, camera.radial, camera.tangential, iterations=0)


def test_zero_distortion_leaves_coordinates_alone():
    xy = np.array([[0.3, -0.2], [0.0, 0.0]])
    np.testing.assert_array_equal(distort(xy, np.zeros(3), np.zeros(2)), xy)
    np.testing.assert_array_equal(undistort(xy, np.zeros(3), np.zeros(2)), xy)


# ---------------------------------------------------------------- transforms, projection, rays


@PROPERTY
@given(
    unit_cube, arrays(np.float64, 4, elements=st.floats(0.1, 1.0)), arrays(np.float64, 3, elements=st.floats(-5e3, 5e3))
)
def test_world_camera_world_round_trip(unit, quaternion, centre):
    rotation = quaternion_to_matrix(quaternion / np.linalg.norm(quaternion))
    points = 3000.0 * unit
    camera_frame = world_to_camera(points, rotation, centre)
    np.testing.assert_allclose(np.linalg.norm(camera_frame, axis=-1), np.linalg.norm(points - centre, axis=-1))
    np.testing.assert_allclose(camera_to_world(camera_frame, rotation, centre), points, atol=1e-9)


@PROPERTY
@given(unit_cube, camera_index)
def test_project_with_zero_distortion_is_pinhole(unit, index):
    camera, points = ALL_CAMERAS[index], _in_front(unit)
    pixels = project(points, camera.intrinsics, np.zeros(5))
    expected_u = camera.fx * points[:, 0] / points[:, 2] + camera.cx
    expected_v = camera.fy * points[:, 1] / points[:, 2] + camera.cy
    np.testing.assert_allclose(pixels, np.stack([expected_u, expected_v], axis=-1), rtol=0, atol=1e-9)


@PROPERTY
@given(unit_cube, camera_index)
def test_project_then_pixel_rays_recovers_the_direction(unit, index):
    camera, points = ALL_CAMERAS[index], _in_front(unit)
    rays = pixel_rays(project(points, camera.intrinsics, camera.distortion), camera.intrinsics, camera.distortion)
    np.testing.assert_allclose(np.linalg.norm(rays, axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(rays, points / np.linalg.norm(points, axis=-1, keepdims=True), atol=1e-10)


def test_per_frame_parameters_broadcast_over_joints():
    points = _in_front(np.random.default_rng(0).uniform(-1, 1, size=(4, 17, 3)))
    intrinsics = np.stack([c.intrinsics for c in ALL_CAMERAS])  # (4, 4): one camera per frame
    distortion = np.stack([c.distortion for c in ALL_CAMERAS])  # (4, 5)
    batched = project(points, intrinsics, distortion)
    assert batched.shape == (4, 17, 2)
    for frame, camera in enumerate(ALL_CAMERAS):
        np.testing.assert_array_equal(batched[frame], project(points[frame], camera.intrinsics, camera.distortion))
    rays = pixel_rays(batched, intrinsics, distortion)
    np.testing.assert_allclose(rays, points / np.linalg.norm(points, axis=-1, keepdims=True), atol=1e-10)
    with pytest.raises(ValueError, match="intrinsics batch shape \\(3,\\)"):
        project(points, intrinsics[:3], distortion)
    with pytest.raises(ValueError, match="distortion must have shape \\(..., 5\\)"):
        project(points, intrinsics, distortion[:, :4])


def test_project_world_equals_manual_chain():
    camera = h36m_camera("S9", "60457274")
    points = np.array([[0.0, 0.0, 1000.0], [200.0, -300.0, 1500.0]])
    expected = project(world_to_camera(points, camera.rotation, camera.centre), camera.intrinsics, camera.distortion)
    np.testing.assert_array_equal(camera.project_world(points), expected)


def test_points_at_or_behind_camera_raise_naming_how_many():
    points = np.array([[0.0, 0.0, 1000.0], [1.0, 2.0, 0.0], [1.0, 2.0, -5.0], [0.0, 0.0, 10.0]])
    with pytest.raises(ValueError, match="2 of 4 points are at or behind the camera"):
        project(points, ALL_CAMERAS[0].intrinsics, ALL_CAMERAS[0].distortion)
    with pytest.raises(ValueError, match="1 of 1 points"):
        ALL_CAMERAS[0].project_world(ALL_CAMERAS[0].centre + [0.0, 0.0, 1.0] @ ALL_CAMERAS[0].rotation * -100.0)


def test_bad_point_shape_is_named():
    with pytest.raises(ValueError, match="points_cam must have shape \\(..., 3\\)"):
        project(np.ones((5, 2)), ALL_CAMERAS[0].intrinsics, ALL_CAMERAS[0].distortion)
