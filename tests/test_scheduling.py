"""Which ready job Snakemake starts first: a dry run of the default config, its jobs' priorities."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import copy_workflow

UNBLOCKING = {
    "predict_keypoints2d",
    "predict_segmentation",
    "cut_limb_patches",
    "predict_trained_baseline",
    "correct_trained_baseline",
}
TRAINING = {"train_keypoints2d_fold", "train_segmentation_fold", "train_baseline_fold", "train_updater"}


def _planned_priorities(output: str) -> list[tuple[str, int]]:
    """(rule, priority) of every job a dry run lists (Snakemake prints a priority only when it is not 0)."""
    jobs = []
    for match in re.finditer(r"^(?:local)?rule (\w+):\n((?:    .*\n)+)", output, flags=re.MULTILINE):
        priority = re.search(r"^    priority: (-?\d+)$", match.group(2), flags=re.MULTILINE)
        jobs.append((match.group(1), int(priority.group(1)) if priority else 0))
    return jobs


def test_the_cheap_jobs_that_unblock_training_start_before_any_training(tmp_path):
    """Left at priority 0 lifting's test-split predictions waited behind the updaters, and its own updater trained
    alone at the end (rules/common.smk, UNBLOCKING_PRIORITY)."""
    directory = copy_workflow(tmp_path)
    result = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "-n"], cwd=directory,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = _planned_priorities(result.stdout)
    planned = {rule for rule, _ in jobs}  # the default segments with keypoints2d's part head: no segmentation folds
    assert UNBLOCKING <= planned and {"train_keypoints2d_fold", "train_baseline_fold", "train_updater"} <= planned
    unblocking = {priority for rule, priority in jobs if rule in UNBLOCKING}
    training = {priority for rule, priority in jobs if rule in TRAINING}
    assert len(unblocking) == 1 and min(unblocking) > max(training) >= 1, (unblocking, training)
