"""Render one split of the synthetic world into the common dataset format, plus its contact sheet."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from patchpose.actions import ACTIONS
from patchpose.dataset_format import DatasetWriter
from patchpose.synthetic.plan import SequencePlan, plan_split
from patchpose.synthetic.world import render_sequence
from patchpose.visualize import annotate, draw_skeleton, overlay_labels, tile, write_png

__all__ = ["render_split", "contact_sheet"]

log = logging.getLogger(__name__)


def _render_job(job: tuple[SequencePlan, dict[str, Any], int, int, int]) -> dict[str, np.ndarray]:
    plan, world, seed, subject_index, action_index = job
    return render_sequence(plan, world, seed, subject_index, action_index)


def contact_sheet(tiles: dict[tuple[str, str], np.ndarray], subjects: list[str]) -> np.ndarray:
    """Subjects as rows, the 15 actions as columns; a blank tile where a split has no such sequence."""
    some = next(iter(tiles.values()))
    blank = np.zeros_like(some)
    cells = [
        annotate(tiles.get((subject, action), blank), f"{subject} {action}")
        for subject in subjects
        for action in ACTIONS
    ]
    return tile(cells, columns=len(ACTIONS))


def _sheet_tile(batch: dict[str, np.ndarray], num_poses: int) -> np.ndarray:
    """First camera, middle pose: the frame with its part labels blended in and the 2D skeleton."""
    row = num_poses // 2
    overlaid = overlay_labels(batch["frames"][row], batch["part_labels"][row])
    return draw_skeleton(overlaid, batch["joints_2d"][row])


def render_split(
    store_path: str | Path,
    contact_sheet_path: str | Path,
    split: str,
    world: dict[str, Any],
    seed: int,
    threads: int = 1,
) -> int:
    """Render ``split`` ('train' | 'test') of the world (the validated ``dataset.synthetic`` keys that
    shape it) to a dataset store at ``store_path`` and a PNG contact sheet. Returns the frame count.

    Sequences render in ``threads`` processes; the store is written batch by batch (bounded memory)
    and appears atomically when complete.
    """
    plans = plan_split(world, split)
    for path in (store_path, contact_sheet_path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    subjects = list(world[f"{split}_subjects"])
    cameras = len(world["cameras"])
    num_frames = sum(plan.num_poses for plan in plans) * cameras
    size = world["frame_size"]
    log.info("rendering %s: %d sequences, %d frames of %dx%d", split, len(plans), num_frames, size, size)
    jobs = [(plan, world, seed, subjects.index(plan.subject), ACTIONS.index(plan.action)) for plan in plans]
    sheet_tiles: dict[tuple[str, str], np.ndarray] = {}
    started = time.perf_counter()
    with DatasetWriter(
        store_path,
        num_frames=num_frames,
        frame_size=(size, size),
        has_part_labels=True,
        source="synthetic",
        split=split,
        subjects=subjects,
        actions=list(ACTIONS),
        extra_attrs={"seed": seed, "world": world},
    ) as writer:
        executor = ProcessPoolExecutor(max_workers=threads) if threads > 1 else None
        try:
            batches = executor.map(_render_job, jobs) if executor else map(_render_job, jobs)
            start = 0
            for plan, batch in zip(plans, batches, strict=True):
                writer.write(start, batch)
                start += len(batch["frames"])
                sheet_tiles[(plan.subject, plan.action)] = _sheet_tile(batch, plan.num_poses)
        finally:
            if executor:
                executor.shutdown(cancel_futures=True)
    elapsed = time.perf_counter() - started
    log.info("rendered %d frames in %.1f s (%.1f frames/s with %d processes)", num_frames, elapsed,
             num_frames / elapsed, threads)  # fmt: skip
    sheet = contact_sheet(sheet_tiles, subjects)
    write_png(contact_sheet_path, sheet)
    return num_frames
