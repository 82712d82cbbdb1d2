"""Which stages a code change reruns: the digest of the package code a stage runs.

Snakemake tracks a rule's script, not the package modules it imports. ``code_digest`` hashes the modules a stage
runs: its entry points (a workflow script and/or modules), every ``patchpose`` module they import, transitively
(found statically with ``ast``, so nothing is imported), the ``__init__.py`` of each package on the way, and the
package data files (``patchpose/data/*``) a module names. Every rule carries it as the param ``code``
(``rules/common.smk``); editing one stage's module reruns that stage and what depends on it, editing README, docs
or tests reruns nothing. The digest is 16 hex digits of SHA-256 (it appears in Snakemake's rerun reasons).

This module is the workflow's, not a stage's: only ``rules/common.smk`` imports it, so it lies in no stage's
import closure and no digest covers it. Making the digests faster reruns nothing; a change to which files a
digest covers changes the digests themselves, which reruns what it should.

Each source file's imports are parsed once per process and content (``_parsed_imports``): the DAG asks for about
30 digests whose import closures share most of the package, so parsing every file again for each digest was most
of a dry run's time spent on digests (``benchmarks/code_digest.py``).
"""

from __future__ import annotations

import ast
import hashlib
import os
from collections.abc import Iterable
from functools import cache
from pathlib import Path

__all__ = ["PACKAGE_DIR", "module_files", "code_digest"]

PACKAGE = "patchpose"
PACKAGE_DIR = Path(__file__).resolve().parent


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


@cache
def _parsed_imports(path: Path, source: str) -> frozenset[str]:
    """Package modules (and their parent packages) that ``source``, the text of the file at ``path``, imports,
    statically. Cached by path and text: a file edited in this process is parsed again."""
    tree = ast.parse(source, filename=str(path))
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
        imports = _parsed_imports(path, path.read_text(encoding="utf-8"))
        pending.extend(_module_file(name).resolve() for name in imports)
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
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]
