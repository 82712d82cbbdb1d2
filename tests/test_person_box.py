"""The person box of each split (dataset.person_box): ground truth untouched, the jittered box's geometry,
draws and sizes, the config contract, and that one split's box never reaches the other split's jobs."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchpose import person_box as person_box_module
from patchpose.camera import project
from patchpose.config import ConfigError, validate_config
from patchpose.crop_geometry import apply_affine, invert_affine, jittered_person_crop_affine, person_crop_affine
from patchpose.dataset_format import open_dataset
from patchpose.h36m.extract import H36MSettings, extract_sequence
from patchpose.h36m.workflow import settings_for_sequence, settings_for_split
from patchpose.person_box import GROUND_TRUTH, box_affines, check_box, frame_draws, split_boxes
from patchpose.synthetic.params import world_params_for_split
from patchpose.synthetic.split import render_split
from tests.conftest import default_config
from tests.h36m_fixture import build_release

JITTERED = {"kind": "jittered", "centre_sigma": 0.1, "scale_sigma": 0.1, "seed": 0}


def _joints(num: int, seed: int = 0) -> np.ndarray:
    """(num, 17, 2) px: a person about 120 x 300 px somewhere in a 1000 px image."""
    rng = np.random.default_rng(seed)
    offsets = rng.uniform([-60, -150], [60, 150], size=(1, 17, 2))
    return offsets + rng.uniform(200, 800, size=(num, 1, 2)) + rng.normal(0, 5, size=(num, 17, 2))


def _names(num: int) -> list[tuple]:
    return [("S9", "Walking", 1, 54138969, pose) for pose in range(num)]


def _inside(affines: np.ndarray, joints: np.ndarray, frame_size: int, tolerance: float = 1e-6) -> bool:
    crop = apply_affine(invert_affine(affines), joints)
    return bool(crop.min() >= -0.5 - tolerance and crop.max() <= frame_size - 0.5 + tolerance)


# --- the jittered crop's geometry (crop_geometry.jittered_person_crop_affine) ---


def test_hand_worked_jittered_crop():
    # Joints span x 100..300, y 200..260: ground-truth crop centre (200, 230), side S = 1.5 x 200 = 300 px.
    joints = np.array([[[100.0, 200.0], [300.0, 260.0], [150.0, 230.0]]])
    # Shift (0.1, -0.05) S = (30, -15) px, side x 1.2 = 360 px: centre (230, 215), inside the clamp limits
    # x 300 - 180 .. 100 + 180 and y 260 - 180 .. 200 + 180. Resampled to 100 px: s = 3.6,
    # offset = centre - 180 + 1.8 = (51.8, 36.8).
    affine = jittered_person_crop_affine(joints, 1.5, 100, np.array([[0.1, -0.05]]), np.log([1.2]))
    np.testing.assert_allclose(affine[0], [[3.6, 0, 51.8], [0, 3.6, 36.8]])


def test_hand_worked_clamping_keeps_every_joint_inside():
    joints = np.array([[[100.0, 200.0], [300.0, 260.0], [150.0, 230.0]]])
    # A shift of one whole side to the right (centre x 500) is clamped to 100 + 150 = 250: joint x = 100 sits on
    # the crop's left edge (crop px -0.5).
    affine = jittered_person_crop_affine(joints, 1.5, 100, np.array([[1.0, 0.0]]), np.zeros(1))
    np.testing.assert_allclose(affine[0], [[3, 0, 101.5], [0, 3, 81.5]])
    np.testing.assert_allclose(apply_affine(invert_affine(affine), joints)[0, 0, 0], -0.5)
    # Halving the side (150 px) would cut the 200 px wide joints: the side stays 200 and the centre x is the
    # only one that fits (200); y keeps its 230.
    affine = jittered_person_crop_affine(joints, 1.5, 100, np.array([[0.3, 0.0]]), np.log([0.5]))
    np.testing.assert_allclose(affine[0], [[2, 0, 101], [0, 2, 131]])


def test_zero_noise_is_the_ground_truth_crop():
    joints = _joints(50)
    zero = jittered_person_crop_affine(joints, 1.25, 128, np.zeros((50, 2)), np.zeros(50))
    np.testing.assert_array_equal(zero, person_crop_affine(joints, 1.25, 128))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-3, 3), min_size=3, max_size=3),
    st.floats(1.0, 2.0),
    st.integers(16, 256),
    st.integers(0, 10_000),
)
def test_every_joint_stays_inside_whatever_the_noise(noise, margin, frame_size, seed):
    joints = _joints(1, seed)
    affine = jittered_person_crop_affine(joints, margin, frame_size, np.array([noise[:2]]), np.array([noise[2]]))
    assert _inside(affine, joints, frame_size)
    assert np.linalg.det(affine[0, :, :2]) > 0


def test_bad_noise_is_refused():
    joints = _joints(2)
    with pytest.raises(ValueError, match=r"centre_noise must be \(2, 2\)"):
        jittered_person_crop_affine(joints, 1.25, 64, np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(ValueError, match="NaN or inf"):
        jittered_person_crop_affine(joints, 1.25, 64, np.zeros((2, 2)), np.array([0.0, np.nan]))


# --- resolved boxes, draws and sizes (patchpose.person_box) ---


def test_ground_truth_box_is_person_crop_affine_and_draws_nothing(monkeypatch):
    joints = _joints(20)

    def no_draws(*args):
        raise AssertionError("a ground-truth box must not draw")

    monkeypatch.setattr(person_box_module, "frame_draws", no_draws)
    np.testing.assert_array_equal(
        box_affines(joints, dict(GROUND_TRUTH), 1.25, 64, _names(20)), person_crop_affine(joints, 1.25, 64)
    )


def test_jittered_boxes_are_seeded_per_frame():
    joints, names = _joints(30), _names(30)
    first = box_affines(joints, JITTERED, 1.25, 64, names)
    np.testing.assert_array_equal(first, box_affines(joints, JITTERED, 1.25, 64, names))
    assert not np.allclose(first, person_crop_affine(joints, 1.25, 64))
    assert not np.allclose(first, box_affines(joints, {**JITTERED, "seed": 1}, 1.25, 64, names))
    # Every frame has its own draws, and its box depends on its own name only: not on the other frames, their
    # number or their order.
    assert len(np.unique(frame_draws(0, names), axis=0)) == len(names)
    alone = box_affines(joints[7:8], JITTERED, 1.25, 64, names[7:8])
    np.testing.assert_array_equal(alone[0], first[7])
    np.testing.assert_array_equal(box_affines(joints[::-1], JITTERED, 1.25, 64, names[::-1])[::-1], first)


def test_sizes_are_as_configured():
    # Margin 2 leaves a quarter side between the joints and the crop edge: at these sigmas clamping (> 4 sigma)
    # practically never happens, so the realised shift and log scale have the configured spread.
    num, centre_sigma, scale_sigma = 4000, 0.05, 0.04
    joints = _joints(num)
    box = {"kind": "jittered", "centre_sigma": centre_sigma, "scale_sigma": scale_sigma, "seed": 3}
    jittered, truth = box_affines(joints, box, 2.0, 64, _names(num)), person_crop_affine(joints, 2.0, 64)
    centre = np.array([[31.5, 31.5]])
    side = truth[:, 0, 0] * 64
    shift = (apply_affine(jittered, centre[None]) - apply_affine(truth, centre[None]))[:, 0] / side[:, None]
    log_scale = np.log(jittered[:, 0, 0] / truth[:, 0, 0])
    np.testing.assert_allclose(shift.std(axis=0), centre_sigma, rtol=0.05)
    np.testing.assert_allclose(log_scale.std(), scale_sigma, rtol=0.05)
    assert np.abs(shift.mean(axis=0)).max() < 0.1 * centre_sigma and abs(log_scale.mean()) < 0.1 * scale_sigma
    # the draws themselves are standard normal
    draws = frame_draws(3, _names(num))
    np.testing.assert_allclose(draws.std(axis=0), 1.0, rtol=0.05)


def test_zero_sizes_give_ground_truth_boxes():
    joints = _joints(20)
    box = {"kind": "jittered", "centre_sigma": 0.0, "scale_sigma": 0.0, "seed": 5}
    np.testing.assert_array_equal(box_affines(joints, box, 1.25, 64, _names(20)), person_crop_affine(joints, 1.25, 64))


def test_split_boxes_resolve_only_what_shapes_a_split():
    config = default_config()
    config["dataset"]["person_box"]["test"] = {"kind": "jittered", "centre_sigma": 0.2, "scale_sigma": 0.05}
    block = validate_config(config)["dataset"]["person_box"]
    boxes = split_boxes(block, seed=11)
    # ground truth holds neither sizes nor seed (changing those never reruns it)
    assert boxes["train"] == {"kind": "groundtruth"}
    assert boxes["test"] == {"kind": "jittered", "centre_sigma": 0.2, "scale_sigma": 0.05, "seed": 11}
    assert split_boxes(block, seed=12)["train"] == boxes["train"]


@pytest.mark.parametrize(
    ("box", "message"),
    [
        ({"kind": "detector"}, "kind must be one of groundtruth, jittered, got 'detector'"),
        ({"kind": "groundtruth", "seed": 0}, "a groundtruth person box has exactly the keys kind"),
        ({**JITTERED, "centre_sigma": -0.1}, "centre_sigma must be a finite number >= 0, got -0.1"),
        ({**JITTERED, "scale_sigma": True}, "scale_sigma must be a finite number >= 0, got True"),
        ({**JITTERED, "seed": -1}, "seed must be an integer >= 0, got -1"),
    ],
)
def test_bad_box_is_refused_naming_where(box, message):
    with pytest.raises(ValueError, match=f"^dataset.person_box.test: .*{message}"):
        check_box(box, "dataset.person_box.test")


# --- the config contract ---


def test_default_config_crops_both_splits_with_ground_truth():
    person_box = validate_config(default_config())["dataset"]["person_box"]
    assert person_box["train"]["kind"] == person_box["test"]["kind"] == "groundtruth"
    config = default_config()
    del config["dataset"]["person_box"]  # an older config without the block: the schema default
    assert validate_config(config)["dataset"]["person_box"]["test"]["kind"] == "groundtruth"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("test.kind", "detector", "config key dataset.person_box.test.kind = 'detector' is not allowed; allowed"),
        ("test.centre_sigma", -0.1, "config key dataset.person_box.test.centre_sigma = -0.1 is out of range"),
        ("train.scale_sigma", 0.3, "config key dataset.person_box.train.scale_sigma = 0.3 is out of range"),
        ("test.sigma", 0.1, "unknown config key dataset.person_box.test.sigma"),
    ],
)
def test_bad_person_box_config_names_the_key(path, value, message):
    config = copy.deepcopy(default_config())
    split, key = path.split(".")
    config["dataset"]["person_box"][split][key] = value
    with pytest.raises(ConfigError, match=message):
        validate_config(config)


# --- one split's box never reaches the other split's jobs ---


def _boxes(**changes) -> dict[str, dict]:
    config = default_config()
    for split, block in changes.items():
        config["dataset"]["person_box"][split] = block
    validated = validate_config(config)
    return split_boxes(validated["dataset"]["person_box"], validated["seed"])


def test_world_params_carry_their_own_split_box_only():
    world = validate_config(default_config())["dataset"]["synthetic"]
    truth = _boxes()
    test_jittered = _boxes(test={"kind": "jittered", "centre_sigma": 0.1, "scale_sigma": 0.1})
    train_jittered = _boxes(train={"kind": "jittered", "centre_sigma": 0.1, "scale_sigma": 0.1})
    assert world_params_for_split(world, "train", test_jittered) == world_params_for_split(world, "train", truth)
    assert world_params_for_split(world, "test", train_jittered) == world_params_for_split(world, "test", truth)
    assert world_params_for_split(world, "test", test_jittered)["person_box"]["kind"] == "jittered"
    assert world_params_for_split(world, "train", None)["person_box"] == {"kind": "groundtruth"}


def test_h36m_settings_carry_their_own_split_box_only(tmp_path):
    block = {**validate_config(default_config())["dataset"]["h36m"], "root": str(tmp_path)}
    block.update(train_subjects=["S1"], test_subjects=["S11"])
    truth = _boxes()
    jittered = _boxes(test={"kind": "jittered", "centre_sigma": 0.1, "scale_sigma": 0.1})
    assert settings_for_sequence(block, "S1", jittered) == settings_for_sequence(block, "S1", truth)
    assert settings_for_split(block, "train", jittered) == settings_for_split(block, "train", truth)
    test_settings = settings_for_sequence(block, "S11", jittered)
    assert test_settings["test_person_box"] == jittered["test"] and "train_person_box" not in test_settings
    assert settings_for_split(block, "test", jittered)["test_person_box"]["kind"] == "jittered"
    with pytest.raises(ValueError, match="dataset.person_box.test: person box kind must be one of"):
        H36MSettings.from_config({**block, "test_person_box": {"kind": "oracle"}})


# --- the synthetic world renders through the box ---


def _tiny_world() -> dict:
    config = default_config()
    config["dataset"]["synthetic"].update(frame_size=48, test_subjects=["S9"], test_poses_per_action=1,
                                          cameras=[54138969, 60457274])  # fmt: skip
    return validate_config(config)["dataset"]["synthetic"]


def _render_test(directory: Path, name: str, boxes: dict | None):
    world = world_params_for_split(_tiny_world(), "test", boxes)
    render_split(directory / f"{name}.zarr", directory / f"{name}.png", "test", world, seed=0)
    return open_dataset(directory / f"{name}.zarr")


def _arrays(store) -> dict[str, np.ndarray]:
    rows = np.arange(store.num_frames)
    return {"frames": store.read_frames(rows), "part_labels": store.read_part_labels(rows),
            "joints_2d": store.joints_2d, "joints_3d": store.joints_3d, "crop_affine": store.crop_affine}  # fmt: skip


def test_synthetic_jittered_test_split_renders_consistently(tmp_path):
    truth = _render_test(tmp_path, "truth", None)
    jittered = _render_test(tmp_path, "jittered", _boxes(test={"kind": "jittered", "centre_sigma": 0.1,
                                                                "scale_sigma": 0.1}))  # fmt: skip
    # same poses and cameras, other crops: the stored 2D joints are the projections in the jittered crop
    np.testing.assert_array_equal(jittered.joints_3d, truth.joints_3d)
    assert not np.allclose(jittered.crop_affine, truth.crop_affine)
    pixels = project(jittered.joints_3d.astype(np.float64), jittered.camera_intrinsics, jittered.camera_distortion)
    crop_px = apply_affine(invert_affine(jittered.crop_affine), pixels)
    assert np.abs(crop_px - jittered.joints_2d).max() < 0.5
    assert _inside(jittered.crop_affine, pixels, 48, tolerance=0.05)
    assert jittered.attrs["world"]["person_box"]["kind"] == "jittered"
    # zero sizes through the jittered path give the ground truth's bytes: the box draws come from their own
    # stream and leave every other draw of the frame (light, background, noise) alone
    zero = _render_test(tmp_path, "zero", _boxes(test={"kind": "jittered", "centre_sigma": 0.0, "scale_sigma": 0.0}))
    for name, array in _arrays(zero).items():
        np.testing.assert_array_equal(array, _arrays(truth)[name], err_msg=name)


# --- Human3.6M extraction cuts the box too ---


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("h36m_release")
    build_release(root)
    return root


def _extract(release: Path, out: Path, subject: str, key: str, **boxes) -> dict[str, np.ndarray]:
    base = {"root": str(release), "train_subjects": ["S1"], "test_subjects": ["S11"]}
    extract_sequence(H36MSettings.from_config({**base, **boxes}), subject, key, out)
    store = open_dataset(out / "frames.zarr")
    return {**_arrays(store), "pixels": project(store.joints_3d.astype(np.float64), store.camera_intrinsics,
                                                store.camera_distortion)}  # fmt: skip


def test_h36m_jittered_test_box(release, tmp_path):
    jittered_box = {"kind": "jittered", "centre_sigma": 0.15, "scale_sigma": 0.1, "seed": 0}
    truth = _extract(release, tmp_path / "truth", "S11", "Directions_1")
    jittered = _extract(release, tmp_path / "jittered", "S11", "Directions_1", test_person_box=jittered_box)
    again = _extract(release, tmp_path / "again", "S11", "Directions_1", test_person_box=jittered_box)
    np.testing.assert_array_equal(jittered["joints_3d"], truth["joints_3d"])
    assert not np.allclose(jittered["crop_affine"], truth["crop_affine"])
    np.testing.assert_array_equal(jittered["crop_affine"], again["crop_affine"])
    np.testing.assert_array_equal(jittered["frames"], again["frames"])
    np.testing.assert_allclose(apply_affine(jittered["crop_affine"], jittered["joints_2d"].astype(np.float64)),
                               jittered["pixels"], atol=0.02)  # fmt: skip
    assert _inside(jittered["crop_affine"], jittered["pixels"], 256, tolerance=0.05)
    # a test box never touches a training sequence
    train_truth = _extract(release, tmp_path / "train_truth", "S1", "WalkingDog_1")
    train = _extract(release, tmp_path / "train", "S1", "WalkingDog_1", test_person_box=jittered_box)
    for name, array in train.items():
        np.testing.assert_array_equal(array, train_truth[name], err_msg=name)
