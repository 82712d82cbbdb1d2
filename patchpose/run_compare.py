"""Are two runs' results the same? File by file, the way the README's "to the bit" statements are checked.

Two results directories (``<run>/results/<dataset>``, or any two trees) are walked side by side and every
relative path is put in one of four kinds:

- ``result``: every file a later stage or a reader uses (stores, predictions, tables, figures, ``claims.json``),
  compared byte for byte;
- ``weights``: model and checkpoint files (``.pt``, ``.ckpt``). Besides the weights they record training
  seconds and the code's digest, which differ between two runs of the same code and seed, so they are
  compared by their ``model`` state dict: every tensor equal element for element (``torch.equal`` on the same
  dtype and shape). A file without one is compared byte for byte;
- ``log`` (under ``logs/``) and ``benchmark`` (under ``benchmarks/``): wall times and messages, expected to
  differ; counted, never a reason to call two runs different.

``compare_runs`` returns one ``KindCount`` per kind and the paths that differ or exist on one side only;
``RunComparison.same`` holds when no result or weights file differs or is missing from either side.
``benchmarks/compare_runs.py`` prints it.
"""

from __future__ import annotations

import filecmp
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["KINDS", "KindCount", "RunComparison", "file_kind", "same_weights", "compare_runs", "format_comparison"]

KINDS = ("result", "weights", "log", "benchmark")
WEIGHT_SUFFIXES = (".pt", ".ckpt")
# The kinds whose differences make two runs different.
DECIDING_KINDS = ("result", "weights")


def file_kind(relative: str | os.PathLike) -> str:
    """The kind (``KINDS``) of a path relative to a results directory."""
    parts = Path(relative).parts
    if "logs" in parts[:-1]:
        return "log"
    if "benchmarks" in parts[:-1]:
        return "benchmark"
    if Path(relative).suffix in WEIGHT_SUFFIXES:
        return "weights"
    return "result"


def _state_dict(path: Path):
    from patchpose.training import load_torch

    payload = load_torch(path)
    return payload.get("model") if isinstance(payload, dict) else None


def same_weights(first: str | os.PathLike, second: str | os.PathLike) -> bool:
    """Whether two model or checkpoint files hold the same ``model`` state dict (the same keys, every tensor of
    the same dtype and shape and equal element for element); byte comparison where either has no such dict.
    ``ValueError`` naming the file if one cannot be read."""
    import torch

    first, second = Path(first), Path(second)
    if filecmp.cmp(first, second, shallow=False):
        return True
    one, other = _state_dict(first), _state_dict(second)
    if not isinstance(one, dict) or not isinstance(other, dict):
        return False
    if list(one) != list(other):
        return False
    for key, tensor in one.items():
        twin = other[key]
        if not (isinstance(tensor, torch.Tensor) and isinstance(twin, torch.Tensor)):
            if tensor != twin:
                return False
        elif tensor.dtype != twin.dtype or tensor.shape != twin.shape or not torch.equal(tensor, twin):
            return False
    return True


@dataclass
class KindCount:
    """Files of one kind: in both runs (``identical`` + ``different``) or in one only."""

    kind: str
    identical: int = 0
    different: int = 0
    only_first: int = 0
    only_second: int = 0

    @property
    def files(self) -> int:
        return self.identical + self.different + self.only_first + self.only_second


@dataclass
class RunComparison:
    """``counts``: one ``KindCount`` per kind (``KINDS`` order); ``different``, ``only_first``,
    ``only_second``: the relative paths (sorted) of the deciding kinds."""

    first: Path
    second: Path
    counts: list[KindCount]
    different: list[str] = field(default_factory=list)
    only_first: list[str] = field(default_factory=list)
    only_second: list[str] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not (self.different or self.only_first or self.only_second)


def _files(root: Path) -> set[str]:
    found = set()
    for directory, _, names in os.walk(root):
        for name in names:
            found.add(os.path.relpath(os.path.join(directory, name), root))
    return found


def compare_runs(first: str | os.PathLike, second: str | os.PathLike, skip: Iterable[str] = ()) -> RunComparison:
    """Compare two results directories file by file (module docstring). skip: relative paths or directory
    prefixes left out of the comparison altogether. ``FileNotFoundError`` naming a directory that is missing."""
    first, second = Path(first), Path(second)
    for root in (first, second):
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: no such results directory")
    skipped = tuple(str(Path(prefix)) for prefix in skip)

    def kept(relative: str) -> bool:
        return not any(relative == prefix or relative.startswith(prefix + os.sep) for prefix in skipped)

    ones, others = {p for p in _files(first) if kept(p)}, {p for p in _files(second) if kept(p)}
    counts = {kind: KindCount(kind) for kind in KINDS}
    comparison = RunComparison(first, second, [counts[kind] for kind in KINDS])
    for relative in sorted(ones | others):
        kind = file_kind(relative)
        deciding = kind in DECIDING_KINDS
        if relative not in others:
            counts[kind].only_first += 1
            if deciding:
                comparison.only_first.append(relative)
            continue
        if relative not in ones:
            counts[kind].only_second += 1
            if deciding:
                comparison.only_second.append(relative)
            continue
        if kind == "weights":
            equal = same_weights(first / relative, second / relative)
        else:
            equal = filecmp.cmp(first / relative, second / relative, shallow=False)
        if equal:
            counts[kind].identical += 1
        else:
            counts[kind].different += 1
            if deciding:
                comparison.different.append(relative)
    return comparison


def format_comparison(comparison: RunComparison, listed: int = 20) -> str:
    """The comparison as text: a table per kind, then up to ``listed`` paths of each list, and the verdict."""
    lines = [
        f"first:  {comparison.first}",
        f"second: {comparison.second}",
        "",
        f"{'kind':<10} {'files':>7} {'identical':>10} {'different':>10} {'first only':>11} {'second only':>12}",
    ]
    for count in comparison.counts:
        lines.append(
            f"{count.kind:<10} {count.files:7d} {count.identical:10d} {count.different:10d} {count.only_first:11d} "
            f"{count.only_second:12d}"
        )
    total = sum(count.files for count in comparison.counts)
    lines.append(f"{'all':<10} {total:7d}")
    for title, paths in (
        ("different", comparison.different),
        ("only in the first", comparison.only_first),
        ("only in the second", comparison.only_second),
    ):
        if paths:
            lines.append(f"\n{title} ({len(paths)}):")
            lines.extend(f"  {path}" for path in paths[:listed])
            if len(paths) > listed:
                lines.append(f"  ... and {len(paths) - listed} more")
    deciding = [count for count in comparison.counts if count.kind in DECIDING_KINDS]
    checked = sum(count.files for count in deciding)
    verdict = "the same" if comparison.same else "DIFFERENT"
    lines.append(
        f"\n{checked} result and weights files: {verdict} "
        f"(results byte for byte, weights tensor for tensor; logs and benchmarks not compared for the verdict)"
    )
    return "\n".join(lines)
