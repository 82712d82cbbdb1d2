"""Release names: canonical actions, S1's spellings, suffixes, prefix quirks, subactions, _ALL videos."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patchpose.actions import ACTIONS
from patchpose.h36m.cdf import npz_sequence_name
from patchpose.h36m.layout import (
    H36MLayoutError,
    assign_subactions,
    canonical_action,
    scan_pose_sequences,
    sequence_key,
    sequence_name_from_key,
)


def test_s1_spellings_map_to_canonical_names():
    assert canonical_action("TakingPhoto") == "Photo"
    assert canonical_action("TakingPhoto 1") == "Photo"
    assert canonical_action("WalkingDog 1") == "WalkDog"
    assert npz_sequence_name("WalkingDog 1") == "WalkDog 1"
    assert npz_sequence_name("TakingPhoto") == "Photo"
    for action in ACTIONS:
        assert canonical_action(action) == action
        assert canonical_action(f"{action} 2") == action


def test_prefixes_are_not_confused():
    assert canonical_action("Sitting 1") == "Sitting"
    assert canonical_action("SittingDown 2") == "SittingDown"
    assert canonical_action("Walking") == "Walking"
    assert canonical_action("WalkingDog") == "WalkDog"
    assert canonical_action("WalkTogether 1") == "WalkTogether"


@pytest.mark.parametrize("name", ["Dancing", "Walk", "SittingDown2", "Directions 12", "Directions_ALL", ""])
def test_unknown_or_malformed_names_name_the_file(name):
    with pytest.raises(H36MLayoutError, match="S5/some/file.cdf"):
        canonical_action(name, "S5/some/file.cdf")


def test_suffix_is_not_the_subaction():
    names = [
        "Directions 1",
        "Eating 2",
        "Eating",
        "Sitting 2",
        "SittingDown",
        "SittingDown 1",
        "Sitting 1",
        "Phoning 3",
    ]
    got = {s.name: (s.action, s.subaction) for s in assign_subactions("S9", names)}
    assert got == {
        "Directions 1": ("Directions", 1),
        "Eating": ("Eating", 1),
        "Eating 2": ("Eating", 2),
        "Phoning 3": ("Phoning", 1),
        "Sitting 1": ("Sitting", 1),
        "Sitting 2": ("Sitting", 2),
        "SittingDown": ("SittingDown", 1),
        "SittingDown 1": ("SittingDown", 2),
    }


def test_keys_round_trip():
    assert sequence_key("Directions 1") == "Directions_1"
    assert sequence_name_from_key("Directions_1") == "Directions 1"


def test_scan_skips_all_files_and_names_unknown_ones(tmp_path):
    poses = tmp_path / "S1" / "MyPoseFeatures" / "D3_Positions"
    poses.mkdir(parents=True)
    for name in ("Walking 1", "WalkingDog", "Directions_ALL"):
        (poses / f"{name}.cdf").write_bytes(b"")
    assert [(s.name, s.action) for s in scan_pose_sequences(tmp_path, "S1")] == [
        ("WalkingDog", "WalkDog"),
        ("Walking 1", "Walking"),
    ]
    (poses / "Dancing.cdf").write_bytes(b"")
    with pytest.raises(H36MLayoutError, match=r"Dancing\.cdf: unknown action 'Dancing'"):
        scan_pose_sequences(tmp_path, "S1")
    with pytest.raises(H36MLayoutError, match="S5/MyPoseFeatures/D3_Positions: pose directory"):
        scan_pose_sequences(tmp_path, "S5")


_NAMES = [f"{base}{suffix}" for base in ("Sitting", "SittingDown", "Walking", "WalkingDog", "WalkDog", "TakingPhoto")
          for suffix in ("", " 1", " 2", " 3")]  # fmt: skip


@given(st.lists(st.sampled_from(_NAMES), min_size=1, max_size=12, unique=True), st.randoms())
def test_subactions_are_dense_and_independent_of_listing_order(names, random):
    shuffled = list(names)
    random.shuffle(shuffled)
    sequences = assign_subactions("S1", names)
    assert sequences == assign_subactions("S1", shuffled)
    by_action = {}
    for sequence in sequences:
        assert sequence.action == canonical_action(sequence.name)
        by_action.setdefault(sequence.action, []).append(sequence.subaction)
    for subactions in by_action.values():
        assert subactions == list(range(1, len(subactions) + 1))
