"""End to end, real Snakemake on the tiny config: a rerun starts from its inputs and its code.

* A training job rerun because its input data changed must not resume the finished checkpoint of the old
  data (it would republish the old weights): the new model equals a from-scratch training on the new data.
* Editing a stage's package code reruns that stage and what depends on it (the rules' ``code`` param,
  ``patchpose/provenance.py``); editing README, docs, tests or a module no stage runs reruns nothing.
  The package is copied into the workflow directory and put first on PYTHONPATH, so the test edits the copy.
* A run copied without its modification times (``cp -r``) reruns what reads its large files until
  ``snakemake --touch`` marks the outputs up to date again, with every file the same (README "Reruns you can
  trust").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from patchpose.run_compare import compare_runs, format_comparison
from patchpose.training import load_torch
from tests.conftest import HANG_LIMIT, REPO, copy_workflow, run_snakemake, write_config
from tests.tiny_pipeline import copy_finished_run, planned_jobs, tiny_config

pytestmark = pytest.mark.slow

FOLD0 = "results/synthetic/keypoints2d/models/fold0.pt"


def _workflow(directory: Path, config: dict) -> Path:
    directory.mkdir()
    write_config(copy_workflow(directory), config)
    return directory


def _run(directory: Path, *args: str) -> subprocess.CompletedProcess:
    result = run_snakemake(directory, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_torch(path)["model"]


def test_changed_world_key_retrains_from_scratch_instead_of_resuming_the_old_checkpoint(tmp_path):
    rerun = _workflow(tmp_path / "rerun", tiny_config())
    _run(rerun, FOLD0)
    old = _weights(rerun / FOLD0)
    old_provenance = load_torch(rerun / FOLD0)["provenance"]
    assert set(old_provenance["inputs"]) == {"train"} and len(old_provenance["code"]) == 16

    write_config(rerun, tiny_config(noise_sigma=6.0))  # re-renders train.zarr, so the fold model reruns
    planned = _run(rerun, FOLD0, "-n")
    assert planned_jobs(planned)["train_keypoints2d_fold"] == 1
    _run(rerun, FOLD0)
    new = _weights(rerun / FOLD0)
    log = (rerun / "results/synthetic/logs/keypoints2d/train_fold0.log").read_text()
    assert "written under another config" in log and "epoch 1/1 loss" in log

    fresh = _workflow(tmp_path / "fresh", tiny_config(noise_sigma=6.0))
    _run(fresh, FOLD0)
    scratch = _weights(fresh / FOLD0)

    assert any(not torch.equal(old[name], new[name]) for name in old if old[name].is_floating_point())
    assert all(torch.equal(new[name], scratch[name]) for name in scratch)
    assert load_torch(rerun / FOLD0)["provenance"] == load_torch(fresh / FOLD0)["provenance"]


# --- code changes ---


def _snakemake_with_package(directory: Path, *args: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": f"{directory}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args],
        cwd=directory, capture_output=True, text=True, timeout=HANG_LIMIT, env=environment,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def workflow_with_package(tiny_run, tmp_path_factory):
    """A copy of the finished tiny run with its own copy of the package (and README, docs, tests): the code digests
    of the copy are those of the installed package the run had, so there is nothing to do."""
    directory = copy_finished_run(tiny_run, tmp_path_factory.mktemp("code"))
    for name in ("patchpose", "docs", "tests"):
        shutil.copytree(REPO / name, directory / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "README.md", directory / "README.md")
    assert "Nothing to be done" in _snakemake_with_package(directory, "-n").stdout
    return directory


def _planned_after_editing(directory: Path, relative: str) -> dict[str, int]:
    """The jobs a dry run plans after appending a comment to ``relative``; the file is restored after."""
    path = directory / relative
    original = path.read_text()
    path.write_text(original + "\n# edited by a test\n")
    try:
        result = _snakemake_with_package(directory, "-n")
    finally:
        path.write_text(original)
    jobs = planned_jobs(result)
    if jobs:
        assert "params changed" in result.stdout.lower() or "code" in result.stdout.lower()
    return jobs


def test_editing_the_patch_geometry_reruns_the_patches_and_nothing_earlier(workflow_with_package):
    jobs = _planned_after_editing(workflow_with_package, "patchpose/patches/geometry.py")
    assert jobs["cut_limb_patches"] == 2 and jobs["patches_contact_sheet"] == 2
    earlier = ("render", "keypoints2d", "segmentation", "baseline")
    assert not {rule for rule in jobs if any(stage in rule for stage in earlier)}


def test_editing_the_lifting_network_retrains_lifting_and_nothing_else(workflow_with_package):
    jobs = _planned_after_editing(workflow_with_package, "patchpose/baselines/lifting/model.py")
    assert jobs["train_baseline_fold"] == 2 and jobs["predict_trained_baseline"] == 2  # lifting's folds and splits
    assert jobs["evaluate_baseline"] == 1 and jobs["baseline_info"] == 1 and jobs["correct_trained_baseline"] == 1
    assert not {rule for rule in jobs if any(stage in rule for stage in ("render", "keypoints2d", "segment", "cut"))}


def test_editing_the_baseline_correction_reruns_it_and_what_follows_not_the_fold_models(workflow_with_package):
    jobs = _planned_after_editing(workflow_with_package, "patchpose/baselines/correction.py")
    assert jobs["correct_trained_baseline"] == 2 and jobs["evaluate_baseline"] == 2  # lifting's and integral3d's
    assert not {rule for rule in jobs if any(stage in rule for stage in ("render", "keypoints2d", "segment", "cut"))}
    assert "train_baseline_fold" not in jobs and "predict_trained_baseline" not in jobs


def test_editing_the_keypoints2d_evaluation_reruns_only_that_evaluation(workflow_with_package):
    assert _planned_after_editing(workflow_with_package, "patchpose/keypoints2d/evaluate.py") == {
        "evaluate_keypoints2d": 1,
        "all": 1,
    }


@pytest.mark.parametrize(
    "relative", ["README.md", "docs/data_format.md", "tests/test_metrics.py", "patchpose/h36m/video.py"]
)
def test_editing_what_no_stage_runs_reruns_nothing(workflow_with_package, relative):
    assert _planned_after_editing(workflow_with_package, relative) == {}


def test_unchanged_workflow_files_with_new_modification_times_rerun_nothing(workflow_with_package):
    """A script rewritten with the same content (a checkout of another branch and back) reran the whole pipeline
    under Snakemake's mtime-based `code` trigger; the workflow profile leaves it out (profiles/default)."""
    files = [workflow_with_package / "Snakefile", *sorted((workflow_with_package / "rules").glob("*.smk")),
             *sorted((workflow_with_package / "workflow_scripts").glob("*.py"))]  # fmt: skip
    times = {path: path.stat() for path in files}
    try:
        for path in files:
            path.write_bytes(path.read_bytes())  # newer than every output, same content
        assert "Nothing to be done" in _snakemake_with_package(workflow_with_package, "-n").stdout
        without = _snakemake_with_package(workflow_with_package, "-n", "--workflow-profile", "none")
        assert "Code has changed since last execution" in without.stdout  # Snakemake's trigger, left out
        assert planned_jobs(without)["render_synthetic_split"] == 2
    finally:
        for path, stat in times.items():
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_editing_a_workflow_script_reruns_its_rule_through_the_code_param(workflow_with_package):
    assert _planned_after_editing(workflow_with_package, "workflow_scripts/evaluate_keypoints2d.py") == {
        "evaluate_keypoints2d": 1,
        "all": 1,
    }


def test_a_copy_without_its_modification_times_reruns_until_touched(tiny_run, tmp_path):
    """Files over 1 MB (and directories: the zarr stores) are compared by modification time. A copy that does not
    keep the times, as ``cp -r``, gives every file the time it was copied at: here the worst order, each file
    newer than those after it by path, so stores look newer than what was computed from them."""
    copy = copy_finished_run(tiny_run, tmp_path / "copy")
    paths = sorted((copy / "results").rglob("*"), reverse=True)
    start = os.stat(copy / "Snakefile").st_mtime_ns
    for rank, path in enumerate(paths):
        os.utime(path, ns=(start + rank * 1_000_000, start + rank * 1_000_000), follow_symlinks=False)
    before = planned_jobs(_run(copy, "-n"))
    assert before.get("train_updater", 0) > 0, before  # retraining, for nothing but the times
    _run(copy, "--touch")
    assert "Nothing to be done" in _run(copy, "-n").stdout
    comparison = compare_runs(tiny_run / "results/synthetic", copy / "results/synthetic")
    assert comparison.same, format_comparison(comparison)
