"""Release names: canonical actions, S1's spellings, suffixes, prefix quirks, the release's subactions, _ALL videos."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patchpose.actions import ACTIONS
from patchpose.h36m.cdf import npz_sequence_name
from patchpose.h36m.layout import (
    H36MLayoutError,
    action_id,
    action_of_id,
    assign_subactions,
    canonical_action,
    official_subaction,
    scan_pose_sequences,
    sequence_key,
    sequence_name_from_key,
    subaction_table,
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


# Golden values read off the release's metadata.xml mapping table as public readers print it (h36m-fetch's
# sequence_mappings) and cross-checked against VideoPose3D-based loaders; see patchpose/data/h36m_subactions.json.
OFFICIAL = [
    ("S1", "Directions 1", "Directions", 1),
    ("S1", "Directions", "Directions", 2),
    ("S1", "Eating 2", "Eating", 1),
    ("S1", "Eating", "Eating", 2),
    ("S1", "Sitting 1", "Sitting", 1),
    ("S1", "Sitting 2", "Sitting", 2),
    ("S1", "SittingDown 2", "SittingDown", 1),
    ("S1", "SittingDown", "SittingDown", 2),
    ("S1", "TakingPhoto 1", "Photo", 1),
    ("S1", "TakingPhoto", "Photo", 2),
    ("S1", "WalkingDog 1", "WalkDog", 1),
    ("S1", "WalkingDog", "WalkDog", 2),
    ("S5", "Directions 1", "Directions", 1),
    ("S5", "Directions 2", "Directions", 2),
    ("S5", "Discussion 2", "Discussion", 1),
    ("S5", "Discussion 3", "Discussion", 2),
    ("S5", "SittingDown", "SittingDown", 1),
    ("S5", "SittingDown 1", "SittingDown", 2),
    ("S5", "Photo", "Photo", 1),
    ("S5", "Photo 2", "Photo", 2),
    ("S6", "Waiting 3", "Waiting", 1),
    ("S6", "Waiting", "Waiting", 2),
    ("S7", "Phoning 2", "Phoning", 1),
    ("S8", "WalkTogether 2", "WalkTogether", 2),
    ("S9", "Discussion 1", "Discussion", 1),
    ("S9", "Discussion 2", "Discussion", 2),
    ("S11", "Directions 1", "Directions", 1),
    ("S11", "Directions", "Directions", 2),
    ("S11", "Phoning 3", "Phoning", 1),
    ("S11", "Phoning 2", "Phoning", 2),
    ("S11", "Smoking 2", "Smoking", 1),
]


@pytest.mark.parametrize(("subject", "name", "action", "subaction"), OFFICIAL)
def test_subaction_is_the_release_number_not_the_suffix(subject, name, action, subaction):
    assert official_subaction(subject, name) == subaction
    (sequence,) = assign_subactions(subject, [name])
    assert (sequence.name, sequence.action, sequence.subaction) == (name, action, subaction)


def test_s1_pairs_and_spellings():
    names = ["TakingPhoto", "TakingPhoto 1", "WalkingDog", "WalkingDog 1", "SittingDown", "SittingDown 2",
             "Directions", "Directions 1"]  # fmt: skip
    got = [(s.name, s.action, s.subaction) for s in assign_subactions("S1", names)]
    assert got == [
        ("Directions 1", "Directions", 1),
        ("Directions", "Directions", 2),
        ("TakingPhoto 1", "Photo", 1),
        ("TakingPhoto", "Photo", 2),
        ("SittingDown 2", "SittingDown", 1),
        ("SittingDown", "SittingDown", 2),
        ("WalkingDog 1", "WalkDog", 1),
        ("WalkingDog", "WalkDog", 2),
    ]
    # VideoPose3D's spelling of S1's files finds the same recordings
    assert [(s.name, s.subaction) for s in assign_subactions("S1", ["Photo", "WalkDog 1"])] == [
        ("Photo", 2),
        ("WalkDog 1", 1),
    ]


def test_a_name_the_table_does_not_list_names_the_file():
    where = {"Directions 2": "S1/MyPoseFeatures/D3_Positions/Directions 2.cdf"}
    with pytest.raises(
        H36MLayoutError,
        match=r"Directions 2\.cdf: sequence 'Directions 2' is not one of S1's two Directions recordings .*"
        r"subaction 1 is 'Directions 1', subaction 2 is 'Directions'",
    ):
        assign_subactions("S1", ["Directions 1", "Directions 2"], where)
    with pytest.raises(H36MLayoutError, match="S9/x.cdf: 'TakingPhoto 1' is the same recording as 'Photo 1'"):
        assign_subactions("S1", ["Photo 1", "TakingPhoto 1"], {"TakingPhoto 1": "S9/x.cdf"})
    with pytest.raises(H36MLayoutError, match="no subaction table for subject S2"):
        official_subaction("S2", "Directions")


def test_shipped_table_is_complete_and_consistent():
    table = subaction_table()
    assert list(table) == ["S1", "S5", "S6", "S7", "S8", "S9", "S11"]
    for subject, by_action in table.items():
        assert set(by_action) == set(ACTIONS)
        for action, names in by_action.items():
            assert len(set(names)) == 2 and {canonical_action(n) for n in names} == {action}
            assert [official_subaction(subject, n) for n in names] == [1, 2]
    assert sorted(action_id(a) for a in ACTIONS) == list(range(2, 17))
    assert (action_id("Directions"), action_id("Photo"), action_id("Walking"), action_id("WalkDog")) == (2, 12, 14, 15)
    assert all(action_of_id(action_id(a)) == a for a in ACTIONS)
    for bad in (1, 17, 0):
        with pytest.raises(ValueError, match="not one of 2..16"):
            action_of_id(bad)


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
    (poses / "Dancing.cdf").unlink()
    (poses / "Sitting.cdf").write_bytes(b"")  # S1's sittings are "Sitting 1" and "Sitting 2"
    with pytest.raises(H36MLayoutError, match=r"D3_Positions/Sitting\.cdf: sequence 'Sitting' is not one of S1's"):
        scan_pose_sequences(tmp_path, "S1")


_S1_NAMES = [name for names in subaction_table()["S1"].values() for name in names]


@given(st.lists(st.sampled_from(_S1_NAMES), min_size=1, max_size=12, unique=True), st.randoms())
def test_subactions_do_not_depend_on_which_files_are_listed_or_their_order(names, random):
    shuffled = list(names)
    random.shuffle(shuffled)
    sequences = assign_subactions("S1", names)
    assert sequences == assign_subactions("S1", shuffled)
    everything = {s.name: s for s in assign_subactions("S1", _S1_NAMES)}
    assert sequences == sorted((everything[n] for n in names), key=lambda s: (ACTIONS.index(s.action), s.subaction))
