"""Patch batches streamed from a patch store: memory O(batch), never the whole split.

``PatchBatches(store, rows, num_workers, pin_memory)`` serves batches of the training examples ``rows``
(store rows; an example is addressed by its position 0..len(rows)-1, as ``patchpose.training.train``'s
``make_batch`` is): ``read(positions)`` reads one batch now; ``iterate(plan)`` reads the batches of ``plan``
(an iterable of position arrays, consumed lazily) ahead of their use, through a
``torch.utils.data.DataLoader`` whose items are whole batches (one ``PatchStore.read`` each, one chunk file
per sample). With ``num_workers`` > 0 loader processes read while the network trains; each batch depends on
its positions only, and the DataLoader returns items in the sampler's order, so the batches and their order
are the same whatever ``num_workers`` is. ``pin_memory`` (for CUDA) pins each batch for an asynchronous copy
to the device. At most ``num_workers x prefetch_factor`` batches are held ahead (or one, without workers).

An epoch's order is ``epoch_plan``: ``patchpose.training.epoch_batches`` over the stream named (seed, *names,
"epoch", e), exactly the batches ``training.train`` asks for in epoch e (with several training processes, this
rank's share of each).

``ShrunkPatches`` keeps what is read instead: each example's ``inputs.shrink_patches`` (the modality's channels as
float32, resized to the network input), read and resized at its first use and served from memory after, for a
CPU training whose examples fit in the memory it is given (``updater.training.input_cache_mb``): the epochs after
the first then read nothing, and every batch is the same as the streamed one to the last bit.

``PrefetchingMakeBatch`` plugs the loader into ``training.train`` (directly or through
``patchpose.fitting.fit``) as they are: a ``make_batch(positions, rng, device)`` that reads ahead along the
planned order of every remaining epoch and serves each request from the read-ahead when it is the batch that
was read. Every request is checked against the read-ahead, so a request off the plan (a resumed run's first
batch, a caller of its own) is still answered right: read at once, and the read-ahead restarts after it when
the request lies on the plan.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from patchpose.distributed import SINGLE, Ranks, share
from patchpose.patches.store import PatchStore
from patchpose.rng import stream
from patchpose.training import TrainSpec, epoch_batches
from patchpose.updater.inputs import shrink_patches
from patchpose.updater.modalities import get_modality

__all__ = ["PatchBatch", "PatchBatches", "ShrunkPatches", "check_store", "epoch_plan", "PrefetchingMakeBatch"]

log = logging.getLogger("patchpose.updater.loader")


@dataclass(frozen=True)
class PatchBatch:
    """positions: (B,) int64 positions into the loader's rows; rows: (B,) int64 store rows;
    patches: (B, P, 6, R, R) uint8 CPU tensor (pinned with ``pin_memory``)."""

    positions: np.ndarray
    rows: np.ndarray
    patches: torch.Tensor

    def pin_memory(self) -> PatchBatch:  # called by the DataLoader's pinning thread
        return PatchBatch(self.positions, self.rows, self.patches.pin_memory())


def check_store(store: PatchStore, modality: str) -> None:
    """ValueError naming the store unless it is of ``modality``'s kind and patch count."""
    wanted = get_modality(modality)
    if (store.kind, store.num_patches) != (wanted.kind, wanted.num_patches):
        raise ValueError(f"{store.path}: a {store.kind!r} store of {store.num_patches} patches per frame cannot "
                         f"feed modality {modality!r} ({wanted.kind!r}, {wanted.num_patches} patches)")  # fmt: skip


class _BatchReads(Dataset):
    """Map-style dataset whose item ``positions`` (an int array) is a whole batch."""

    def __init__(self, store: PatchStore, rows: np.ndarray):
        self.store, self.rows = store, rows

    def __getitem__(self, positions) -> PatchBatch:
        positions = np.asarray(positions, dtype=np.int64)
        rows = self.rows[positions]
        return PatchBatch(positions, rows, torch.from_numpy(self.store.read(rows)))


class PatchBatches:
    """Batches of the patches of store rows ``rows``; see the module docstring.

    store: an opened ``PatchStore``; rows: (M,) its rows, the examples; modality: if given, the store must be
    of its kind and patch count (ValueError naming the store otherwise); num_workers: loader processes (0:
    read in this process); pin_memory: pin batches (use on CUDA); prefetch_factor: batches read ahead per
    worker.
    """

    def __init__(
        self,
        store: PatchStore,
        rows,
        *,
        modality: str | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        prefetch_factor: int = 2,
    ):
        rows = np.asarray(rows)
        if rows.ndim != 1 or (rows.size and rows.dtype.kind not in "iu"):
            raise ValueError(f"{store.path}: rows must be a 1-D integer array, got {rows!r}")
        if rows.size and (rows.min() < 0 or rows.max() >= store.num_frames):
            raise ValueError(f"{store.path}: rows must lie in [0, {store.num_frames}), "
                             f"got [{rows.min()}, {rows.max()}]")  # fmt: skip
        if modality is not None:
            check_store(store, modality)
        if num_workers < 0 or prefetch_factor < 1:
            raise ValueError(f"num_workers must be >= 0 and prefetch_factor >= 1, got {num_workers}, {prefetch_factor}")
        self.store, self.rows = store, rows.astype(np.int64)
        self.num_workers, self.prefetch_factor = int(num_workers), int(prefetch_factor)
        self.pin_memory = bool(pin_memory) and torch.cuda.is_available()  # pinning needs the CUDA runtime
        self._reads = _BatchReads(store, self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def read(self, positions) -> PatchBatch:
        """The batch of ``positions`` (0..len-1), read now, in this process."""
        positions = np.asarray(positions)
        if positions.ndim != 1 or (positions.size and positions.dtype.kind not in "iu"):
            raise ValueError(f"{self.store.path}: positions must be a 1-D integer array, got {positions!r}")
        if positions.size and (positions.min() < 0 or positions.max() >= len(self.rows)):
            raise IndexError(f"{self.store.path}: positions must lie in [0, {len(self.rows)}), "
                             f"got {positions.tolist()[:10]}")  # fmt: skip
        batch = self._reads[positions]
        return batch.pin_memory() if self.pin_memory else batch

    def iterate(self, plan: Iterable[np.ndarray]) -> Iterator[PatchBatch]:
        """The batches of ``plan`` (position arrays, consumed lazily as the read-ahead needs them), in order."""
        checked = (self._check(positions) for positions in plan)
        workers = {"prefetch_factor": self.prefetch_factor} if self.num_workers else {}
        loader = DataLoader(self._reads, batch_size=None, sampler=_Plan(checked), num_workers=self.num_workers,
                            pin_memory=self.pin_memory, **workers)  # fmt: skip
        return iter(loader)

    def _check(self, positions) -> np.ndarray:
        positions = np.asarray(positions, dtype=np.int64)
        if positions.ndim != 1 or (positions.size and (positions.min() < 0 or positions.max() >= len(self.rows))):
            raise IndexError(f"{self.store.path}: plan positions must be 1-D in [0, {len(self.rows)}), "
                             f"got {positions.tolist()[:10]}")  # fmt: skip
        return positions


class ShrunkPatches:
    """Every example's ``shrink_patches`` (module docstring), kept in memory after its first read.

    source: the ``PatchBatches`` of the examples; modality, input_size: the network's. ``batch(positions)`` ->
    (B, C, S', S') float32 CPU tensor of positions 0..len(source)-1 (repeats allowed), a new tensor each call
    (``inputs.finish_batch`` may overwrite it): the positions not yet kept are read from the store (one
    ``PatchStore.read``) and shrunk now, the others copied from memory. ``nbytes(source, modality,
    input_size)`` is what it holds once every example was asked for (the array is allocated at once, its pages
    when first written).
    """

    def __init__(self, source: PatchBatches, modality: str, input_size: int):
        check_store(source.store, modality)
        self.source, self.modality, self.input_size = source, modality, int(input_size)
        self.images = torch.empty(self.shape(source, modality, input_size), dtype=torch.float32)
        self.kept = np.zeros(len(source), dtype=bool)

    @staticmethod
    def shape(source: PatchBatches, modality: str, input_size: int) -> tuple[int, int, int, int]:
        """(examples, channels, side, side) of the kept inputs."""
        side = min(int(input_size), source.store.patch_size)
        channels = source.store.num_patches * len(get_modality(modality).channels)
        return len(source), channels, side, side

    @staticmethod
    def nbytes(source: PatchBatches, modality: str, input_size: int) -> int:
        """Bytes the kept inputs of all of ``source``'s examples take."""
        return 4 * int(np.prod(ShrunkPatches.shape(source, modality, input_size)))

    def batch(self, positions) -> torch.Tensor:
        positions = np.ascontiguousarray(positions, dtype=np.int64)
        if positions.ndim != 1 or (positions.size and (positions.min() < 0 or positions.max() >= len(self.kept))):
            raise IndexError(f"{self.source.store.path}: positions must be 1-D in [0, {len(self.kept)}), "
                             f"got {positions.tolist()[:10]}")  # fmt: skip
        missing = np.unique(positions[~self.kept[positions]])
        if missing.size:
            patches = self.source.read(missing).patches
            self.images[torch.from_numpy(missing)] = shrink_patches(patches, self.modality, self.input_size, "cpu")
            self.kept[missing] = True
        return self.images[torch.from_numpy(positions)]


class _Plan:
    """A sampler over an iterable of position arrays (DataLoader reads it in this process, lazily)."""

    def __init__(self, plan: Iterable[np.ndarray]):
        self.plan = plan

    def __iter__(self):
        return iter(self.plan)


def epoch_plan(
    num_items: int, batch_size: int, seed: int, names: tuple, epoch: int, ranks: Ranks = SINGLE
) -> list[np.ndarray]:
    """The batches ``training.train`` asks this rank for in epoch ``epoch`` (0-based) for ``num_items``
    examples (its share of each global batch)."""
    planned = epoch_batches(num_items, batch_size, stream(seed, *names, "epoch", epoch), ranks)
    return [share(indices, ranks) for indices in planned]


class PrefetchingMakeBatch:
    """``make_batch(positions, rng, device)`` for ``training.train``, served from a read-ahead of the plan.

    source: the ``PatchBatches`` of the examples; spec: the run's ``TrainSpec`` (its seed, names, batch size
    and epochs fix the plan; ``fitting.train_spec`` makes it from a settings block); build(batch, rng,
    device) -> (inputs, targets): the batch's network inputs (e.g. ``prepare_batch`` of ``batch.patches``)
    and targets. training: (T,) the positions of ``source`` that train's positions 0..T-1 stand for, when
    make_batch is called through that mapping: ``fitting.fit`` calls it with ``rows[positions]``, rows = the
    examples not held out for validation, so pass those rows; default: all of ``source``, unmapped. ranks: with
    several training processes, each reads ahead only its share of every batch (``patchpose.distributed``).
    ``hits``/``misses`` count requests served from the read-ahead / read at once. ``close()`` stops the loader
    processes (also done when the object is garbage-collected).
    """

    def __init__(
        self,
        source: PatchBatches,
        spec: TrainSpec,
        build: Callable[[PatchBatch, Any, torch.device], Any],
        training: np.ndarray | None = None,
        ranks: Ranks = SINGLE,
    ):
        self.source, self.spec, self.build, self.ranks = source, spec, build, ranks
        self.training = np.arange(len(source)) if training is None else np.asarray(training, dtype=np.int64)
        inside = len(self.training) > 1 and self.training.min() >= 0 and self.training.max() < len(source)
        if self.training.ndim != 1 or not inside:
            raise ValueError(f"{source.store.path}: training must be >= 2 positions of the source's "
                             f"{len(source)} rows, got {self.training.tolist()[:10]}")  # fmt: skip
        self.hits = self.misses = 0
        self._ahead: Iterator[PatchBatch] | None = None
        self._next: PatchBatch | None = None

    def _plan(self, epoch: int) -> list[np.ndarray]:
        """Epoch ``epoch``'s batches as ``make_batch`` is asked for them (source positions)."""
        plan = epoch_plan(len(self.training), self.spec.batch_size, self.spec.seed, self.spec.names, epoch, self.ranks)
        return [self.training[positions] for positions in plan]

    def _locate(self, positions: np.ndarray) -> tuple[int, int] | None:
        """(epoch, step) of ``positions`` in the plan of the run, or None."""
        if not len(positions):
            return None
        for epoch in range(self.spec.epochs):
            for step, planned in enumerate(self._plan(epoch)):
                if planned[0] == positions[0] and np.array_equal(planned, positions):
                    return epoch, step
        return None

    def _restart(self, epoch: int, step: int) -> None:
        """Read ahead from batch ``step`` + 1 of epoch ``epoch`` to the end of the last epoch."""

        def rest():
            yield from self._plan(epoch)[step + 1 :]
            for later in range(epoch + 1, self.spec.epochs):
                yield from self._plan(later)

        self.close()
        self._ahead = self.source.iterate(rest())

    def _take(self) -> PatchBatch | None:
        if self._next is None and self._ahead is not None:
            self._next = next(self._ahead, None)
        return self._next

    def __call__(self, positions, rng, device: torch.device):
        positions = np.asarray(positions, dtype=np.int64)
        ahead = self._take()
        if ahead is not None and np.array_equal(ahead.positions, positions):
            self.hits, self._next = self.hits + 1, None
            return self.build(ahead, rng, device)
        self.misses += 1
        batch = self.source.read(positions)
        where = self._locate(positions)
        if where is not None:
            log.debug("read-ahead restarts after epoch %d batch %d", *where)
            self._restart(*where)
        return self.build(batch, rng, device)

    def close(self) -> None:
        """Stop reading ahead (ends the loader processes)."""
        self._ahead, self._next = None, None
