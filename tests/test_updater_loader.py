"""The updater's patch loader: the right samples, in the planned order, the same batches with or without loader
processes, a lazily read plan, and a read-ahead that ``fitting.fit`` (and its resume) uses unchanged."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
import torch

from patchpose.fitting import fit, train_spec
from patchpose.patches.store import open_patch_store, write_patch_store
from patchpose.rng import stream
from patchpose.skeleton import H36M
from patchpose.training import TrainSpec, batches
from patchpose.updater.inputs import prepare_batch, read_boxes, shrink_patches
from patchpose.updater.loader import PatchBatches, PrefetchingMakeBatch, ShrunkPatches, check_store, epoch_plan
from patchpose.updater.network import OUTPUTS, build_network

FRAMES, SIZE = 14, 4


def sample(row: int, patches: int = 16) -> np.ndarray:
    """Frame ``row``'s (P, 6, R, R) patches: every value names the frame, patch, channel and pixel."""
    p, c, y, x = np.meshgrid(*(np.arange(n) for n in (patches, 6, SIZE, SIZE)), indexing="ij")
    return ((row * 31 + p * 7 + c * 3 + y * SIZE + x) % 256).astype(np.uint8)


def _write(path, kind: str):
    patches = 16 if kind == "limbs" else 1

    def produce(start, stop):
        rows = range(start, stop)
        boxes = np.array([[[row + 0.5, p, 2 * SIZE, SIZE] for p in range(patches)] for row in rows], dtype=float)
        return np.stack([sample(row, patches) for row in rows]), np.zeros((stop - start, patches, 2, 3)), boxes

    names = H36M.limb_names if kind == "limbs" else ("frame",)
    return write_patch_store(
        path, kind=kind, source="predicted" if kind == "limbs" else "uncropped", split="train",
        frame_ids=[f"f{i}" for i in range(FRAMES)], frame_size=(32, 32), patch_names=names, patch_size=SIZE,
        geometry={}, compressor="lz4", compression_level=1, chunk_frames=4, produce=produce,
    )  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return open_patch_store(_write(tmp_path_factory.mktemp("patches") / "train.zarr", "limbs"))


ROWS = np.array([13, 2, 5, 7, 0, 11, 9, 3, 4, 12])  # the training examples: store rows, in no order


def test_read_gives_the_rows_samples(store):
    source = PatchBatches(store, ROWS)
    batch = source.read(np.array([3, 0, 3]))
    assert batch.rows.tolist() == [7, 13, 7] and batch.positions.tolist() == [3, 0, 3]
    assert batch.patches.dtype == torch.uint8
    np.testing.assert_array_equal(batch.patches.numpy(), np.stack([sample(7), sample(13), sample(7)]))
    with pytest.raises(IndexError, match=re.escape(f"{store.path}: positions must lie in [0, 10)")):
        source.read(np.array([10]))
    with pytest.raises(ValueError, match=re.escape(f"{store.path}: rows must lie in [0, {FRAMES})")):
        PatchBatches(store, [0, FRAMES])


def test_store_must_fit_the_modality(store, tmp_path):
    check_store(store, "rgb_seg")
    uncropped = open_patch_store(_write(tmp_path / "uncropped.zarr", "uncropped"))
    check_store(uncropped, "uncropped_rgb")
    with pytest.raises(ValueError, match=re.escape(f"{uncropped.path}: a 'uncropped' store of 1 patches")):
        PatchBatches(uncropped, [0, 1], modality="rgb")
    with pytest.raises(ValueError, match="cannot feed modality 'uncropped_rgb'"):
        check_store(store, "uncropped_rgb")


def test_boxes_are_read_normalised_in_row_order(store):
    boxes = read_boxes(store, ROWS)
    assert boxes.shape == (len(ROWS), 16, 4) and boxes.dtype == np.float32
    np.testing.assert_allclose(boxes[:, 0, 0], (ROWS + 1) / 16 - 1)  # centre x = row + 0.5 px of 32 px
    np.testing.assert_allclose(boxes[0, :, 1], (np.arange(16) + 0.5) / 16 - 1)
    np.testing.assert_allclose(boxes[..., 2:], np.broadcast_to([0.5, 0.25], (len(ROWS), 16, 2)))


def test_epoch_plan_is_what_train_draws():
    for epoch in (0, 3):
        expected = batches(10, 4, stream(5, "updater", "fold", 1, "epoch", epoch))
        plan = epoch_plan(10, 4, 5, ("updater", "fold", 1), epoch)
        assert [b.tolist() for b in plan] == [b.tolist() for b in expected]
    assert epoch_plan(10, 4, 5, ("updater",), 0)[0].tolist() != epoch_plan(10, 4, 5, ("updater",), 1)[0].tolist()


def _served(store, workers: int, plan) -> list:
    source = PatchBatches(store, ROWS, num_workers=workers, prefetch_factor=2)
    return [(b.positions.tolist(), b.rows.tolist(), b.patches.numpy().copy()) for b in source.iterate(plan)]


def test_same_batches_in_the_same_order_whatever_the_workers(store):
    plan = [p for epoch in range(3) for p in epoch_plan(len(ROWS), 3, 7, ("updater",), epoch)]
    alone, workers = _served(store, 0, plan), _served(store, 2, plan)
    assert [b[0] for b in alone] == [p.tolist() for p in plan]
    assert len(alone) == len(workers)
    for (positions, rows, patches), (positions2, rows2, patches2) in zip(alone, workers, strict=True):
        assert positions == positions2 and rows == rows2
        np.testing.assert_array_equal(patches, patches2)
        np.testing.assert_array_equal(patches, np.stack([sample(row) for row in rows]))


@pytest.mark.parametrize("workers", [0, 2])
def test_the_plan_is_read_lazily(store, workers):
    """An endless plan: the loader reads only what is taken (plus its read-ahead), so memory is O(batch)."""
    source = PatchBatches(store, ROWS, num_workers=workers)
    endless = itertools.cycle([np.array([0, 1]), np.array([2])])
    taken = list(itertools.islice(source.iterate(endless), 5))
    assert [b.rows.tolist() for b in taken] == [[13, 2], [5], [13, 2], [5], [13, 2]]


class _ImagesOnly(torch.nn.Module):
    """``training.train`` calls ``model(inputs)`` with one tensor; the unconditioned network ignores the rest."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, images):
        return self.network(images, torch.zeros(len(images), OUTPUTS), None)


SETTINGS = {
    "model": {"architecture": "limb_encoder", "condition_on_initial_pose": False,
              "limb_encoder": {"widths": [4], "convs_per_stage": 1, "pooled_side": 1, "embedding": 3,
                               "hidden": 8}},
    "training": {"epochs": 3, "batch_size": 3, "learning_rate": 1e-2, "weight_decay": 0.0},
}  # fmt: skip
HELD = np.array([1, 6])  # examples held out for validation: fit trains on the other 8, 3 batches per epoch
TARGETS = torch.linspace(-1, 1, len(ROWS) * OUTPUTS).view(len(ROWS), OUTPUTS)


def _build(batch, rng, device):
    return prepare_batch(batch.patches, "rgb_seg", 8, device), TARGETS[torch.from_numpy(batch.positions)]


def _fit(store, tmp_path, make_batch, name, after_epoch=None):
    direct = PatchBatches(store, ROWS)
    model = fit(("updater",), lambda model: _ImagesOnly(build_network(model, "rgb_seg")), SETTINGS, 11, len(ROWS),
                make_batch, torch.nn.functional.mse_loss, tmp_path / f"{name}_model.pt", tmp_path / f"{name}.pt",
                validation_rows=HELD, make_eval_batch=lambda rows, device: _build(direct.read(rows), None, device),
                after_epoch=after_epoch)  # fmt: skip
    return model.state_dict()


class Killed(Exception):
    pass


def test_read_ahead_plugs_into_fit_and_train_unchanged_and_resumes(store, tmp_path):
    direct = PatchBatches(store, ROWS)
    expected = _fit(store, tmp_path, lambda rows, rng, device: _build(direct.read(rows), rng, device), "direct")
    spec = train_spec(SETTINGS["training"], 11, ("updater",))
    training = np.setdiff1d(np.arange(len(ROWS)), HELD)  # what fit's positions stand for

    def prefetching():
        return PrefetchingMakeBatch(PatchBatches(store, ROWS, num_workers=2), spec, _build, training)

    make_batch = prefetching()
    weights = _fit(store, tmp_path, make_batch, "prefetched")
    assert (make_batch.hits, make_batch.misses) == (3 * 3 - 1, 1)  # only the very first batch is read at once
    assert all(torch.equal(weights[key], expected[key]) for key in expected)

    def kill(epoch):
        if epoch == 0:
            raise Killed

    killed, resumed = prefetching(), prefetching()
    with pytest.raises(Killed):
        _fit(store, tmp_path, killed, "resumed", after_epoch=kill)
    weights = _fit(store, tmp_path, resumed, "resumed")
    assert (resumed.hits, resumed.misses) == (2 * 3 - 1, 1)  # epoch 1's first batch: where it resumes
    assert all(torch.equal(weights[key], expected[key]) for key in expected)
    for each in (make_batch, killed, resumed):
        each.close()


def test_read_ahead_answers_every_request_even_off_the_plan(store):
    spec = TrainSpec(epochs=2, batch_size=3, learning_rate=1e-3, weight_decay=0.0, seed=4, names=("updater",))
    plans = [epoch_plan(len(ROWS), 3, 4, ("updater",), epoch) for epoch in range(2)]
    make_batch = PrefetchingMakeBatch(PatchBatches(store, ROWS, num_workers=2), spec, lambda batch, rng, d: batch)
    requests = [plans[0][0], plans[0][1], np.array([9, 9]), plans[0][2], plans[1][1], plans[1][2]]
    for positions in requests:  # off the plan: [9, 9] (kept read-ahead), epoch 1 from its second batch (restart)
        batch = make_batch(positions, None, torch.device("cpu"))
        assert batch.positions.tolist() == positions.tolist()
        np.testing.assert_array_equal(batch.patches.numpy(), np.stack([sample(row) for row in ROWS[positions]]))
    assert (make_batch.hits, make_batch.misses) == (3, 3)
    make_batch.close()


@pytest.mark.parametrize("modality", ["rgb_seg", "seg"])
def test_kept_inputs_are_the_streamed_ones_to_the_bit_and_read_once(store, modality, monkeypatch):
    source = PatchBatches(store, ROWS)
    kept = ShrunkPatches(source, modality, 3)  # 4 px patches resized to 3 px: antialiased, every pixel mixed
    channels = 16 * (6 if modality == "rgb_seg" else 3)
    assert ShrunkPatches.nbytes(source, modality, 3) == len(ROWS) * channels * 3 * 3 * 4
    assert ShrunkPatches.shape(source, modality, 64) == (len(ROWS), channels, SIZE, SIZE)  # never enlarged
    requests = [np.array([3, 0, 3]), np.array([9, 1, 0, 4]), np.arange(len(ROWS))[::-1], np.array([2, 2])]
    for positions in requests:  # in any order, with repeats, some kept already and some not
        expected = shrink_patches(source.read(positions).patches, modality, 3, "cpu")
        served = kept.batch(positions)
        assert served.shape == (len(positions), channels, 3, 3) and torch.equal(served, expected)
        served.mul_(0)  # finish_batch works in place: what is kept must not change
    assert kept.kept.all()

    def never(positions):
        raise AssertionError(f"read {positions} again")

    monkeypatch.setattr(source, "read", never)
    assert torch.equal(
        kept.batch(np.array([5, 6])), shrink_patches(np.stack([sample(11), sample(9)]), modality, 3, "cpu")
    )
    with pytest.raises(ValueError, match="cannot feed modality 'uncropped_rgb'"):
        ShrunkPatches(source, "uncropped_rgb", 3)
    with pytest.raises(IndexError, match=re.escape(f"{store.path}: positions must be 1-D in [0, {len(ROWS)})")):
        kept.batch(np.array([-1]))
