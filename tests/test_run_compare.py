"""Comparing two runs' results file by file (patchpose.run_compare, benchmarks/compare_runs.py), on trees built
here: which kind each file is, weights compared tensor for tensor, and a verdict that can fail."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from patchpose.run_compare import compare_runs, file_kind, format_comparison, same_weights
from patchpose.training import save_torch
from tests.conftest import REPO


def _model(path: Path, weight: float, seconds: float) -> None:
    """A model file as the stages write it: the weights beside a history that records seconds."""
    save_torch(
        path,
        {"model": {"layer.weight": torch.full((2, 3), weight), "layer.steps": torch.tensor(4)},
         "history": [{"epoch": 1, "seconds": seconds}]},
    )  # fmt: skip


def _run(root: Path, *, claim: str = '{"holds": true}', weight: float = 0.5, seconds: float = 1.0) -> Path:
    results = root / "results" / "synthetic"
    for relative, text in {
        "claims.json": claim,
        "tables/table1.csv": "a,b\n1,2\n",
        "logs/updater/x.log": f"took {seconds} s\n",
        "benchmarks/updater/x.tsv": f"s\n{seconds}\n",
    }.items():
        (results / relative).parent.mkdir(parents=True, exist_ok=True)
        (results / relative).write_text(text, encoding="utf-8")
    (results / "updater" / "lifting").mkdir(parents=True)
    _model(results / "updater" / "lifting" / "model.pt", weight, seconds)
    return results


@pytest.mark.parametrize(
    ("relative", "kind"),
    [
        ("claims.json", "result"),
        ("patches/predicted/test.zarr/rgb/0.0.0", "result"),
        ("updater/lifting/rgb_seg/model.pt", "weights"),
        ("keypoints2d/checkpoints/fold0.ckpt", "weights"),
        ("logs/updater/lifting_rgb_seg.log", "log"),
        ("benchmarks/updater/lifting_rgb_seg.tsv", "benchmark"),
        ("logs", "result"),  # a file named logs, not a directory of them
    ],
)
def test_each_path_has_its_kind(relative, kind):
    assert file_kind(relative) == kind


def test_runs_that_differ_only_in_seconds_and_logs_are_the_same(tmp_path):
    first = _run(tmp_path / "a", seconds=1.0)
    second = _run(tmp_path / "b", seconds=2.5)
    assert (first / "updater/lifting/model.pt").read_bytes() != (second / "updater/lifting/model.pt").read_bytes()
    comparison = compare_runs(first, second)
    counts = {count.kind: count for count in comparison.counts}
    assert comparison.same
    assert (counts["result"].identical, counts["result"].different) == (2, 0)
    assert (counts["weights"].identical, counts["weights"].different) == (1, 0)
    assert (counts["log"].different, counts["benchmark"].different) == (1, 1)
    text = format_comparison(comparison)
    assert "3 result and weights files: the same" in text


def test_a_changed_result_a_changed_weight_and_a_missing_file_make_runs_different(tmp_path):
    first = _run(tmp_path / "a")
    second = _run(tmp_path / "b", claim='{"holds": false}', weight=0.5000001)
    (second / "tables" / "table1.csv").unlink()
    (second / "figures").mkdir()
    (second / "figures" / "extra.png").write_bytes(b"png")
    comparison = compare_runs(first, second)
    assert not comparison.same
    assert comparison.different == ["claims.json", "updater/lifting/model.pt"]
    assert comparison.only_first == ["tables/table1.csv"]
    assert comparison.only_second == ["figures/extra.png"]
    text = format_comparison(comparison, listed=1)
    assert "different (2):\n  claims.json\n  ... and 1 more" in text and "DIFFERENT" in text
    # left out on purpose, the differences are gone
    assert compare_runs(first, second, skip=["claims.json", "updater", "tables", "figures"]).same


def test_weights_of_another_shape_dtype_or_key_differ(tmp_path):
    base = tmp_path / "base.pt"
    _model(base, 0.5, 1.0)
    for name, model in {
        "dtype": {"layer.weight": torch.full((2, 3), 0.5, dtype=torch.float64), "layer.steps": torch.tensor(4)},
        "shape": {"layer.weight": torch.full((3, 2), 0.5), "layer.steps": torch.tensor(4)},
        "key": {"layer.weight": torch.full((2, 3), 0.5), "layer.count": torch.tensor(4)},
    }.items():
        save_torch(tmp_path / f"{name}.pt", {"model": model, "history": []})
        assert not same_weights(base, tmp_path / f"{name}.pt"), name
    (tmp_path / "plain.pt").write_bytes(b"not torch")
    with pytest.raises(ValueError, match="plain.pt"):
        same_weights(base, tmp_path / "plain.pt")


def test_the_script_exits_by_its_verdict_and_names_a_missing_directory(tmp_path):
    first, second = _run(tmp_path / "a"), _run(tmp_path / "b", claim="{}")
    script = [sys.executable, str(REPO / "benchmarks" / "compare_runs.py")]
    same = subprocess.run([*script, str(first), str(first)], capture_output=True, text=True, timeout=120)
    assert same.returncode == 0 and "the same" in same.stdout
    different = subprocess.run([*script, str(first), str(second)], capture_output=True, text=True, timeout=120)
    assert different.returncode == 1 and "claims.json" in different.stdout
    missing = subprocess.run([*script, str(first), str(tmp_path / "none")], capture_output=True, text=True,
                             timeout=120)  # fmt: skip
    assert missing.returncode == 2 and "none: no such results directory" in missing.stderr
