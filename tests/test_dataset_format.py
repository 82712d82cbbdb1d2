"""The common dataset format: exact round trips, and every broken store or batch rejected by file and field."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import zarr

from patchpose.dataset_format import (
    FORMAT_VERSION,
    DatasetFormatError,
    DatasetWriter,
    FrameId,
    frame_id,
    open_dataset,
    parse_frame_id,
)
from patchpose.dataset_validation import FIELDS, expected_fields
from patchpose.parts import PALETTE, PART_NAMES
from patchpose.provenance import DIGEST_ATTRIBUTE
from patchpose.skeleton import H36M
from tests.dataset_factory import TINY_ACTIONS, TINY_SUBJECTS, make_tiny_batch, write_tiny_dataset

N, FRAME_SIZE = 5, (16, 12)


def _tiny_batch(with_part_labels: bool = True, num_frames: int = N) -> dict[str, np.ndarray]:
    return make_tiny_batch(num_frames, FRAME_SIZE, np.random.default_rng(0), with_part_labels)


def _writer(path, with_part_labels: bool = True, **overrides) -> DatasetWriter:
    arguments = dict(
        num_frames=N,
        frame_size=FRAME_SIZE,
        has_part_labels=with_part_labels,
        source="synthetic",
        split="train",
        subjects=TINY_SUBJECTS,
        actions=TINY_ACTIONS,
    )
    return DatasetWriter(path, **{**arguments, **overrides})


@pytest.fixture(scope="module")
def pristine_store(tmp_path_factory):
    """One valid tiny store (with part labels), written once; tests tamper with copies of it."""
    return write_tiny_dataset(tmp_path_factory.mktemp("pristine") / "tiny.zarr", N, FRAME_SIZE)


@pytest.fixture
def tiny_store(tmp_path, pristine_store):
    """A private copy of the pristine store, at ``tmp_path / "tiny.zarr"``."""
    return shutil.copytree(pristine_store, tmp_path / "tiny.zarr")


def _rejected(path, *fragments: str, **options) -> str:
    """Open ``path``, expect a DatasetFormatError starting with the path and holding every fragment."""
    with pytest.raises(DatasetFormatError) as caught:
        open_dataset(path, **options)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    for fragment in fragments:
        assert fragment in message, message
    return message


def _edit_group_attrs(path, **changes) -> None:
    metadata_file = path / "zarr.json"
    metadata = json.loads(metadata_file.read_text())
    for key, value in changes.items():
        if value is None:
            metadata["attributes"].pop(key, None)
        else:
            metadata["attributes"][key] = value
    metadata_file.write_text(json.dumps(metadata))


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("with_part_labels", [True, False])
def test_round_trip_is_exact(tmp_path, with_part_labels):
    batch = _tiny_batch(with_part_labels)
    batch["frames"][1] = 0  # an all-fill-value chunk must still be written, or it would read as missing
    if with_part_labels:
        batch["part_labels"][1] = 0
    path = tmp_path / "tiny.zarr"
    with _writer(path, with_part_labels, extra_attrs={"render_seed": 7, "note": ["a", 1.5]}) as writer:
        writer.write(3, {name: values[3:] for name, values in batch.items()})  # out of order on purpose
        writer.write(0, {name: values[:3] for name, values in batch.items()})
    assert sorted(os.listdir(tmp_path)) == ["tiny.zarr"]

    store = open_dataset(path)
    assert (store.num_frames, store.frame_size, store.source, store.split) == (N, FRAME_SIZE, "synthetic", "train")
    assert (store.subjects, store.actions, store.has_part_labels) == (TINY_SUBJECTS, TINY_ACTIONS, with_part_labels)
    for name in expected_fields(with_part_labels):
        if name in ("frames", "part_labels"):
            stored = store.array(name)[...]
        else:
            stored = getattr(store, name)
            assert not stored.flags.writeable
        assert stored.dtype == FIELDS[name].dtype, name
        np.testing.assert_array_equal(stored, batch[name], err_msg=name)
    np.testing.assert_array_equal(store.read_frames([4, 0, 0]), batch["frames"][[4, 0, 0]])
    assert store.read_frames([]).shape == (0, *FRAME_SIZE, 3)
    if with_part_labels:
        np.testing.assert_array_equal(store.read_part_labels(np.array([2, 1])), batch["part_labels"][[2, 1]])
        assert store.attrs["part_names"] == list(PART_NAMES) and store.attrs["palette"] == PALETTE.tolist()
    else:
        assert "part_names" not in store.attrs and "palette" not in store.attrs
        with pytest.raises(KeyError, match="part_labels"):
            store.read_part_labels([0])

    attrs = store.attrs
    assert attrs["complete"] is True and attrs["format_version"] == FORMAT_VERSION
    assert attrs["joint_names"] == list(H36M.joint_names) and attrs["units"]["joints_3d"] == "mm"
    assert attrs["frame_size"] == list(FRAME_SIZE) and attrs["num_frames"] == N
    assert attrs["render_seed"] == 7 and attrs["note"] == ["a", 1.5]
    written = list(zarr.open_group(path, mode="r").attrs)
    assert written[-2:] == ["complete", DIGEST_ATTRIBUTE]  # the completion marker last, then the publish seal

    subjects = np.array(TINY_SUBJECTS)[batch["subject"]]
    actions = np.array(TINY_ACTIONS)[batch["action"]]
    np.testing.assert_array_equal(store.subject_names(), subjects)
    np.testing.assert_array_equal(store.action_names(), actions)
    expected_ids = [
        f"{subjects[i]}/{actions[i]}/{batch['subaction'][i]}/{batch['camera_id'][i]}/{batch['frame_index'][i]:06d}"
        for i in range(N)
    ]
    assert store.frame_ids() == expected_ids
    assert [frame_id(*parse_frame_id(text)) for text in expected_ids] == expected_ids


def test_chunk_layout(pristine_store):
    store = open_dataset(pristine_store)
    assert store.array("frames").chunks == (1, *FRAME_SIZE, 3)
    assert store.array("part_labels").chunks == (1, *FRAME_SIZE)
    assert store.array("joints_3d").chunks == (N, 17, 3)  # small arrays: blocks of up to 4096 rows


def test_frame_ids_are_canonical():
    assert frame_id("S9", "Walking Dog", 2, 54138969, 12) == "S9/Walking Dog/2/54138969/000012"
    assert parse_frame_id("S9/Walking Dog/2/54138969/000012") == FrameId("S9", "Walking Dog", 2, 54138969, 12)
    assert parse_frame_id("S1/Eating/1/60457274/1234567").frame_index == 1234567
    not_canonical = (
        "S9/Walking/2/54138969/12",
        "S9/Walking/2/54138969",
        "S9/Walking/0/54138969/000012",
        "S9/Walking/x/54138969/000012",
        "S9/Walk/ing/2/54138969/000012",
        "S9/Walking/02/54138969/000012",
        "S9",
    )
    for text in not_canonical:
        with pytest.raises(ValueError, match="canonical frame id"):
            parse_frame_id(text)
    with pytest.raises(ValueError, match="subject"):
        frame_id("S/9", "Walking", 1, 1, 1)
    with pytest.raises(ValueError, match="frame_index"):
        frame_id("S9", "Walking", 1, 1, -1)


# ---------------------------------------------------------------- rejected at write time


def _scaled_to_metres(batch):
    batch["joints_3d"] = batch["joints_3d"] / 1000


def _nan_joint(batch):
    batch["joints_3d"][3, 5, 1] = np.nan


def _float_frames(batch):
    batch["frames"] = batch["frames"] / 255.0


def _unknown_subject(batch):
    batch["subject"][2] = len(TINY_SUBJECTS)


def _sheared_rotation(batch):
    batch["camera_rotation"][1, 0, 1] = 0.1


def _image_px_joints(batch):
    batch["joints_2d"] = batch["joints_2d"] + 500


def _short_joints(batch):
    batch["joints_3d"] = batch["joints_3d"][:, :16]


def _bad_part_id(batch):
    batch["part_labels"][4, 0, 0] = 15


def _zero_subaction(batch):
    batch["subaction"][0] = 0


@pytest.mark.parametrize(
    "corrupt, field, text",
    [
        (_nan_joint, "joints_3d", "NaN or inf (first at frame 3)"),
        (_scaled_to_metres, "joints_3d", "looks like metres"),
        (_float_frames, "frames", "expected integers"),
        (_unknown_subject, "subject", "index out of vocabulary 0..1 (first at frame 2)"),
        (_sheared_rotation, "camera_rotation", "not orthonormal (|R R^T - I| > 0.0001) (first at frame 1)"),
        (_image_px_joints, "joints_2d", "outside the crop"),
        (_short_joints, "joints_3d", "expected shape (5, 17, 3), got (5, 16, 3)"),
        (_bad_part_id, "part_labels", "part ids must lie in 0..14 (first at frame 4)"),
        (_zero_subaction, "subaction", "1-based"),
    ],
)
def test_bad_batch_rejected_and_nothing_published(tmp_path, corrupt, field, text):
    batch = _tiny_batch()
    corrupt(batch)
    path = tmp_path / "bad.zarr"
    with pytest.raises(DatasetFormatError) as caught:
        with _writer(path) as writer:
            writer.write(0, batch)
    message = str(caught.value)
    assert message.startswith(f"{path}: field '{field}'") and text in message, message
    assert os.listdir(tmp_path) == []


def test_rows_not_all_written_rejected(tmp_path):
    path = tmp_path / "short.zarr"
    batch = _tiny_batch()
    with pytest.raises(DatasetFormatError, match=r"2 of 5 rows never written \(first \[3, 4\]\)"):
        with _writer(path) as writer:
            writer.write(0, {name: values[:3] for name, values in batch.items()})
    assert os.listdir(tmp_path) == []


def test_row_written_twice_and_rows_out_of_range_rejected(tmp_path):
    path = tmp_path / "twice.zarr"
    batch = _tiny_batch()
    with pytest.raises(DatasetFormatError, match="frame 2 written twice"):
        with _writer(path) as writer:
            writer.write(0, {name: values[:3] for name, values in batch.items()})
            writer.write(2, {name: values[2:] for name, values in batch.items()})
    with pytest.raises(DatasetFormatError, match=r"rows \[3, 3\+5\) not inside \[0, 5\)"):
        with _writer(path) as writer:
            writer.write(3, batch)
    assert os.listdir(tmp_path) == []


def test_batch_with_missing_or_unknown_field_rejected(tmp_path):
    batch = _tiny_batch()
    batch["joint_2d"] = batch.pop("joints_2d")
    with pytest.raises(DatasetFormatError, match=r"missing fields \['joints_2d'\], unknown fields \['joint_2d'\]"):
        with _writer(tmp_path / "typo.zarr") as writer:
            writer.write(0, batch)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "overrides, text",
    [
        ({"num_frames": 0}, "num_frames must be an integer >= 1"),
        ({"frame_size": (16,)}, "frame_size must be (H, W)"),
        ({"split": "validation"}, "split in ('train', 'test')"),
        ({"subjects": ("S1", "S1")}, "subjects must be unique"),
        ({"actions": ("Walk/Run",)}, "field 'actions': names must be"),
        ({"extra_attrs": {"num_frames": 3}}, "reserved attrs ['num_frames']"),
        ({"extra_attrs": {"bad": float("nan")}}, "not JSON-serialisable"),
    ],
)
def test_bad_writer_arguments_rejected(tmp_path, overrides, text):
    with pytest.raises(DatasetFormatError) as caught:
        _writer(tmp_path / "x.zarr", **overrides)
    assert text in str(caught.value)
    assert os.listdir(tmp_path) == []


def test_write_outside_context_rejected(tmp_path):
    with pytest.raises(RuntimeError, match="only inside"):
        _writer(tmp_path / "x.zarr").write(0, _tiny_batch())


def test_rewrite_replaces_an_old_store(tmp_path):
    path = write_tiny_dataset(tmp_path / "tiny.zarr", N, FRAME_SIZE, seed=1)
    write_tiny_dataset(path, 3, (8, 8), with_part_labels=False, seed=2)
    store = open_dataset(path)
    assert (store.num_frames, store.frame_size, store.has_part_labels) == (3, (8, 8), False)
    assert os.listdir(tmp_path) == ["tiny.zarr"]


# ---------------------------------------------------------------- rejected at read time


def test_missing_store_and_non_zarr_v3_rejected(tmp_path):
    _rejected(tmp_path / "absent.zarr", "missing store")
    (tmp_path / "empty.zarr").mkdir()
    _rejected(tmp_path / "empty.zarr", "not a zarr v3 group (no zarr.json)")
    zarr.open_group(tmp_path / "v2.zarr", mode="w", zarr_format=2)
    _rejected(tmp_path / "v2.zarr", "not a zarr v3 group (a zarr v2 store)")
    zarr.open_array(tmp_path / "array.zarr", mode="w", shape=(2,), dtype="f4", zarr_format=3)
    _rejected(tmp_path / "array.zarr", "not a zarr v3 group", "lacks zarr_format 3 / node_type group")


@pytest.mark.parametrize(
    "changes, text",
    [
        ({"complete": None}, "incomplete or truncated store"),
        ({"complete": False}, "incomplete or truncated store"),
        ({"format_version": 2}, "'format_version' is 2; this code reads version 1"),
        ({"subjects": ["S1"]}, "field 'subject': index out of vocabulary 0..0"),
        ({"units": {"joints_3d": "m", "joints_2d": "crop_px"}}, "attr 'units'"),
        ({"num_frames": 4}, "field 'frames': inconsistent N: (5,) rows but attr num_frames=4"),
        ({"frame_size": [16, 16]}, "field 'frames': expected (5, 16, 16, 3) uint8, got (5, 16, 12, 3) uint8"),
        ({"split": "val"}, "split in ('train', 'test')"),
        ({"joint_names": list(H36M.joint_names)[::-1]}, "attr 'joint_names'"),
        ({"palette": None}, "field 'part_labels': attrs 'part_names'/'palette'"),
    ],
)
def test_bad_attrs_rejected(changes, text, tiny_store):
    _edit_group_attrs(tiny_store, **changes)
    _rejected(tiny_store, text)


def _replace_array(path, name, values) -> None:
    shutil.rmtree(path / name)
    zarr.open_group(path, mode="r+", zarr_format=3).create_array(name, data=values)


def test_wrong_shape_dtype_and_inconsistent_n_rejected(tiny_store):
    joints = open_dataset(tiny_store).joints_3d
    _replace_array(tiny_store, "joints_3d", joints[:, :16])
    _rejected(tiny_store, "field 'joints_3d'", "expected (5, 17, 3) float32, got (5, 16, 3) float32")
    _replace_array(tiny_store, "joints_3d", joints.astype(np.float64))
    _rejected(tiny_store, "field 'joints_3d'", "got (5, 17, 3) float64")
    _replace_array(tiny_store, "joints_3d", np.concatenate([joints, joints[:1]]))
    _rejected(tiny_store, "field 'joints_3d'", "inconsistent N: (6,) rows but attr num_frames=5")


@pytest.mark.parametrize("name", ["camera_intrinsics", "frames", "part_labels"])
def test_missing_field_rejected(tiny_store, name):
    shutil.rmtree(tiny_store / name)
    _rejected(tiny_store, f"field '{name}': missing required field")


def test_unreadable_array_metadata_rejected(tiny_store):
    (tiny_store / "joints_2d" / "zarr.json").write_text('{"shape": [5')
    _rejected(tiny_store, "field 'joints_2d': unreadable array metadata")


def _overwrite(path, name, index, value) -> None:
    zarr.open_group(path, mode="r+", zarr_format=3)[name][index] = value


@pytest.mark.parametrize(
    "name, index, value, text",
    [
        ("joints_3d", (2, 3, 0), np.inf, "NaN or inf (first at frame 2)"),
        ("joints_3d", (4, 0, 2), -10.0, "behind the camera (Z <= 0 mm) (first at frame 4)"),
        ("camera_rotation", (1,), np.diag([1.0, 1.0, -1.0]), "det -1 (a reflection) (first at frame 1)"),
        ("camera_rotation", (3,), 2 * np.eye(3), "not orthonormal (|R R^T - I| > 0.0001) (first at frame 3)"),
        ("action", (0,), -1, "index out of vocabulary 0..2 (first at frame 0)"),
        ("camera_intrinsics", (1, 0), 0.0, "focal lengths"),
        ("crop_affine", (2, 0, 0), -1.0, "det > 0"),
        ("image_size", (0, 1), 0, "width and height"),
    ],
)
def test_bad_values_on_disk_rejected(name, index, value, text, tiny_store):
    _overwrite(tiny_store, name, index, value)
    _rejected(tiny_store, f"field '{name}'", text)


def test_joints_in_metres_on_disk_rejected(tiny_store):
    joints = zarr.open_group(tiny_store, mode="r+", zarr_format=3)["joints_3d"]
    joints[...] = joints[...] / 1000
    _rejected(tiny_store, "field 'joints_3d'", "median bone length", "looks like metres, not mm")


@pytest.mark.parametrize("name, chunk_key", [("frames", "c/3/0/0/0"), ("part_labels", "c/3/0/0")])
def test_truncated_store_rejected_naming_the_chunk_file(name, chunk_key, tiny_store):
    chunk = tiny_store / name / chunk_key
    chunk.unlink()
    _rejected(tiny_store, f"field '{name}'", f"missing chunk file {chunk}", "truncated")
    # Unverified, zarr would hand back fill values as if they were data: the check above is what catches it.
    store = open_dataset(tiny_store, verify_chunks=False)
    if name == "frames":
        assert not store.read_frames([3]).any()
    else:
        with pytest.raises(DatasetFormatError, match="part id >= 15 at frame 3"):
            store.read_part_labels([0, 3])


def test_empty_chunk_file_counts_as_truncated(tiny_store):
    chunk = tiny_store / "frames" / "c" / "1" / "0" / "0" / "0"
    chunk.write_bytes(b"")
    _rejected(tiny_store, "field 'frames'", f"missing chunk file {chunk}")


@pytest.mark.parametrize(
    "chunk, name, text",
    [
        (("0", "0", "0"), "joints_3d", "NaN or inf"),
        (("0",), "camera_id", "must be >= 0"),
        (("0",), "subaction", "1-based"),
    ],
)
def test_missing_small_chunk_is_caught_by_its_fill_value(tiny_store, chunk, name, text):
    """Even unverified, a lost small-array chunk reads as fill values chosen to fail validation."""
    tiny_store.joinpath(name, "c", *chunk).unlink()
    _rejected(tiny_store, f"field '{name}'", text, verify_chunks=False)


def test_corrupt_frame_chunk_named_on_read(tiny_store):
    chunk = tiny_store / "frames" / "c" / "2" / "0" / "0" / "0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    store = open_dataset(tiny_store)
    with pytest.raises(DatasetFormatError, match=r"field 'frames': cannot read frames \[2\]"):
        store.read_frames([2])


def test_bad_read_indices_rejected(pristine_store):
    store = open_dataset(pristine_store)
    with pytest.raises(IndexError, match=r"\[0, 5\)"):
        store.read_frames([5])
    with pytest.raises(IndexError, match=r"\[0, 5\)"):
        store.read_frames([-1])
    with pytest.raises(ValueError, match="1-D integer"):
        store.read_frames([[0, 1]])
    with pytest.raises(ValueError, match="1-D integer"):
        store.read_frames([0.5])


def test_tiny_dataset_follows_the_documented_conventions(pristine_store):
    """Projection (pinhole, zero distortion) then the inverse crop affine gives joints_2d; ids parse back."""
    store = open_dataset(pristine_store)
    assert not store.camera_distortion.any()
    points = store.joints_3d.astype(np.float64)  # world == camera frame here: R = I, C = 0
    fx, fy, cx, cy = np.moveaxis(store.camera_intrinsics[:, None, :], -1, 0)
    image_px = np.stack([fx * points[..., 0] / points[..., 2] + cx, fy * points[..., 1] / points[..., 2] + cy], -1)
    linear, offset = store.crop_affine[:, :, :2], store.crop_affine[:, None, :, 2]
    crop_px = np.einsum("nij,nkj->nki", np.linalg.inv(linear), image_px - offset)
    np.testing.assert_allclose(crop_px, store.joints_2d, atol=1e-3)
    assert [parse_frame_id(text).frame_index for text in store.frame_ids()] == store.frame_index.tolist()
