"""The Human3.6M skeleton table and the part palette."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from patchpose import parts
from patchpose.skeleton import H36M, LIMBS, RAW32_TO_H36M17


def test_table_matches_human36m():
    assert H36M.parents == (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
    assert RAW32_TO_H36M17 == (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
    assert H36M.num_joints == 17 and H36M.num_limbs == 16


def test_limb_order_is_fixed_and_topological():
    # limb k ends in joint k + 1; its parent precedes it, so a root-to-leaf sweep is the limb order.
    assert LIMBS[0] == (1, 0) and LIMBS[2] == (3, 2) and LIMBS[12] == (13, 12) and LIMBS[15] == (16, 15)
    seen = {0}
    for child, parent in LIMBS:
        assert parent in seen
        seen.add(child)
    assert H36M.limb_names[5] == "left_knee->left_ankle"


def test_left_right_sets_mirror_names():
    for left, right in zip(H36M.left_joints, H36M.right_joints, strict=True):
        assert H36M.joint_names[left].replace("left", "right") == H36M.joint_names[right]
    flip = H36M.flip_permutation
    assert np.array_equal(flip[flip], np.arange(17))
    assert flip[13] == 16 and flip[0] == 0


def test_table_is_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        H36M.parents = (0,)  # type: ignore[misc]
    with pytest.raises(ValueError):
        H36M.limb_children[0] = 5


_LEFT, _RIGHT = H36M.left_joints, H36M.right_joints


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"parents": list(H36M.parents)}, "parents must be a tuple, got list"),
        ({"joint_names": ("pelvis",), "parents": (-1,), "raw32_selection": (0,)}, "at least one limb, got 1 joints"),
        ({"joint_names": ("pelvis", *H36M.joint_names[1:16], "left_wrist")}, r"unique, repeated: \['left_wrist'\]"),
        ({"parents": H36M.parents[:16]}, "one parent per joint, got 16 parents for 17 joints"),
        ({"parents": (0, *H36M.parents[1:])}, r"joint 0 \(pelvis\) must be the root \(parent -1\), got parent 0"),
        ({"parents": (*H36M.parents[:3], 4, *H36M.parents[4:])}, r"joint 3 \(right_ankle\) must come before it"),
        ({"parents": (*H36M.parents[:3], -1, *H36M.parents[4:])}, r"\(0\.\.2\), got -1"),
        ({"left_joints": _LEFT[:5]}, "pair up, got 5 left, 6 right"),
        ({"left_joints": (*_LEFT[:5], 16)}, "distinct non-root joints 1..16"),
        ({"left_joints": (0, *_LEFT[1:])}, "distinct non-root joints"),
        ({"right_joints": (*_RIGHT[:5], 17)}, "distinct non-root joints"),
        ({"raw32_selection": RAW32_TO_H36M17[:16]}, "must pick 17 distinct raw joints"),
        ({"raw32_selection": (1, *RAW32_TO_H36M17[1:])}, "must pick 17 distinct raw joints"),
        ({"raw32_selection": (*RAW32_TO_H36M17[:16], 32)}, r"each 0\.\.31, got"),
    ],
)
def test_malformed_skeleton_is_refused_naming_the_rule(changes, message):
    dataclasses.replace(H36M)  # the real table passes every rule
    with pytest.raises(ValueError, match=f"^Skeleton: .*{message}"):
        dataclasses.replace(H36M, **changes)


def test_joint_index_names_known_joints():
    assert H36M.joint_index("thorax") == 8
    with pytest.raises(KeyError, match="known joints: pelvis"):
        H36M.joint_index("Thorax")


def test_limb_parts_pair_left_and_right():
    names = [parts.PART_NAMES[p] for p in parts.LIMB_PART]
    assert names[4] == "left_upper_leg" and names[1] == "right_upper_leg"
    assert names[12] == "left_lower_arm" and names[15] == "right_lower_arm"
    assert len(set(map(tuple, parts.PALETTE.tolist()))) == parts.NUM_PARTS, "palette colours are distinct"


def test_colour_encoding_of_one_hot_is_the_palette():
    labels = np.array([[0, 3], [14, 7]])
    one_hot = np.eye(parts.NUM_PARTS)[labels]
    assert np.array_equal(parts.encode_probabilities(one_hot), parts.PALETTE[labels].astype(np.float32))
    assert np.array_equal(parts.encode_labels(labels), parts.PALETTE[labels])
    # Uniform probabilities give the mean palette colour.
    uniform = np.full((1, parts.NUM_PARTS), 1 / parts.NUM_PARTS)
    assert np.allclose(parts.encode_probabilities(uniform)[0], parts.PALETTE.mean(axis=0), atol=1e-3)
    with pytest.raises(ValueError, match="part ids"):
        parts.encode_labels(np.array([15]))
