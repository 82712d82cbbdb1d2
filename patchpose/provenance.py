"""What a result is made from: the content identity of a job's inputs and of the package code a stage runs.

Two questions a rerun must answer, and Snakemake answers neither on its own:

* **May a training job resume from its checkpoint?** Only if the checkpoint was written for the exact
  inputs the job reads now. ``input_fingerprint`` maps each named input to ``content_digest``: for a zarr
  store the digest its writer sealed into the root ``zarr.json`` (``seal_zarr_directory``, called by
  ``patchpose.atomic.atomic_directory`` on every store it publishes), else a hash of every file under it;
  for a file the hash of its bytes. The training loop keeps the fingerprint in the checkpoint's config,
  so a checkpoint of other inputs is ignored and training starts from scratch.
* **Which stages does a code change rerun?** Snakemake tracks a rule's script, not the package modules it
  imports. ``code_digest`` hashes the modules a stage runs: its entry points (a workflow script and/or
  modules), every ``patchpose`` module they import, transitively (found statically with ``ast``, so
  nothing is imported), the ``__init__.py`` of each package on the way, and the package data files
  (``patchpose/data/*``) a module names. Every rule carries it as the param ``code``; editing one stage's
  module reruns that stage and what depends on it, editing README, docs or tests reruns nothing.

Digests are hex strings of SHA-256 (truncated to 16 hex digits for the code digest, which appears in
Snakemake's rerun reasons).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path

__all__ = [
    "DIGEST_ATTRIBUTE",
    "content_digest",
    "seal_zarr_directory",
    "input_fingerprint",
    "module_files",
    "code_digest",
]

DIGEST_ATTRIBUTE = "content_digest"
PACKAGE = "patchpose"
PACKAGE_DIR = Path(__file__).resolve().parent
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


def _module_file(name: str) -> Path | None:
    """The source file of package module ``name`` (``patchpose.x.y``), or None if it is not one."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE_DIR).with_suffix("")
    parts = [PACKAGE, *relative.parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: Path) -> frozenset[str]:
    """Package modules (and their parent packages) that the source at ``path`` imports, statically."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    inside = path.resolve().is_relative_to(PACKAGE_DIR)
    package = _module_name(path) if inside else ""
    if inside and path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(anchor + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # submodules imported by name
    modules = set()
    for name in found:
        parts = name.split(".")
        modules.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))  # parents run on import
    return frozenset(name for name in modules if _module_file(name) is not None)


def module_files(*roots: str | os.PathLike) -> list[Path]:
    """The package source files that ``roots`` run: each root is a module name (``patchpose.x``) or a
    Python file (e.g. a workflow script); their ``patchpose`` imports are followed transitively.
    Sorted by path; the root files themselves included."""
    pending: list[Path] = []
    for root in roots:
        module = _module_file(str(root)) if isinstance(root, str) and not str(root).endswith(".py") else None
        path = module or Path(root)
        if not path.is_file():
            raise FileNotFoundError(f"{root}: neither a {PACKAGE} module nor a Python file")
        pending.append(path.resolve())
        if module is not None:  # importing patchpose.a.b runs patchpose/__init__ and patchpose/a/__init__ too
            parents = str(root).split(".")[:-1]
            pending.extend(_module_file(".".join(parents[:i])) for i in range(1, len(parents) + 1))
    seen: set[Path] = set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        pending.extend(_module_file(name).resolve() for name in _imported_modules(path))
    return sorted(seen)


def _data_files(sources: Iterable[Path]) -> list[Path]:
    """Package data files (``patchpose/data/*``, not Python) whose file name a source mentions."""
    data_dir = PACKAGE_DIR / "data"
    candidates = [path for path in sorted(data_dir.iterdir()) if path.is_file() and path.suffix != ".py"]
    texts = [path.read_text(encoding="utf-8") for path in sources]
    return [path for path in candidates if any(path.name in text for text in texts)]


def _label(path: Path) -> str:
    """Where a source file is, independent of where the package and the workflow are installed: its path
    in the package, or ``<outside>/<name>`` for a file outside it (a workflow script)."""
    return path.relative_to(PACKAGE_DIR).as_posix() if path.is_relative_to(PACKAGE_DIR) else f"<outside>/{path.name}"


@cache
def code_digest(*roots: str) -> str:
    """16 hex digits of SHA-256 over the source files ``module_files(*roots)`` and the package data they
    name: each file's label (``_label``) and bytes, in label order, so the digest does not depend on where
    the package or the workflow lie (a copied workflow or results directory keeps its digests). Cached per
    process: the DAG asks once per rule."""
    sources = module_files(*roots)
    digest = hashlib.sha256()
    for path in sorted(sources + _data_files(sources), key=_label):
        digest.update(f"{_label(path)}\0".encode())
        _hash_file(digest, path)
        digest.update(b"\0")
    return digest.hexdigest()[:16]
