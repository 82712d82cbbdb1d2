"""The rendered synthetic world: valid store, exact projection, determinism, distinct subjects."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from patchpose.camera import project
from patchpose.config import validate_config
from patchpose.crop_geometry import apply_affine, invert_affine
from patchpose.dataset_format import open_dataset
from patchpose.orientation import bone_lengths
from patchpose.parts import PART_NAMES
from patchpose.synthetic.params import world_params_for_split
from patchpose.synthetic.plan import plan_split
from patchpose.synthetic.split import render_split
from patchpose.synthetic.world import make_world_subject, scene_conditions, sequence_scenes
from tests.conftest import default_config


def tiny_world(**overrides) -> dict:
    """A world that renders in about a second: 48 px frames, 2 cameras, few poses."""
    config = default_config()
    config["dataset"]["synthetic"].update(
        frame_size=48,
        train_subjects=["S1", "S5"],
        train_poses_per_subject=15,
        test_poses_per_action=1,
        cameras=[54138969, 60457274],
        rare_actions={"Sitting": 0.07},
        **overrides,
    )
    config["updater"]["training"]["validation_subjects"] = ["S5"]  # the default's S8 is not in this world
    return validate_config(config)["dataset"]["synthetic"]


def _render(tmp_path: Path, split: str, name: str, seed: int = 0, **overrides) -> Path:
    store = tmp_path / f"{name}.zarr"
    render_split(store, tmp_path / f"{name}.png", split, world_params_for_split(tiny_world(**overrides), split), seed)
    return store


@pytest.fixture(scope="module")
def train_store(tmp_path_factory) -> Path:
    return _render(tmp_path_factory.mktemp("world"), "train", "train")


def test_store_is_valid_and_planned(train_store):
    store = open_dataset(train_store)
    # 2 subjects x 15 poses x 2 cameras; Sitting keeps round(0.07 * 15) = 1 pose per subject.
    assert store.num_frames == 60 and store.has_part_labels and store.split == "train"
    actions = store.action_names()
    assert (actions == "Sitting").sum() == 2 * 1 * 2
    assert set(store.subject_names()) == {"S1", "S5"}
    labels = store.read_part_labels(list(range(store.num_frames)))
    assert labels.max() <= 14 and (labels == 0).any() and len(np.unique(labels)) > 8
    assert train_store.with_suffix(".png").stat().st_size > 1000


def test_projection_reproduces_stored_2d(train_store):
    store = open_dataset(train_store)
    pixels = project(store.joints_3d.astype(np.float64), store.camera_intrinsics, store.camera_distortion)
    crop_px = apply_affine(invert_affine(store.crop_affine), pixels)
    error = np.linalg.norm(crop_px - store.joints_2d, axis=-1)
    assert error.max() < 0.5, f"max reprojection error {error.max():.3f} px"


def _tree_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def test_same_seed_gives_byte_identical_store(tmp_path):
    first = _render(tmp_path, "test", "a", seed=3)
    second = _render(tmp_path, "test", "b", seed=3)
    other = _render(tmp_path, "test", "c", seed=4)
    assert _tree_digest(first) == _tree_digest(second)
    assert _tree_digest(first) != _tree_digest(other)


def test_subjects_differ_in_proportions(train_store):
    store = open_dataset(train_store)
    lengths = bone_lengths(store.joints_3d.astype(np.float64))
    names = store.subject_names()
    s1, s5 = lengths[names == "S1"], lengths[names == "S5"]
    # Bone lengths are constant within a subject (rigid skeleton) and differ between subjects.
    assert np.allclose(s1, s1[0], atol=0.05) and np.allclose(s5, s5[0], atol=0.05)
    assert np.abs(s1[0] - s5[0]).max() > 5.0
    bodies = [make_world_subject(0, name).body.bone_lengths_mm for name in ("S1", "S5", "S6", "S7", "S8", "S9", "S11")]
    assert len({tuple(np.round(b, 3)) for b in bodies}) == 7


def test_cues_switch_changes_pixels_not_geometry(tmp_path):
    on = open_dataset(_render(tmp_path, "test", "on"))
    off = open_dataset(_render(tmp_path, "test", "off", texture_cue=False, shading_cue=False, depth_falloff=0))
    assert np.array_equal(on.joints_2d, off.joints_2d)
    assert np.array_equal(on.read_part_labels([0, 1]), off.read_part_labels([0, 1]))
    assert not np.array_equal(on.read_frames([0, 1]), off.read_frames([0, 1]))


def test_depth_falloff_lights_the_frame_from_the_camera_with_the_exposure_on_the_pelvis(tmp_path):
    worlds = {k: world_params_for_split(tiny_world(depth_falloff=k), "test") for k in (0, 4)}
    assert worlds[4]["depth_falloff"] == 4  # a split's params carry it: a change re-renders
    plan = plan_split(worlds[0], "test")[0]
    scenes = {k: next(iter(sequence_scenes(plan, world, 0))) for k, world in worlds.items()}
    conditions = {k: scene_conditions(scenes[k], worlds[k]) for k in worlds}
    light = {k: c[0] for k, c in conditions.items()}
    assert light[0].falloff == 0 and light[4].falloff == 4
    assert light[4].reference_mm == pytest.approx(np.linalg.norm(scenes[4].joints_cam[0]))
    # the falloff draws nothing: the light, background and noise are the frame's whatever its value
    assert np.array_equal(light[0].direction, light[4].direction) and light[0].noise_sigma == light[4].noise_sigma
    assert np.array_equal(conditions[0][1], conditions[4][1])
    off = open_dataset(_render(tmp_path, "test", "k0", depth_falloff=0))
    on = open_dataset(_render(tmp_path, "test", "k4", depth_falloff=4))
    assert np.array_equal(on.joints_2d, off.joints_2d)
    assert not np.array_equal(on.read_frames([0, 1]), off.read_frames([0, 1]))


def test_outfits_per_sequence_change_clothes_not_bodies_or_geometry(tmp_path):
    def first_scene(world, plan):
        return next(iter(sequence_scenes(plan, world, 0)))

    kinds = ("per_subject", "per_sequence")
    worlds = {kind: world_params_for_split(tiny_world(outfits=kind), "train") for kind in kinds}
    assert worlds["per_subject"]["outfits"] == "per_subject"  # a split's params carry it: a change re-renders
    plans = [plan for plan in plan_split(worlds["per_subject"], "train") if plan.subject == "S1"][:2]
    same = [first_scene(worlds["per_subject"], plan).subject for plan in plans]
    new = [first_scene(worlds["per_sequence"], plan).subject for plan in plans]

    def top(subject):  # the colour of the subject's sleeves in that sequence
        return subject.appearance["upper_arm"].colour

    assert np.array_equal(top(same[0]), top(same[1])) and not np.array_equal(top(new[0]), top(new[1]))
    assert not np.array_equal(top(new[0]), top(same[0]))
    assert np.array_equal(new[0].body.bone_lengths_mm, same[0].body.bone_lengths_mm)
    per_subject = open_dataset(_render(tmp_path, "test", "subject"))
    per_sequence = open_dataset(_render(tmp_path, "test", "sequence", outfits="per_sequence"))
    assert np.array_equal(per_subject.joints_2d, per_sequence.joints_2d)
    assert np.array_equal(per_subject.read_part_labels([0, 1]), per_sequence.read_part_labels([0, 1]))
    assert not np.array_equal(per_subject.read_frames([0, 1]), per_sequence.read_frames([0, 1]))


def test_the_front_print_changes_the_top_not_the_rest_of_the_outfit_or_the_geometry(tmp_path):
    worlds = {flag: world_params_for_split(tiny_world(front_print=flag), "test") for flag in (False, True)}
    assert worlds[True]["front_print"] is True  # a split's params carry it: a change re-renders
    plan = plan_split(worlds[False], "test")[0]
    for outfits in ("per_subject", "per_sequence"):
        plain, printed = (next(iter(sequence_scenes(plan, {**worlds[flag], "outfits": outfits}, 0))).subject.appearance
                          for flag in (False, True))  # fmt: skip
        assert plain["torso"].print_colour is None and printed["torso"].print_colour is not None
        assert all(np.array_equal(plain[slot].colour, printed[slot].colour) for slot in plain.SLOTS)
    off = open_dataset(_render(tmp_path, "test", "plain", front_print=False))
    on = open_dataset(_render(tmp_path, "test", "printed", front_print=True))
    assert np.array_equal(on.joints_2d, off.joints_2d)
    rows = list(range(on.num_frames))
    assert np.array_equal(on.read_part_labels(rows), off.read_part_labels(rows))
    changed = np.any(on.read_frames(rows) != off.read_frames(rows), axis=-1)
    assert changed.any() and np.all(on.read_part_labels(rows)[changed] == PART_NAMES.index("torso"))
