"""Extraction of the fake release (tests/h36m_fixture.py) into the common format, and every error path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from patchpose.camera import h36m_camera, project, world_to_camera
from patchpose.crop_geometry import apply_affine
from patchpose.dataset_format import open_dataset, parse_frame_id
from patchpose.h36m.external_ids import frame_id_from_image_name
from patchpose.h36m.extract import H36MSettings, extract_sequence, list_sequences
from patchpose.h36m.layout import CAMERA_IDS, H36MLayoutError, sequence_key
from patchpose.h36m.merge import merge_split, sha256_lines
from patchpose.h36m.metadata import check_metadata
from patchpose.h36m.pseudo_labels import pseudo_part_labels
from patchpose.h36m.video import H36MVideoError
from patchpose.h36m.workflow import run_extract_sequence
from tests.h36m_fixture import (
    SEQUENCES,
    build_release,
    frame_colour,
    make_poses,
    mapping_rows,
    write_cdf,
    write_metadata,
)

EXPECTED_ROWS = {  # (subject, name) -> kept frame indices per camera (train stride 5, test every 64)
    ("S1", "TakingPhoto"): [0, 5, 10],
    ("S1", "WalkingDog 1"): [0, 5],
    ("S1", "Sitting 1"): [0, 5],
    ("S1", "SittingDown"): [0, 5],
    ("S11", "Directions"): [0, 64],
    ("S11", "Directions 1"): [0, 64],
}
# (subject, action, subaction) of our frame ids -> the release file it must come from: the release's own numbers
# (metadata.xml's mapping table), not a rank of the suffixes (which would give S11 "Directions" subaction 1).
NAME_OF = {("S1", "Photo", 2): "TakingPhoto", ("S1", "WalkDog", 1): "WalkingDog 1", ("S1", "Sitting", 1): "Sitting 1",
           ("S1", "SittingDown", 2): "SittingDown", ("S11", "Directions", 2): "Directions",
           ("S11", "Directions", 1): "Directions 1"}  # fmt: skip


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("h36m_release")
    return root, build_release(root)


def settings(root, **overrides) -> H36MSettings:
    return H36MSettings.from_config(
        {"root": str(root), "train_subjects": ["S1"], "test_subjects": ["S11"], **overrides}
    )


def extract_all(config: H36MSettings, out: Path) -> dict[str, list[Path]]:
    dirs = {"train": [], "test": []}
    for split, subjects in (("train", config.train_subjects), ("test", config.test_subjects)):
        for subject in subjects:
            for sequence in list_sequences(config, subject):
                target = out / subject / sequence.key
                extract_sequence(config, subject, sequence.key, target)
                dirs[split].append(target)
    return dirs


@pytest.fixture(scope="module")
def extracted(release, tmp_path_factory):
    root, _ = release
    out = tmp_path_factory.mktemp("h36m_out")
    config = settings(root)
    dirs = extract_all(config, out / "seq")
    manifests = {}
    for split, subjects in (("train", ["S1"]), ("test", ["S11"])):
        manifests[split] = merge_split(dirs[split], split, out / f"{split}.zarr", out / f"{split}_manifest.json",
                                       config.to_config(), subjects)  # fmt: skip
    return out, manifests


def test_stores_match_what_the_fixture_put_in(release, extracted):
    root, truth = release
    out, _ = extracted
    for split, total in (("train", 36), ("test", 14)):
        store = open_dataset(out / f"{split}.zarr")
        assert store.num_frames == total and store.source == "h36m" and store.frame_size == (256, 256)
        rows = {}
        for row, text in enumerate(store.frame_ids()):
            fid = parse_frame_id(text)
            name = NAME_OF[(fid.subject, fid.action, fid.subaction)]
            rows.setdefault((fid.subject, name), []).append((fid.camera_id, fid.frame_index))
            camera = h36m_camera(fid.subject, str(fid.camera_id))
            world = truth[(fid.subject, name)]["poses17"][fid.frame_index].astype(np.float32).astype(np.float64)
            expected_3d = world_to_camera(world, camera.rotation, camera.centre)
            np.testing.assert_allclose(store.joints_3d[row], expected_3d, atol=0.05)
            pixels = apply_affine(store.crop_affine[row], store.joints_2d[row].astype(np.float64))
            np.testing.assert_allclose(pixels, project(expected_3d, camera.intrinsics, camera.distortion), atol=0.02)
            np.testing.assert_array_equal(store.camera_intrinsics[row], camera.intrinsics)
            np.testing.assert_array_equal(store.image_size[row], [camera.res_w, camera.res_h])
            crop = store.read_frames([row])[0]
            colour = frame_colour(fid.camera_id, fid.frame_index).astype(int)
            assert np.abs(crop[128, 128].astype(int) - colour).max() <= 8, (text, crop[128, 128], colour)
        for key, by_camera in rows.items():
            cameras = [c for c in CAMERA_IDS if not (key == ("S11", "Directions") and c == 54138969)]
            assert by_camera == [(c, i) for c in cameras for i in EXPECTED_ROWS[key]], key


def test_ids_carry_the_release_subaction_numbers(extracted):
    out, _ = extracted
    store = open_dataset(out / "train.zarr")
    assert store.subjects == ("S1",)
    train = {(parse_frame_id(t).action, parse_frame_id(t).subaction) for t in store.frame_ids()}
    assert train == {("Photo", 2), ("WalkDog", 1), ("Sitting", 1), ("SittingDown", 2)}
    test = open_dataset(out / "test.zarr")
    ids = test.frame_ids()
    assert ids[0] == "S11/Directions/1/54138969/000000"  # "Directions 1" is subaction 1, rows in subaction order
    assert "S11/Directions/2/55011271/000064" in ids and "S11/Directions/2/54138969/000000" not in ids  # dropped
    # MMPose's names of the same frames (release file name, camera, 1-based image number) give the same ids
    for text in ids:
        fid = parse_frame_id(text)
        name = NAME_OF[(fid.subject, fid.action, fid.subaction)].replace(" ", "_")
        folder = f"{fid.subject}_{name}.{fid.camera_id}"
        assert frame_id_from_image_name(f"{fid.subject}/{folder}/{folder}_{fid.frame_index + 1:06d}.jpg") == text


def test_manifest_counts_are_exact(extracted):
    out, manifests = extracted
    train = json.loads((out / "train_manifest.json").read_text())
    assert train == json.loads(json.dumps(manifests["train"]))
    assert train["totals"] == {"frames": 36, "sequences": 4, "cameras_kept": 16, "dropped_items": 0}
    assert train["frames_per_action"] == {"Photo": 12, "Sitting": 8, "SittingDown": 8, "WalkDog": 8}
    photo = train["subjects"]["S1"]["Photo"]["TakingPhoto"]
    assert photo["num_poses"] == 12 and photo["num_frames"] == 12
    for entry in photo["cameras"].values():
        assert entry["frames"] == [0, 5, 10] and entry["extra_frames_dropped"] == 2 and entry["video_frames"] == 14
    test = json.loads((out / "test_manifest.json").read_text())
    assert test["totals"] == {"frames": 14, "sequences": 2, "cameras_kept": 7, "dropped_items": 1}
    reason = "known corrupt video, corrupt_video_policy=drop_camera"
    path = "S11/Videos/Directions.54138969.mp4"
    assert test["dropped"] == [
        {"subject": "S11", "sequence": "Directions", "what": "camera 54138969", "path": path, "reason": reason}
    ]
    assert test["frame_list_sha256"] == sha256_lines(open_dataset(out / "test.zarr").frame_ids())
    assert open_dataset(out / "test.zarr").attrs["frame_list_sha256"] == test["frame_list_sha256"]
    second = test["subjects"]["S11"]["Directions"]["Directions 1"]
    assert second["subaction"] == 1 and set(second["cameras"]) == {str(c) for c in CAMERA_IDS}
    assert test["subjects"]["S11"]["Directions"]["Directions"]["subaction"] == 2
    assert train["subjects"]["S1"]["SittingDown"]["SittingDown"]["subaction"] == 2
    assert all(c["extra_frames_dropped"] == 1 for c in second["cameras"].values())
    assert "54138969" not in test["subjects"]["S11"]["Directions"]["Directions"]["cameras"]


def test_pseudo_labels_cover_every_part_and_masks_cut_them(extracted):
    out, _ = extracted
    store = open_dataset(out / "train.zarr")
    labels = store.read_part_labels(np.arange(store.num_frames))
    assert set(np.unique(labels).tolist()) == set(range(15))
    cut_something = False
    for row, text in enumerate(store.frame_ids()):
        intrinsics = store.camera_intrinsics[row]
        uncut = pseudo_part_labels(store.joints_2d[row], store.joints_3d[row, :, 2], intrinsics[:2].mean(),
                                   store.crop_affine[row], 256)  # fmt: skip
        assert (uncut == labels[row]).mean() > 0.99 if "/Sitting/" not in text else True
        if "/Sitting/" in text:  # masks: only the image's left half (x < W/2) is foreground
            x_image = apply_affine(store.crop_affine[row], np.array([[u, 0.0] for u in range(256)]))[:, 0]
            background = x_image > store.image_size[row, 0] / 2
            assert not labels[row][:, background].any()
            assert (uncut[:, ~background] == labels[row][:, ~background]).mean() > 0.99
            cut_something |= bool(uncut[:, background].any())
    assert cut_something


def test_drop_sequence_policy(release, tmp_path):
    root, _ = release
    config = settings(root, corrupt_video_policy="drop_sequence")
    record = extract_sequence(config, "S11", "Directions", tmp_path / "d")
    assert record["num_rows"] == 0 and record["cameras"] == {}
    reason = "known corrupt video, corrupt_video_policy=drop_sequence (all cameras)"
    assert record["dropped"] == [{"what": "sequence", "path": "S11/Videos/Directions.54138969.mp4", "reason": reason}]
    assert not (tmp_path / "d" / "frames.zarr").exists()
    extract_sequence(config, "S11", "Directions_1", tmp_path / "d1")
    manifest = merge_split([tmp_path / "d", tmp_path / "d1"], "test", tmp_path / "t.zarr", tmp_path / "m.json",
                           config.to_config(), ["S11"])  # fmt: skip
    assert manifest["totals"] == {"frames": 8, "sequences": 2, "cameras_kept": 4, "dropped_items": 1}
    assert open_dataset(tmp_path / "t.zarr").num_frames == 8


def test_corrupt_video_not_declared_is_an_error_naming_it(release, tmp_path):
    root, _ = release
    with pytest.raises(H36MVideoError, match=r"S11/Videos/Directions\.54138969\.mp4"):
        extract_sequence(settings(root, corrupt_videos=[]), "S11", "Directions", tmp_path / "d")
    assert not (tmp_path / "d").exists() and not list(tmp_path.iterdir())  # nothing half-written


def minimal_release(root: Path, name: str, shape=(1, 5, 96)) -> Path:
    raw = make_poses(shape[1], 0)
    write_cdf(root / "S1" / "MyPoseFeatures" / "D3_Positions" / f"{name}.cdf",
              raw.reshape(1, shape[1], 96)[..., : shape[2]])  # fmt: skip
    return root


def test_wrong_shape_cdf_names_the_file(tmp_path):
    root = minimal_release(tmp_path / "rel", "Walking", (1, 5, 90))
    with pytest.raises(H36MLayoutError, match=r"D3_Positions/Walking\.cdf: variable 'Pose' has shape \(1, 5, 90\)"):
        extract_sequence(settings(root), "S1", "Walking", tmp_path / "out")
    (root / "S1" / "MyPoseFeatures" / "D3_Positions" / "Walking.cdf").write_bytes(b"garbage")
    with pytest.raises(H36MLayoutError, match=r"Walking\.cdf: unreadable CDF"):
        extract_sequence(settings(root), "S1", "Walking", tmp_path / "out")


def test_missing_video_names_it_unless_expected_absent(tmp_path):
    root = minimal_release(tmp_path / "rel", "Walking")
    with pytest.raises(H36MLayoutError, match=r"S1/Videos/Walking\.54138969\.mp4: video not found"):
        extract_sequence(settings(root), "S1", "Walking", tmp_path / "out")
    absent = [f"S1/Videos/Walking.{c}.mp4" for c in CAMERA_IDS]
    record = extract_sequence(settings(root, expected_absent=absent), "S1", "Walking", tmp_path / "out")
    assert (
        record["num_rows"] == 0 and [d["reason"] for d in record["dropped"]] == ["video listed in expected_absent"] * 4
    )


def test_unknown_action_or_recording_names_the_file(tmp_path):
    root = minimal_release(tmp_path / "rel", "Dancing 1")
    with pytest.raises(H36MLayoutError, match=r"D3_Positions/Dancing 1\.cdf: unknown action 'Dancing'"):
        list_sequences(settings(root), "S1")
    root = minimal_release(tmp_path / "rel2", "Sitting")  # S1's sittings are "Sitting 1" and "Sitting 2"
    with pytest.raises(H36MLayoutError, match=r"D3_Positions/Sitting\.cdf: sequence 'Sitting' is not one of S1's"):
        list_sequences(settings(root), "S1")


def test_preprocessed_npz_import_matches_the_cdf_path(release, extracted, tmp_path):
    root, truth = release
    positions = {"S1": {}, "S11": {}}
    renamed = {"TakingPhoto": "Photo", "WalkingDog 1": "WalkDog 1"}
    for (subject, name), item in truth.items():
        positions[subject][renamed.get(name, name)] = item["raw"] / 1000.0
    npz = tmp_path / "data_3d_h36m.npz"
    np.savez_compressed(npz, positions_3d=np.array(positions, dtype=object))
    config = settings(root, preprocessed_npz=str(npz))
    assert [s.name for s in list_sequences(config, "S1")] == ["TakingPhoto", "Sitting 1", "SittingDown", "WalkingDog 1"]
    extract_sequence(config, "S1", "TakingPhoto", tmp_path / "p")
    from_npz = open_dataset(tmp_path / "p" / "frames.zarr")
    reference = open_dataset(extracted[0] / "train.zarr")
    rows = [i for i, t in enumerate(reference.frame_ids()) if "/Photo/" in t]
    np.testing.assert_allclose(from_npz.joints_3d, reference.joints_3d[rows], atol=0.05)
    np.testing.assert_array_equal(from_npz.frame_ids(), np.array(reference.frame_ids())[rows])
    bare = tmp_path / "bare"
    shutil.copytree(root / "S1" / "MyPoseFeatures", bare / "S1" / "MyPoseFeatures")
    with pytest.raises(H36MLayoutError, match=r"Videos/Photo\.54138969\.mp4: video not found \(the preprocessed npz"):
        extract_sequence(settings(bare, preprocessed_npz=str(npz)), "S1", "Photo", tmp_path / "q")


def test_metadata_is_checked(release, tmp_path):
    root, _ = release
    assert check_metadata(root / "metadata.xml")["agrees"]
    bad = tmp_path / "rel"
    bad.mkdir()
    write_metadata(bad / "metadata.xml", change=1.5)
    with pytest.raises(H36MLayoutError, match=r"rel/metadata\.xml: camera 54138969 fx = "):
        check_metadata(bad / "metadata.xml")
    (bad / "S1").symlink_to(root / "S1")
    with pytest.raises(H36MLayoutError, match="metadata.xml"):
        run_extract_sequence(settings(bad).to_config(), "S1", "TakingPhoto", str(tmp_path / "x"))


def test_ids_are_the_same_with_or_without_metadata_and_a_disagreeing_table_stops(release, tmp_path):
    root, _ = release
    bare = tmp_path / "bare"  # the same release without metadata.xml
    bare.mkdir()
    (bare / "S1").symlink_to(root / "S1")
    with_xml = run_extract_sequence(settings(root).to_config(), "S1", "SittingDown", str(tmp_path / "a"))
    without = run_extract_sequence(settings(bare).to_config(), "S1", "SittingDown", str(tmp_path / "b"))
    assert with_xml["subaction"] == without["subaction"] == 2  # S1's SittingDown 1 is "SittingDown 2"
    ids = open_dataset(tmp_path / "a" / "frames.zarr").frame_ids()
    assert ids == open_dataset(tmp_path / "b" / "frames.zarr").frame_ids()
    assert ids[0] == "S1/SittingDown/2/54138969/000000"
    # a metadata.xml whose table says the file on disk, "SittingDown", is subaction 1 (and lists a "SittingDown 1")
    table = {("S1", "SittingDown", 1): "SittingDown", ("S1", "SittingDown", 2): "SittingDown 1"}
    write_metadata(bare / "metadata.xml", rows=mapping_rows(table))
    message = r"bare/metadata\.xml: <mapping> gives S1 SittingDown subaction 1 as 'SittingDown'"
    with pytest.raises(H36MLayoutError, match=message):
        run_extract_sequence(settings(bare).to_config(), "S1", "SittingDown", str(tmp_path / "c"))
    assert not (tmp_path / "c").exists()


def test_fixture_covers_the_quirks():
    names = {name for _, name, *_ in SEQUENCES}
    assert {"TakingPhoto", "WalkingDog 1", "Sitting 1", "SittingDown"} <= names
    assert sequence_key("WalkingDog 1") == "WalkingDog_1"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"root": ""}, "dataset.h36m.root: path of the unpacked Human3.6M release is required"),
        ({"root": "/no/such/release"}, "dataset.h36m.root = '/no/such/release': not a directory"),
        ({"corrupt_video_policy": "ignore"}, "corrupt_video_policy must be drop_camera or drop_sequence"),
        ({"train_stride": 0}, r"dataset.h36m.train_stride = 0 must be >= 1"),
        ({"test_subjects": ["S1"]}, "a subject is in both train_subjects and test_subjects"),
        ({"pseudo_label_widths_mm": {"tail": 3}}, r"unknown parts \['tail'\]"),
        ({"colour": 1}, r"unknown keys \['colour'\]"),
    ],
)
def test_settings_reject_bad_values_naming_the_key(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        H36MSettings.from_config({"root": str(tmp_path), "train_subjects": ["S1"], **overrides})
