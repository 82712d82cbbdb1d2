"""metadata.xml's (action, subaction) -> file name table, and other tools' frame names mapped to our ids."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from patchpose.dataset_format import parse_frame_id
from patchpose.h36m.external_ids import frame_id_from_image_name, videopose3d_frame_id
from patchpose.h36m.layout import CAMERA_IDS, H36MLayoutError, action_id, subaction_table
from patchpose.h36m.metadata import check_metadata, read_mapping
from tests.h36m_fixture import mapping_rows, write_metadata


def test_the_table_is_read_as_the_public_readers_lay_it_out(tmp_path):
    rows = mapping_rows()
    rows.append(["trailing", "row", *["not read"] * 11])  # rows after the 32 (action, subaction) rows are not read
    write_metadata(tmp_path / "metadata.xml", rows=rows)
    found = read_mapping(ET.parse(tmp_path / "metadata.xml").getroot(), tmp_path / "metadata.xml")
    assert found["S1"]["Directions"] == ("Directions 1", "Directions")
    assert found["S1"]["SittingDown"] == ("SittingDown 2", "SittingDown")
    assert found["S1"]["Photo"] == ("TakingPhoto 1", "TakingPhoto")
    assert found["S11"]["Phoning"] == ("Phoning 3", "Phoning 2")
    assert "_ALL" not in found["S1"] and set(found) == {f"S{i}" for i in range(1, 12)}
    summary = check_metadata(tmp_path / "metadata.xml")
    assert summary["agrees"] and "subaction mapping" in summary["checked"]


def test_a_mapping_that_disagrees_names_the_file_and_the_entry(tmp_path):
    path = tmp_path / "rel" / "metadata.xml"
    path.parent.mkdir()
    # the files on disk are S1 "SittingDown 2" (subaction 1) and "SittingDown" (2); this table swaps them
    swapped = {("S1", "SittingDown", 1): "SittingDown", ("S1", "SittingDown", 2): "SittingDown 2"}
    write_metadata(path, rows=mapping_rows(swapped))
    with pytest.raises(
        H36MLayoutError,
        match=r"rel/metadata\.xml: <mapping> gives S1 SittingDown subaction 1 as 'SittingDown'; "
        r"patchpose/data/h36m_subactions\.json \(which numbers the frame ids\) has 'SittingDown 2'",
    ):
        check_metadata(path)
    write_metadata(path, rows=mapping_rows({("S9", "Posing", 2): "Posing 3"}))
    with pytest.raises(H36MLayoutError, match=r"metadata\.xml: <mapping> gives S9 Posing subaction 2 as 'Posing 3'"):
        check_metadata(path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda rows: [], r"metadata\.xml: no <mapping> table"),
        (lambda rows: rows[:20], r"metadata\.xml: <mapping> has 20 rows, expected a header and 32 more"),
        (lambda rows: [[c for i, c in enumerate(r) if i != 10] for r in rows], "has no column for subject S9"),
        (lambda rows: [rows[0], ["two", "1", *rows[1][2:]], *rows[2:]], r"row 1 starts with \['two', '1'\]"),
        (lambda rows: [rows[0], ["1", "3", *rows[1][2:]], *rows[2:]], r"row 1: action 1, subaction 3 is outside"),
        (lambda rows: [rows[0], rows[1][:-1], *rows[2:]], r"row 1 has 12 cells, its header 13"),
        (lambda rows: [*rows[:4], rows[3], *rows[5:]], "gives S1 Directions subaction 2 as None"),  # row repeated
    ],
)
def test_malformed_tables_name_the_file(tmp_path, edit, message):
    path = tmp_path / "metadata.xml"
    write_metadata(path, rows=edit(mapping_rows()))
    with pytest.raises(H36MLayoutError, match=message):
        check_metadata(path)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("s_09_act_02_subact_01_ca_01_000001.jpg", "S9/Directions/1/54138969/000000"),
        ("images/s_11_act_12_subact_02_ca_04/s_11_act_12_subact_02_ca_04_000065.jpg", "S11/Photo/2/60457274/000064"),
        ("s_01_act_15_subact_01_ca_02_000006", "S1/WalkDog/1/55011271/000005"),
        ("S1/S1_SittingDown_2.55011271/S1_SittingDown_2.55011271_000006.jpg", "S1/SittingDown/1/55011271/000005"),
        ("S1_TakingPhoto.58860488_000011.jpg", "S1/Photo/2/58860488/000010"),
        ("S11_Directions.54138969_000001.jpg", "S11/Directions/2/54138969/000000"),
        ("S11_Directions_1.54138969_000001.jpg", "S11/Directions/1/54138969/000000"),
    ],
)
def test_image_names_of_other_tools_map_to_our_ids(name, expected):
    assert frame_id_from_image_name(name) == expected


def test_both_image_namings_agree_on_every_recording():
    for subject, by_action in subaction_table().items():
        for action, names in by_action.items():
            for subaction, name in enumerate(names, start=1):
                for index, camera in enumerate(CAMERA_IDS):
                    numbers = (int(subject[1:]), action_id(action), subaction, index + 1)
                    toolbox = "s_{:02d}_act_{:02d}_subact_{:02d}_ca_{:02d}_000003.jpg".format(*numbers)
                    mmpose = f"{subject}_{name.replace(' ', '_')}.{camera}_000003.jpg"
                    ours = frame_id_from_image_name(toolbox)
                    assert ours == frame_id_from_image_name(mmpose) == f"{subject}/{action}/{subaction}/{camera}/000002"
                    assert parse_frame_id(ours).subaction == subaction


def test_videopose3d_keys_map_to_our_ids():
    assert videopose3d_frame_id("S1", "Photo", 0, 10) == "S1/Photo/2/54138969/000010"
    assert videopose3d_frame_id("S1", "TakingPhoto", 0, 10) == "S1/Photo/2/54138969/000010"
    assert videopose3d_frame_id("S1", "WalkDog 1", 3, 0) == "S1/WalkDog/1/60457274/000000"
    assert videopose3d_frame_id("S11", "Directions", 1, 64) == "S11/Directions/2/55011271/000064"
    assert videopose3d_frame_id("S5", "Discussion 2", 2, 5) == "S5/Discussion/1/58860488/000005"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: frame_id_from_image_name("s_09_act_01_subact_01_ca_01_000001.jpg"), "1 is _ALL"),
        (lambda: frame_id_from_image_name("s_09_act_02_subact_03_ca_01_000001.jpg"), "subaction 3 is not 1 or 2"),
        (lambda: frame_id_from_image_name("s_09_act_02_subact_01_ca_05_000001.jpg"), "camera 5 is outside 1..4"),
        (lambda: frame_id_from_image_name("s_09_act_02_subact_01_ca_01_000000.jpg"), "image numbers start at 1"),
        (lambda: frame_id_from_image_name("S9_Directions.12345678_000001.jpg"), "camera id 12345678 is not one of"),
        (lambda: frame_id_from_image_name("S1_Directions_2.54138969_000001.jpg"), "not one of S1's two Directions"),
        (lambda: frame_id_from_image_name("S9/Directions/1/54138969/000000"), "not an H36M-Toolbox name"),
        (lambda: videopose3d_frame_id("S9", "Dancing", 0, 0), "S9/Dancing: unknown action 'Dancing'"),
        (lambda: videopose3d_frame_id("S9", "Directions", 4, 0), "camera 4 is outside 0..3"),
        (lambda: videopose3d_frame_id("S9", "Directions", 0, -1), "row -1 must be an integer >= 0"),
    ],
)
def test_names_that_do_not_map_are_errors_naming_them(call, message):
    with pytest.raises(ValueError, match=message):
        call()
