"""The patch store: round trip through the stage, atomic writes, and every rejection naming the file."""

from __future__ import annotations

import ctypes
import errno
import hashlib
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec, GzipCodec

from patchpose import atomic
from patchpose.dataset_format import open_dataset
from patchpose.patches.geometry import LimbPatchGeometry, limb_patch_geometry, whole_frame_geometry
from patchpose.patches.sampler import cut_patches
from patchpose.patches.stage import write_limb_patches, write_uncropped
from patchpose.patches.store import PatchStoreError, _ChunkFiles, open_patch_store, write_patch_store
from patchpose.segmentation.store import open_segmentation
from patchpose.skeleton import H36M
from tests.dataset_factory import write_tiny_dataset
from tests.patches_factory import write_label_segmentation

GEOMETRY = LimbPatchGeometry(min_side_at_256=28, scale=2.3, square=True, cache_size=24)
LZ4 = {"compressor": "lz4", "compression_level": 5}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("patch_inputs")
    dataset = write_tiny_dataset(directory / "test.zarr", num_frames=11, frame_size=(40, 40), split="test")
    segmentation = write_label_segmentation(directory / "segmentation.zarr", open_dataset(dataset))
    return {"dataset": dataset, "segmentation": segmentation}


def _write_predictions(path: Path, store, joints: np.ndarray) -> Path:
    """A keypoints2d prediction file as the keypoints2d stage writes it."""
    buffer = io.BytesIO()
    ids = np.array(store.frame_ids())
    np.savez(
        buffer, joints_2d=joints.astype(np.float32), fold=np.zeros(len(ids)), frame_ids=ids, split=np.array("test")
    )
    path.write_bytes(buffer.getvalue())
    return path


def _expected(inputs, joints, geometry=GEOMETRY):
    store = open_dataset(inputs["dataset"])
    rows = np.arange(store.num_frames)
    encoded = open_segmentation(inputs["segmentation"], store).read_encoded(rows)
    boxes, affines = limb_patch_geometry(joints.astype(np.float64), store.frame_size, geometry)
    return cut_patches(store.read_frames(rows), encoded, affines, geometry.cache_size), affines, boxes


@pytest.mark.parametrize("compressor", ["lz4", "zstd"])
def test_groundtruth_store_round_trips(inputs, tmp_path, compressor):
    path = write_limb_patches(
        inputs["dataset"], inputs["segmentation"], tmp_path / "groundtruth.zarr", source="groundtruth",
        geometry=GEOMETRY, storage={"compressor": compressor, "compression_level": 3},
    )  # fmt: skip
    dataset = open_dataset(inputs["dataset"])
    store = open_patch_store(path, dataset)
    patches, affines, boxes = _expected(inputs, dataset.joints_2d)
    assert (store.kind, store.source, store.split, store.num_frames, store.num_patches) == (
        "limbs",
        "groundtruth",
        "test",
        11,
        16,
    )
    assert store.patch_names == H36M.limb_names and store.patch_size == 24
    assert store.geometry == {"min_side_at_256": 28.0, "min_side_px": 28 * 40 / 256, "scale": 2.3, "square": True}
    everything = np.arange(11)
    assert np.array_equal(store.read(everything), patches)
    assert np.array_equal(store.read_affine(everything), affines) and np.array_equal(store.read_box(everything), boxes)
    shuffled = np.array([7, 2, 2, 10, 0])
    assert np.array_equal(store.read(shuffled), patches[shuffled])
    assert store._chunk_files is not None  # read from the chunk files directly: the same as through zarr
    through_zarr = zarr.open_group(path, mode="r")["patches"]
    assert np.array_equal(store.read(shuffled), np.stack([through_zarr[row] for row in shuffled]))
    assert store.attrs["compressor"] == {"name": compressor, "level": 3}
    assert not list(tmp_path.glob("*.tmp-*"))  # nothing left of the temporary directory


def test_predicted_store_follows_the_prediction_file(inputs, tmp_path):
    dataset = open_dataset(inputs["dataset"])
    predicted = dataset.joints_2d + np.float32(1.5)  # a biased 2D detector
    joints_path = _write_predictions(tmp_path / "test_joints_2d.npz", dataset, predicted)
    path = write_limb_patches(inputs["dataset"], inputs["segmentation"], tmp_path / "predicted.zarr",
                              source="predicted", geometry=GEOMETRY, storage=LZ4, joints_path=joints_path)  # fmt: skip
    store = open_patch_store(path, dataset)
    patches, affines, _ = _expected(inputs, predicted)
    assert np.array_equal(store.read(np.arange(11)), patches)
    assert np.allclose(store.read_box(np.arange(11))[..., :2] - 1.5, limb_patch_geometry(
        dataset.joints_2d.astype(np.float64), dataset.frame_size, GEOMETRY)[0][..., :2])  # fmt: skip


def test_uncropped_store_holds_the_whole_frames(inputs, tmp_path):
    path = write_uncropped(inputs["dataset"], inputs["segmentation"], tmp_path / "uncropped.zarr", size=20, storage=LZ4)
    dataset = open_dataset(inputs["dataset"])
    store = open_patch_store(path, dataset)
    assert (store.kind, store.num_patches, store.patch_size, store.patch_names) == ("uncropped", 1, 20, ("frame",))
    rows = np.arange(11)
    _, affines = whole_frame_geometry(11, (40, 40), 20)
    encoded = open_segmentation(inputs["segmentation"], dataset).read_encoded(rows)
    assert np.array_equal(store.read(rows), cut_patches(dataset.read_frames(rows), encoded, affines, 20))


@pytest.fixture
def written(inputs, tmp_path) -> Path:
    return write_limb_patches(inputs["dataset"], inputs["segmentation"], tmp_path / "store.zarr",
                              source="groundtruth", geometry=GEOMETRY, storage=LZ4)  # fmt: skip


def test_garbled_chunk_file_is_named_on_read(written):
    chunk = written / "patches" / "c.4.0.0.0.0"
    chunk.write_bytes(b"not a blosc frame" * 8)
    store = open_patch_store(written)  # the file is there: only reading it finds the damage
    assert store.read([3]).shape == (1, 16, 6, 24, 24)
    with pytest.raises(PatchStoreError, match=rf"{written}: array 'patches': cannot read frame 4: .*c\.4\.0\.0\.0\.0"):
        store.read([3, 4])


@pytest.mark.parametrize(
    "chunks, compressor, key_separator, readable",
    [
        ((1, 2, 3), BloscCodec(cname="lz4", typesize=1), ".", True),
        ((1, 2, 3), GzipCodec(), ".", False),  # a codec this module never writes
        ((2, 2, 3), BloscCodec(cname="lz4", typesize=1), ".", False),  # two samples per chunk
        ((1, 2, 3), BloscCodec(cname="lz4", typesize=1), "/", False),  # nested chunk keys
    ],
)
def test_only_the_written_layout_is_read_from_chunk_files(tmp_path, chunks, compressor, key_separator, readable):
    group = zarr.open_group(tmp_path / "g.zarr", mode="w", zarr_format=3)
    array = group.create_array("patches", shape=(4, 2, 3), chunks=chunks, dtype="uint8", compressors=compressor,
                               chunk_key_encoding={"name": "default", "separator": key_separator})  # fmt: skip
    array[:] = np.arange(24, dtype=np.uint8).reshape(4, 2, 3)
    files = _ChunkFiles.of(tmp_path / "g.zarr" / "patches")
    assert (files is not None) == readable
    if readable:
        assert np.array_equal(files.read(3), array[3])


def test_truncated_store_is_rejected_naming_the_file(written):
    chunk = written / "patches" / "c.4.0.0.0.0"
    assert chunk.is_file()
    chunk.unlink()
    with pytest.raises(PatchStoreError, match=rf"missing chunk file {chunk} \(truncated store\)"):
        open_patch_store(written)
    open_patch_store(written, verify_chunks=False)  # zarr alone would read zeros without complaint


def test_empty_chunk_file_is_rejected(written):
    (written / "box" / "c.0.0.0").write_bytes(b"")
    with pytest.raises(PatchStoreError, match=r"array 'box': missing chunk file .*c\.0\.0\.0"):
        open_patch_store(written)


def test_incomplete_store_is_rejected(written):
    metadata = json.loads((written / "zarr.json").read_text())
    metadata["attributes"]["complete"] = False
    (written / "zarr.json").write_text(json.dumps(metadata))
    with pytest.raises(PatchStoreError, match=rf"{written}: incomplete or truncated store"):
        open_patch_store(written)


def test_missing_or_foreign_store_is_rejected(inputs, tmp_path):
    with pytest.raises(PatchStoreError, match="missing store"):
        open_patch_store(tmp_path / "absent.zarr")
    with pytest.raises(PatchStoreError, match="not a patchpose-patches store"):
        open_patch_store(inputs["segmentation"])


def test_store_of_other_frames_is_rejected(inputs, written, tmp_path):
    other = open_dataset(write_tiny_dataset(tmp_path / "other.zarr", num_frames=11, frame_size=(40, 40), seed=5))
    with pytest.raises(PatchStoreError, match=rf"{written}: holds patches of other frames than .*other\.zarr"):
        open_patch_store(written, other)


def _zeros(start, stop):
    return (
        np.zeros((stop - start, 16, 6, 8, 8), np.uint8),
        np.zeros((stop - start, 16, 2, 3)),
        np.zeros((stop - start, 16, 4)),
    )


def _write_small(path: Path, produce=_zeros) -> Path:
    return write_patch_store(
        path, kind="limbs", source="groundtruth", split="test", frame_ids=[f"f{i}" for i in range(10)],
        frame_size=(32, 32), patch_names=H36M.limb_names, patch_size=8, geometry={}, compressor="lz4",
        compression_level=1, chunk_frames=2, produce=produce,
    )  # fmt: skip


def test_killed_writer_leaves_nothing(tmp_path):
    def produce(start, stop):
        if start >= 4:
            raise KeyboardInterrupt("killed")
        return _zeros(start, stop)

    with pytest.raises(KeyboardInterrupt):
        _write_small(tmp_path / "killed.zarr", produce)
    assert list(tmp_path.iterdir()) == []


def _tree_digests(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, by path relative to it."""
    return {
        str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest() for f in root.rglob("*") if f.is_file()
    }


def test_store_is_flushed_whole_and_final_before_it_appears(inputs, tmp_path, monkeypatch):
    """The durability step sees every file exactly as published (nothing written after it, e.g. the
    attrs), and runs before the store appears at its path."""
    target, flushed, flush = tmp_path / "durable.zarr", [], atomic._fsync_tree

    def record(root: Path) -> None:
        flushed.append((target.exists(), _tree_digests(root)))
        flush(root)

    monkeypatch.setattr(atomic, "_fsync_tree", record)
    write_limb_patches(inputs["dataset"], inputs["segmentation"], target, source="groundtruth", geometry=GEOMETRY,
                       storage=LZ4)  # fmt: skip
    assert len(flushed) == 1, "the store was never flushed to disk before it was published"
    existed, digests = flushed[0]
    assert not existed and digests == _tree_digests(target)
    assert len([name for name in digests if name.startswith("patches/c.")]) == 11  # one chunk file per frame


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="syncfs and /proc/self/fd are Linux's")
def test_store_is_synced_with_one_syncfs_or_an_fsync_per_file(tmp_path, monkeypatch):
    synced = []

    def fake_syncfs(fd):
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        return 0

    monkeypatch.setattr(atomic, "_SYNCFS", fake_syncfs)
    _write_small(tmp_path / "syncfs.zarr")
    assert len(synced) == 1 and synced[0].name.startswith("syncfs.zarr.tmp-")  # the tree, before the rename

    fsynced = []
    real_fsync = os.fsync

    def fsync(fd):
        fsynced.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    monkeypatch.setattr(atomic, "_SYNCFS", None)  # a platform without syncfs: every file on its own
    monkeypatch.setattr(os, "fsync", fsync)
    target = _write_small(tmp_path / "fsync.zarr")
    (temporary,) = {
        path.parent for path in fsynced if path.name == "zarr.json" and "fsync.zarr.tmp-" in path.parent.name
    }
    files = {str(path.relative_to(temporary)) for path in fsynced if path.is_relative_to(temporary)}
    assert files >= {str(f.relative_to(target)) for f in target.rglob("*") if f.is_file()} | {"."}


def test_failed_sync_publishes_nothing(tmp_path, monkeypatch):
    def failing_syncfs(fd):
        ctypes.set_errno(errno.EIO)
        return -1

    monkeypatch.setattr(atomic, "_SYNCFS", failing_syncfs)
    with pytest.raises(OSError, match=r"failing\.zarr\.tmp-.*: syncfs failed: Input/output error"):
        _write_small(tmp_path / "failing.zarr")
    assert list(tmp_path.iterdir()) == []


def test_bad_predictions_are_named(inputs, tmp_path):
    dataset = open_dataset(inputs["dataset"])
    joints = dataset.joints_2d.copy()
    joints[3, 5] = np.nan
    nan_file = _write_predictions(tmp_path / "nan_joints_2d.npz", dataset, joints)
    with pytest.raises(ValueError, match=rf"{nan_file}: .*NaN or inf"):
        write_limb_patches(inputs["dataset"], inputs["segmentation"], tmp_path / "out.zarr", source="predicted",
                           geometry=GEOMETRY, storage=LZ4, joints_path=nan_file)  # fmt: skip
    short = _write_predictions(tmp_path / "short_joints_2d.npz", dataset, dataset.joints_2d)
    with np.load(short) as data:
        np.savez(short, **{**data, "joints_2d": data["joints_2d"][:, :16]})
    with pytest.raises(ValueError, match=rf"{short}: predictions do not match the frames"):
        write_limb_patches(inputs["dataset"], inputs["segmentation"], tmp_path / "out.zarr", source="predicted",
                           geometry=GEOMETRY, storage=LZ4, joints_path=short)  # fmt: skip
    with pytest.raises(ValueError, match="needs the keypoints2d predictions file"):
        write_limb_patches(inputs["dataset"], inputs["segmentation"], tmp_path / "out.zarr", source="predicted",
                           geometry=GEOMETRY, storage=LZ4)  # fmt: skip
    with pytest.raises(ValueError, match="unknown 2D source 'oracle'"):
        write_limb_patches(inputs["dataset"], inputs["segmentation"], tmp_path / "out.zarr", source="oracle",
                           geometry=GEOMETRY, storage=LZ4)  # fmt: skip
    assert not (tmp_path / "out.zarr").exists()
