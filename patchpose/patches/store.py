"""The patch cache: one zarr v3 group per (dataset, split, 2D source), written atomically, read validated.

Layout of ``results/<dataset>/patches/<source>/<split>.zarr`` (row ``i`` is frame ``i`` of the dataset
store ``results/<dataset>/dataset/<split>.zarr``; ``<source>`` is ``predicted``, ``groundtruth`` or
``uncropped``):

- ``patches``: (N, P, 6, R, R) uint8. P = 16 limb patches in ``H36M.limbs`` order (``kind`` "limbs") or
  P = 1 whole frame (``kind`` "uncropped"); channels R, G, B of the frame then R, G, B of the colour-coded
  segmentation (``patchpose.patches.sampler.CHANNELS``); R x R = the cache resolution, patch px. So
  ``patches[i].reshape(P * 6, R, R)`` is the paper's Concat(Crop(I), Crop(S)) volume, limb-major. One
  sample per chunk, (1, P, 6, R, R), compressed with zstd (with its content checksum) or lz4 (blosc).
- ``affine``: (N, P, 2, 3) float64, patch px [u, v, 1] -> frame px (pixel centres at integers).
- ``box``: (N, P, 4) float64, (centre x, centre y, width, height) frame px of the limb box after padding
  to the minimum side and rescaling, before square padding (``patchpose.patches.geometry``).
- attrs: ``format`` = "patchpose-patches", ``format_version`` = 1, ``kind``, ``source``, ``split``,
  ``num_frames``, ``num_patches``, ``patch_size`` (R), ``frame_size`` [H, W], ``patch_names``,
  ``channels``, ``geometry`` (the settings that placed the patches), ``compressor``,
  ``frame_ids_sha256`` (of the dataset store's frame ids), ``units``, ``complete`` = true (written last).

Every chunk is written (``write_empty_chunks``), so a missing chunk file means a damaged store; the
reader checks every chunk file (one ``stat`` per sample) and names the first missing one.

Reading patches: a sample's chunk file is read and decoded directly (``numcodecs``, one file read and one
decode per sample) when ``patches/zarr.json`` describes exactly a layout this module writes (uint8, one sample
per chunk, flat keys, bytes + blosc or zstd, no storage transformers): zarr 3.1's asynchronous read path costs
several times the file read and decode per sample (``benchmarks/patches.py`` prints both), and the updater reads
every training sample every epoch. Any other layout is read through zarr.

Durability: ``patchpose.atomic.atomic_directory`` (durable, the default) puts the finished store on disk
before it appears at its path. A store holds one chunk file per sample, so on Linux that is one
``syncfs`` of the file system rather than an fsync (a journal commit) per file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import zarr
from numcodecs import Blosc, Zstd
from zarr.codecs import BloscCodec, ZstdCodec

from patchpose.atomic import atomic_directory
from patchpose.dataset_validation import first_missing_chunk, read_group_attrs
from patchpose.patches.sampler import CHANNELS
from patchpose.segmentation.store import frame_ids_digest

__all__ = [
    "FORMAT",
    "VERSION",
    "KINDS",
    "COMPRESSORS",
    "PatchStoreError",
    "PatchStore",
    "write_patch_store",
    "open_patch_store",
]

FORMAT = "patchpose-patches"
VERSION = 1
KINDS = ("limbs", "uncropped")
COMPRESSORS = ("zstd", "lz4")
SMALL_CHUNK_ROWS = 4096
FLAT_KEYS_CONFIGURATION = {"separator": "."}  # chunk files <array>/c.<i>.0...: one directory, not one per axis
FLAT_KEYS = {"name": "default", **FLAT_KEYS_CONFIGURATION}
UNITS = {"patches": "uint8 rgb + palette-coded segmentation", "affine": "patch_px->frame_px", "box": "frame_px"}


class PatchStoreError(ValueError):
    """A patch store is missing, incomplete, damaged or does not match its dataset; the message names it."""


def _compressor(name: str, level: int):
    if name == "zstd":
        return ZstdCodec(level=int(level), checksum=True)
    if name == "lz4":
        return BloscCodec(cname="lz4", clevel=int(level), shuffle="noshuffle", typesize=1)
    raise ValueError(f"unknown compressor {name!r}; choose one of {COMPRESSORS}")


def write_patch_store(
    path: str | os.PathLike,
    *,
    kind: str,
    source: str,
    split: str,
    frame_ids: Sequence[str],
    frame_size: tuple[int, int],
    patch_names: Sequence[str],
    patch_size: int,
    geometry: dict,
    compressor: str,
    compression_level: int,
    chunk_frames: int,
    produce: Callable[[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> Path:
    """Write the store at ``path`` atomically; nothing appears there unless every row was written.

    produce(start, stop) -> (patches (B, P, 6, R, R) uint8, affine (B, P, 2, 3), box (B, P, 4)) for rows
    ``start:stop``; called in order over blocks of ``chunk_frames`` rows, so memory is bounded by one block.
    """
    if kind not in KINDS:
        raise ValueError(f"{os.fspath(path)}: kind must be one of {KINDS}, got {kind!r}")
    n, count, size = len(frame_ids), len(patch_names), int(patch_size)
    if n < 1 or count < 1 or size < 1 or chunk_frames < 1:
        raise ValueError(f"{os.fspath(path)}: need frames, patches, patch size and chunk_frames >= 1")
    # the small arrays' chunks hold whole blocks, so each is written once, from a buffer of one chunk
    small_rows = min(n, chunk_frames * max(1, SMALL_CHUNK_ROWS // chunk_frames))
    with atomic_directory(path) as temporary:  # durable: on disk, sealed and all, before it appears at ``path``
        group = zarr.open_group(temporary, mode="w", zarr_format=3)
        write_all = {"write_empty_chunks": True}
        patches = group.create_array(
            "patches", shape=(n, count, 6, size, size), chunks=(1, count, 6, size, size), dtype="uint8",
            fill_value=0, compressors=_compressor(compressor, compression_level),
            dimension_names=("frame", "patch", "channel", "y", "x"), config=write_all, chunk_key_encoding=FLAT_KEYS,
        )  # fmt: skip
        small = {
            name: group.create_array(
                name,
                shape=(n, count, *trailing),
                chunks=(small_rows, count, *trailing),
                dtype="float64",
                fill_value=float("nan"),
                compressors=ZstdCodec(level=3, checksum=True),
                config=write_all,
                chunk_key_encoding=FLAT_KEYS,
            )
            for name, trailing in (("affine", (2, 3)), ("box", (4,)))
        }
        buffers = {name: np.full((small_rows, *array.shape[1:]), np.nan) for name, array in small.items()}
        for start in range(0, n, chunk_frames):
            stop = min(n, start + chunk_frames)
            block, affine, box = produce(start, stop)
            expected = (stop - start, count, 6, size, size)
            if np.shape(block) != expected or np.asarray(block).dtype != np.uint8:
                raise ValueError(f"{os.fspath(path)}: rows {start}:{stop}: patches {np.shape(block)} "
                                 f"{np.asarray(block).dtype} are not uint8 {expected}")  # fmt: skip
            patches[start:stop] = block
            chunk_start = start - start % small_rows
            for name, values in (("affine", affine), ("box", box)):
                buffers[name][start - chunk_start : stop - chunk_start] = values
                if stop % small_rows == 0 or stop == n:
                    small[name][chunk_start:stop] = buffers[name][: stop - chunk_start]
        group.attrs.update(
            format=FORMAT,
            format_version=VERSION,
            kind=kind,
            source=source,
            split=split,
            num_frames=n,
            num_patches=count,
            patch_size=size,
            frame_size=[int(frame_size[0]), int(frame_size[1])],
            patch_names=list(patch_names),
            channels=list(CHANNELS),
            geometry=dict(geometry),
            compressor={"name": compressor, "level": int(compression_level)},
            frame_ids_sha256=frame_ids_digest(list(frame_ids)),
            units=dict(UNITS),
        )
        group.attrs["complete"] = True  # last: the marker that the store is whole
    return Path(path)


class _ChunkFiles:
    """The one-sample chunks of a local zarr v3 array of a layout ``write_patch_store`` writes, read straight
    from their files (module docstring). ``of(directory)`` is None for any other layout."""

    DECODERS = {"blosc": Blosc, "zstd": Zstd}  # the decoders read their parameters from each chunk's header

    def __init__(self, directory: Path, sample_shape: tuple[int, ...], decoder):
        self.directory, self.sample_shape, self.decoder = directory, sample_shape, decoder
        self.size = int(np.prod(sample_shape))
        self.suffix = ".0" * len(sample_shape)

    @classmethod
    def of(cls, directory: Path) -> _ChunkFiles | None:
        try:
            metadata = json.loads((directory / "zarr.json").read_text())
            shape, chunks = metadata["shape"], metadata["chunk_grid"]["configuration"]["chunk_shape"]
            codecs = [codec["name"] for codec in metadata["codecs"]]
            regular = metadata["chunk_grid"]["name"] == "regular" and chunks == [1, *shape[1:]]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        flat = metadata.get("chunk_key_encoding") == {"name": "default", "configuration": FLAT_KEYS_CONFIGURATION}
        known = len(codecs) == 2 and codecs[0] == "bytes" and codecs[1] in cls.DECODERS
        plain = metadata.get("data_type") == "uint8" and not metadata.get("storage_transformers")
        if not (regular and flat and known and plain):
            return None
        return cls(directory, tuple(int(side) for side in shape[1:]), cls.DECODERS[codecs[1]]())

    def read(self, index: int) -> np.ndarray:
        """Sample ``index``; OSError or ValueError naming the chunk file if it cannot be read or decoded."""
        chunk = self.directory / f"c.{index}{self.suffix}"
        try:
            decoded = np.frombuffer(self.decoder.decode(chunk.read_bytes()), dtype=np.uint8)
        except (RuntimeError, ValueError) as error:  # numcodecs' decode errors
            raise ValueError(f"{chunk}: cannot decode: {error}") from error
        if decoded.size != self.size:
            raise ValueError(f"{chunk}: decodes to {decoded.size} bytes, a sample has {self.size}")
        return decoded.reshape(self.sample_shape)


class PatchStore:
    """A validated, read-only patch store; everything is read by frame index, so memory stays bounded."""

    def __init__(self, path: Path, attrs: dict, group: zarr.Group):
        self.path, self.attrs, self._group = path, attrs, group
        self._chunk_files = _ChunkFiles.of(Path(path) / "patches")
        self.kind: str = attrs["kind"]
        self.source: str = attrs["source"]
        self.split: str = attrs["split"]
        self.num_frames: int = attrs["num_frames"]
        self.num_patches: int = attrs["num_patches"]
        self.patch_size: int = attrs["patch_size"]
        self.frame_size: tuple[int, int] = tuple(attrs["frame_size"])
        self.patch_names: tuple[str, ...] = tuple(attrs["patch_names"])
        self.geometry: dict = dict(attrs["geometry"])

    def __repr__(self) -> str:
        return f"PatchStore({str(self.path)!r}, {self.kind}/{self.source}/{self.split}, {self.num_frames} frames)"

    def _check_indices(self, indices) -> np.ndarray:
        indices = np.asarray(indices)
        if indices.ndim != 1 or (indices.size and indices.dtype.kind not in "iu"):
            raise ValueError(f"{self.path}: indices must be a 1-D integer list, got {indices!r}")
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_frames):
            raise IndexError(f"{self.path}: indices must lie in [0, {self.num_frames}), got {indices.tolist()[:10]}")
        return indices.astype(np.int64)

    def _read(self, name: str, indices) -> np.ndarray:
        indices = self._check_indices(indices)
        try:
            return self._group[name].oindex[indices]
        except Exception as error:  # a corrupt chunk: name the store and array, keep the cause
            raise _fail(self.path, f"array {name!r}: cannot read frames {indices.tolist()[:10]}: {error}") from error

    def read(self, indices) -> np.ndarray:
        """(B, P, 6, R, R) uint8 patches of frames ``indices`` (any order, repeats allowed).

        One read per sample, of its chunk file directly where the layout allows (module docstring), else
        through zarr: for scattered samples, one zarr read per sample is several times faster than one
        orthogonal selection (``oindex``) of the whole batch in zarr 3.1 (measured, benchmarks/patches.py).
        """
        indices = self._check_indices(indices)
        patches = self._group["patches"]
        read = patches.__getitem__ if self._chunk_files is None else self._chunk_files.read
        out = np.empty((len(indices), *patches.shape[1:]), dtype=np.uint8)
        for row, index in enumerate(indices.tolist()):
            try:
                out[row] = read(index)
            except Exception as error:  # a corrupt chunk: name the store, array and sample, keep the cause
                raise _fail(self.path, f"array 'patches': cannot read frame {index}: {error}") from error
        return out

    def read_affine(self, indices) -> np.ndarray:
        """(B, P, 2, 3) float64 affines, patch px -> frame px, of frames ``indices``."""
        return self._read("affine", indices)

    def read_box(self, indices) -> np.ndarray:
        """(B, P, 4) float64 boxes (centre x, centre y, width, height) frame px of frames ``indices``."""
        return self._read("box", indices)


def _fail(path: Path, problem: str) -> PatchStoreError:
    return PatchStoreError(f"{path}: {problem}")


def _check_attrs(path: Path, attrs: dict) -> None:
    if attrs.get("complete") is not True:
        raise _fail(path, "incomplete or truncated store: attr 'complete' is missing or not true")
    if attrs.get("format") != FORMAT or attrs.get("format_version") != VERSION:
        raise _fail(path, f"not a {FORMAT} store of version {VERSION} "
                          f"(format {attrs.get('format')!r}, version {attrs.get('format_version')!r})")  # fmt: skip
    required = ("kind", "source", "split", "num_frames", "num_patches", "patch_size", "frame_size", "patch_names",
                "channels", "geometry", "frame_ids_sha256")  # fmt: skip
    missing = [key for key in required if key not in attrs]
    if missing:
        raise _fail(path, f"missing attrs {missing}")
    if attrs["kind"] not in KINDS or attrs["channels"] != list(CHANNELS):
        raise _fail(path, f"attr 'kind' {attrs['kind']!r} or 'channels' {attrs['channels']!r} not of this format")
    if len(attrs["patch_names"]) != attrs["num_patches"]:
        raise _fail(path, f"{len(attrs['patch_names'])} patch_names for num_patches={attrs['num_patches']}")


def _expected_shapes(attrs: dict) -> dict[str, tuple[tuple[int, ...], str]]:
    n, count, size = attrs["num_frames"], attrs["num_patches"], attrs["patch_size"]
    return {
        "patches": ((n, count, 6, size, size), "uint8"),
        "affine": ((n, count, 2, 3), "float64"),
        "box": ((n, count, 4), "float64"),
    }


def open_patch_store(path: str | os.PathLike, dataset_store=None, *, verify_chunks: bool = True) -> PatchStore:
    """Open and validate a patch store; ``PatchStoreError`` naming the store (and file) on any problem.

    dataset_store: an opened ``DatasetStore``; the patch store must hold exactly its frames (frame-id
    digest, frame size). verify_chunks: require every chunk file on disk (one ``stat`` per sample).
    """
    path = Path(path)
    try:
        attrs = read_group_attrs(path)
    except ValueError as error:
        raise PatchStoreError(str(error)) from None
    _check_attrs(path, attrs)
    group = zarr.open_group(path, mode="r", zarr_format=3)
    arrays = {}
    for name, (shape, dtype) in _expected_shapes(attrs).items():
        if not (path / name / "zarr.json").is_file():
            raise _fail(path, f"missing array {name!r} (no {path / name / 'zarr.json'})")
        array = group[name]
        if array.shape != shape or array.dtype != np.dtype(dtype):
            raise _fail(path, f"array {name!r} is {array.shape} {array.dtype}, expected {shape} {dtype}")
        chunk = first_missing_chunk(path, name, array) if verify_chunks else None
        if chunk is not None:
            raise _fail(path, f"array {name!r}: missing chunk file {chunk} (truncated store)")
        arrays[name] = array
    if arrays["patches"].chunks[0] != 1:
        raise _fail(path, f"array 'patches' must hold one sample per chunk, has chunks {arrays['patches'].chunks}")
    for name in ("affine", "box"):  # one small chunk at a time
        rows = arrays[name].chunks[0]
        for start in range(0, attrs["num_frames"], rows):
            if not np.all(np.isfinite(arrays[name][start : start + rows])):
                raise _fail(path, f"array {name!r} holds NaN or inf in rows {start}..{start + rows - 1}")
    if dataset_store is not None:
        if attrs["frame_ids_sha256"] != frame_ids_digest(dataset_store.frame_ids()):
            raise _fail(path, f"holds patches of other frames than {dataset_store.path} (frame ids differ)")
        if tuple(attrs["frame_size"]) != tuple(dataset_store.frame_size):
            raise _fail(path, f"frame_size {attrs['frame_size']} differs from {dataset_store.path}'s")
    return PatchStore(path, dict(attrs), group)
