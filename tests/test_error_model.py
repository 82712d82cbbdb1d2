"""The error model of 3D pose errors (patchpose/updater/error_model.py): what each parameter does to a pose,
seeded sampling, the fit recovering the parameters it was sampled from, the JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchpose.skeleton import H36M
from patchpose.updater.error_model import (
    MIN_FIT_FRAMES,
    ErrorModel,
    fit_error_model,
    read_error_model,
    residual_statistics,
    sample_poses,
    write_error_model,
)
from tests.dataset_factory import T_POSE_MM

LENGTHS_MM = np.linalg.norm(T_POSE_MM[H36M.limb_children] - T_POSE_MM[H36M.limb_parents], axis=-1)


def _truth(count: int, seed: int = 0) -> np.ndarray:
    """(count, 17, 3) mm absolute camera-frame poses: the T-pose's bone lengths (x 0.9..1.1 per frame), every limb
    pointing anywhere, the pelvis 3.5-6 m in front of the camera and up to 0.8 m off its axis."""
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((count, H36M.num_limbs, 3))
    directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
    bones = LENGTHS_MM[None, :, None] * directions * rng.uniform(0.9, 1.1, (count, 1, 1))
    poses = np.zeros((count, H36M.num_joints, 3))
    for k, (child, parent) in enumerate(H36M.limbs):
        poses[:, child] = poses[:, parent] + bones[:, k]
    root = np.c_[rng.uniform(-800, 800, count), rng.uniform(-400, 400, count), rng.uniform(3500, 6000, count)]
    return poses + root[:, None]


def _model(**changes) -> ErrorModel:
    values = ErrorModel.identity().to_dict()
    values.update(changes)
    return ErrorModel.from_dict(values)


def _limb_vectors(poses: np.ndarray) -> np.ndarray:
    return poses[:, H36M.limb_children] - poses[:, H36M.limb_parents]


def test_zero_noise_parameters_give_the_ground_truth_back():
    truth = _truth(50)
    sampled = sample_poses(ErrorModel.identity(), truth, np.random.default_rng(3))
    np.testing.assert_allclose(sampled, truth - truth[:, :1], atol=1e-9)


def test_a_certain_flip_negates_the_limb_s_component_along_its_ray_and_nothing_else():
    # By hand: right knee at (0, 0, 5000) mm, right ankle 450 mm straight behind it along the ray, i.e. at
    # (0, 0, 5450); the flip puts the ankle in front of the knee, at (0, 0, 4550), 900 mm closer.
    truth = T_POSE_MM + np.array([130.0, -450.0, 5000.0])  # the right knee (joint 2) at (0, 0, 5000)
    truth[3] = truth[2] + [0, 0, 450]
    shin = H36M.limbs.index((3, 2))
    flips = np.zeros(H36M.num_limbs)
    flips[shin] = 1.0
    sampled = sample_poses(_model(flip_probability=flips.tolist()), truth[None], np.random.default_rng(0))[0]
    expected = truth - truth[0]
    expected[3] -= [0, 0, 900]
    np.testing.assert_allclose(sampled, expected, atol=1e-9)


def test_depth_noise_turns_a_limb_towards_the_ray_and_image_noise_across_it():
    truth = _truth(200, seed=1)
    rays = truth[:, H36M.limb_parents] / np.linalg.norm(truth[:, H36M.limb_parents], axis=-1, keepdims=True)
    true_vectors = _limb_vectors(truth)
    depth_only = sample_poses(_model(depth_sigma_rad=[0.3] * 16), truth, np.random.default_rng(1))
    normal = np.cross(true_vectors, rays)  # the plane of the limb and its ray: depth noise stays in it
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    directions = _limb_vectors(depth_only) / np.linalg.norm(_limb_vectors(depth_only), axis=-1, keepdims=True)
    assert np.abs(np.einsum("nki,nki->nk", directions, normal)).max() < 1e-9
    image_only = sample_poses(_model(image_sigma_rad=[0.3] * 16), truth, np.random.default_rng(1))
    true_directions = true_vectors / np.linalg.norm(true_vectors, axis=-1, keepdims=True)
    towards = rays - np.einsum("nki,nki->nk", rays, true_directions)[..., None] * true_directions
    towards /= np.linalg.norm(towards, axis=-1, keepdims=True)  # the tangent that changes the limb's depth
    directions = _limb_vectors(image_only) / np.linalg.norm(_limb_vectors(image_only), axis=-1, keepdims=True)
    assert np.abs(np.einsum("nki,nki->nk", directions, towards)).max() < 1e-9
    for sampled in (depth_only, image_only):  # both keep the bone lengths and turn the limbs
        np.testing.assert_allclose(
            np.linalg.norm(_limb_vectors(sampled), axis=-1), np.linalg.norm(true_vectors, axis=-1), rtol=1e-9
        )
        assert residual_statistics(truth, sampled)["angle_deg"].mean() > 5


def test_global_scale_and_jitter():
    truth = _truth(400, seed=2)
    scaled = sample_poses(_model(log_scale_mean=float(np.log(1.1))), truth, np.random.default_rng(0))
    np.testing.assert_allclose(scaled, 1.1 * (truth - truth[:, :1]), atol=1e-9)
    jitter = [0.0] + [20.0] * 16
    jittered = sample_poses(_model(jitter_mm=jitter), truth, np.random.default_rng(0))
    offsets = jittered - (truth - truth[:, :1])
    assert np.all(offsets[:, 0] == 0)  # root-relative
    assert np.std(offsets[:, 1:]) == pytest.approx(20, rel=0.05)


def test_sampling_is_seeded():
    truth = _truth(30)
    model = _model(
        log_scale_std=0.05, flip_probability=[0.2] * 16, depth_sigma_rad=[0.2] * 16, jitter_mm=[0] + [9] * 16
    )
    first = sample_poses(model, truth, np.random.default_rng(7))
    assert np.array_equal(first, sample_poses(model, truth, np.random.default_rng(7)))
    assert not np.allclose(first, sample_poses(model, truth, np.random.default_rng(8)))


# Tolerances for 4000 frames, about 1.5-2x the worst error over six other seeds (the fit is a first-order
# deconvolution and the jitter variances are solved along the kinematic chain, so the leaves carry most of its noise):
# log scale mean and std +-0.005, flip probability +-0.03, orientation sigmas +-0.012 rad (0.7 deg), jitter
# +-1.5 mm (of 4-12 mm).
TOLERANCES = {"flip_probability": 0.03, "depth_sigma_rad": 0.012, "image_sigma_rad": 0.012, "jitter_mm": 1.5}


def test_a_fit_recovers_the_parameters_it_was_sampled_from():
    rng = np.random.default_rng(11)
    true = ErrorModel(
        log_scale_mean=0.03,
        log_scale_std=0.06,
        flip_probability=rng.uniform(0.05, 0.25, 16),
        depth_sigma_rad=rng.uniform(0.1, 0.3, 16),
        image_sigma_rad=rng.uniform(0.03, 0.12, 16),
        jitter_mm=np.r_[0, rng.uniform(4, 12, 16)],
    )
    truth = _truth(4000, seed=12)
    fitted = fit_error_model(truth, sample_poses(true, truth, np.random.default_rng(13)))
    assert fitted.log_scale_mean == pytest.approx(true.log_scale_mean, abs=0.005)
    assert fitted.log_scale_std == pytest.approx(true.log_scale_std, abs=0.005)
    for name, tolerance in TOLERANCES.items():
        np.testing.assert_allclose(getattr(fitted, name), getattr(true, name), atol=tolerance, err_msg=name)


def test_a_fit_on_perfect_predictions_finds_no_error():
    truth = _truth(200)
    fitted = fit_error_model(truth, truth - truth[:, :1] + [5, 5, 5])  # any root
    assert abs(fitted.log_scale_mean) < 1e-9 and fitted.log_scale_std < 1e-6
    assert fitted.flip_probability.max() < 1e-6 and fitted.jitter_mm.max() < 1e-6
    assert max(fitted.depth_sigma_rad.max(), fitted.image_sigma_rad.max()) < 1e-5


def test_a_fit_refuses_what_it_cannot_use():
    truth = _truth(MIN_FIT_FRAMES + 2)
    relative = truth - truth[:, :1]
    with pytest.raises(ValueError, match="at least 10 pairs .* got 9 of 12"):
        collapsed = relative.copy()
        collapsed[:3] = 0  # three collapsed poses are left out
        fit_error_model(truth, collapsed)
    with pytest.raises(ValueError, match="absolute camera-frame joints"):
        fit_error_model(relative, relative)
    with pytest.raises(ValueError, match="predicted has 11 frames but ground_truth has 12"):
        fit_error_model(truth, relative[:-1])
    with pytest.raises(ValueError, match=r"predicted must have shape \(N, 17, 3\)"):
        fit_error_model(truth, relative[:, :16])
    relative[0, 3, 1] = np.nan
    with pytest.raises(ValueError, match="predicted holds 1 NaN or inf"):
        fit_error_model(truth, relative)


_unit = st.floats(0, 1, allow_nan=False)
_sigma = st.floats(0, 3, allow_nan=False)


@settings(max_examples=25, deadline=None)
@given(
    mean=st.floats(-1, 1, allow_nan=False),
    std=_sigma,
    flips=st.lists(_unit, min_size=16, max_size=16),
    depth=st.lists(_sigma, min_size=16, max_size=16),
    image=st.lists(_sigma, min_size=16, max_size=16),
    jitter=st.lists(st.floats(0, 500, allow_nan=False), min_size=16, max_size=16),
)
def test_the_json_file_round_trips(tmp_path_factory, mean, std, flips, depth, image, jitter):
    model = ErrorModel(mean, std, flips, depth, image, [0.0, *jitter])
    path = tmp_path_factory.mktemp("json") / "params.json"
    write_error_model(path, model, {"source": "baselines", "baselines": {"lifting": "x.npz"}})
    assert read_error_model(path).equals(model)
    assert json.loads(path.read_text())["fitted_on"]["baselines"] == {"lifting": "x.npz"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.update(format_version=2), "format_version 2, expected 1"),
        (lambda d: d.pop("jitter_mm"), "lack jitter_mm"),
        (lambda d: d.update(flip_probability=[1.5] * 16), r"flip_probability must be finite and within \[0, 1\]"),
        (lambda d: d.update(depth_sigma_rad=[0.1] * 15), "depth_sigma_rad must hold 16 numbers"),
        (lambda d: d.update(jitter_mm=[1.0] * 17), "jitter_mm of the root must be 0"),
        (lambda d: d.update(log_scale_std=-0.1), "log_scale_std must be finite and >= 0"),
        (lambda d: d.update(limb_names=d["limb_names"][::-1]), "limb_names .* differ from the H36M order"),
    ],
    ids=["version", "missing", "probability", "length", "root-jitter", "negative-std", "limb-order"],
)
def test_a_bad_parameter_file_is_refused_naming_it(tmp_path, change, expected):
    path = tmp_path / "params.json"
    write_error_model(path, ErrorModel.identity(), {})
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=f"params.json: .*{expected}"):
        read_error_model(path)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="broken.json: not a readable error-model JSON file"):
        read_error_model(tmp_path / "broken.json")
