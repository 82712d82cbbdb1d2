"""What a result is made from: the content identity of a job's inputs.

**May a training job resume from its checkpoint?** Snakemake does not answer it: only if the checkpoint was
written for the exact inputs the job reads now. ``input_fingerprint`` maps each named input to
``content_digest``: for a zarr store the digest its writer sealed into the root ``zarr.json``
(``seal_zarr_directory``, called by ``patchpose.atomic.atomic_directory`` on every store it publishes), else a
hash of every file under it; for a file the hash of its bytes. The training loop keeps the fingerprint in the
checkpoint's config, so a checkpoint of other inputs is ignored and training starts from scratch.

Which stages a code change reruns is the other half of a rerun's provenance: the workflow's
``patchpose.code_version``, which no stage imports. Digests are hex strings of SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = [
    "DIGEST_ATTRIBUTE",
    "content_digest",
    "seal_zarr_directory",
    "input_fingerprint",
]

DIGEST_ATTRIBUTE = "content_digest"
_CHUNK = 1 << 22


def _hash_file(digest, path: Path) -> None:
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)


def _tree_files(root: Path) -> list[Path]:
    """Every file under ``root``, in a fixed order (paths relative to ``root``, sorted)."""
    files = [Path(directory, name) for directory, _, names in os.walk(root) for name in names]
    return sorted(files, key=lambda path: path.relative_to(root).as_posix())


def _root_metadata_without_digest(path: Path) -> bytes:
    """The root ``zarr.json`` as canonical JSON, without the sealed digest (it cannot hash itself)."""
    metadata = json.loads(path.read_text(encoding="utf-8"))
    metadata.get("attributes", {}).pop(DIGEST_ATTRIBUTE, None)
    return json.dumps(metadata, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _zarr_tree_digest(root: Path) -> str:
    """SHA-256 over every file of a zarr directory (relative path and bytes), the root ``zarr.json`` taken
    without its sealed digest."""
    digest = hashlib.sha256()
    for path in _tree_files(root):
        relative = path.relative_to(root).as_posix()
        digest.update(f"{relative}\0".encode())
        if relative == "zarr.json":
            digest.update(_root_metadata_without_digest(path))
        else:
            _hash_file(digest, path)
        digest.update(b"\0")
    return digest.hexdigest()


def seal_zarr_directory(root: str | os.PathLike) -> str | None:
    """Record the content digest of the zarr hierarchy at ``root`` in its root ``zarr.json`` attributes
    (``DIGEST_ATTRIBUTE``) and return it; None (nothing written) if ``root`` holds no ``zarr.json``.
    Call it on a finished store, before it is published: any later change of the store invalidates it."""
    root = Path(root)
    metadata_path = root / "zarr.json"
    if not metadata_path.is_file():
        return None
    value = _zarr_tree_digest(root)
    metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    metadata.setdefault("attributes", {})[DIGEST_ATTRIBUTE] = value
    metadata_path.write_text(json.dumps(metadata, indent=2), encoding="utf-8")
    return value


def content_digest(path: str | os.PathLike) -> str:
    """The content identity of a file or directory: a sealed zarr store's recorded digest, else SHA-256
    over every file under the directory (relative paths and bytes), or of a file's bytes."""
    path = Path(path)
    if path.is_dir():
        metadata_path = path / "zarr.json"
        if metadata_path.is_file():
            try:
                sealed = json.loads(metadata_path.read_text(encoding="utf-8")).get("attributes", {})
            except (OSError, ValueError) as error:
                raise ValueError(f"{metadata_path}: unreadable zarr metadata: {error}") from error
            if isinstance(sealed.get(DIGEST_ATTRIBUTE), str):
                return sealed[DIGEST_ATTRIBUTE]
        return _zarr_tree_digest(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file or directory to fingerprint")
    digest = hashlib.sha256()
    _hash_file(digest, path)
    return digest.hexdigest()


def input_fingerprint(inputs: Mapping[str, str | os.PathLike | Iterable[str | os.PathLike]]) -> dict[str, object]:
    """``{name: content_digest}`` of a job's named inputs (a list of paths gives a list of digests), in
    name order: what a checkpoint must match to be resumed."""
    fingerprint: dict[str, object] = {}
    for name in sorted(inputs):
        value = inputs[name]
        if isinstance(value, str | os.PathLike):
            fingerprint[name] = content_digest(value)
        else:
            fingerprint[name] = [content_digest(item) for item in value]
    return fingerprint
