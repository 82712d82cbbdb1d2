"""The report's figures (matplotlib's object API on the Agg canvas; PNG written atomically, without a timestamp or
version, so equal inputs give equal bytes):

* ``per_action_figure``: per refined baseline of Table 1, its initial and refined MPJPE per action (the paper's
  columns and ``Avg``) as bars with their bootstrap intervals as whiskers, from ``table1.csv``; the
  reference baseline's ``Avg`` as a dashed line;
* ``rarity_figure``: per baseline, the mean error of the test frames in each decile of pose rarity
  (``patchpose.evaluation.rarity``: decile 1 the commonest poses, 10 the rarest), initial and refined by each
  of its updaters, and below each updater's relative gain per decile with its bootstrap interval, from
  ``rarity_deciles.csv``;
* ``qualitative_figure``: as the paper's Fig. 1/4, for the test frames of one (baseline, variant) with the
  largest improvement, the largest deterioration and the rarest pose: the input frame with the sampled limb
  regions, its 16 RGB and 16 segmentation patches (``patchpose.patches.contact_sheet.frame_row``), and the 3D
  pose, initial (blue), refined (red) and ground truth (grey), root-aligned, from a novel viewpoint.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from patchpose.atomic import atomic_write_bytes
from patchpose.dataset_format import open_dataset
from patchpose.evaluation.frame_errors import check_paired, read_frame_errors
from patchpose.evaluation.groups import pose_ids
from patchpose.evaluation.rarity import DECILE_COLUMNS, read_deciles, read_rarity
from patchpose.patches.contact_sheet import frame_row
from patchpose.patches.store import open_patch_store
from patchpose.poses3d.loading import load_for_store
from patchpose.skeleton import H36M
from patchpose.tables.layout import ACTION_COLUMNS, AVG, INITIAL, MODALITY_LABELS

__all__ = [
    "COLOURS",
    "VARIANT_COLOURS",
    "CASES",
    "write_figure",
    "per_action_figure",
    "rarity_figure",
    "select_frames",
    "novel_view",
    "qualitative_figure",
]

COLOURS = {"initial": "tab:blue", "refined": "tab:red", "truth": "0.55"}
VARIANT_COLOURS = {  # the paper's variant red as in the other figures; the others off the blue-red pair
    "rgb_seg": "tab:red",
    "rgb": "tab:orange",
    "seg": "tab:green",
    "uncropped_rgb": "tab:purple",
    "pose_only": "tab:brown",
    "pose_boxes": "tab:olive",
    "rgb_seg_conditioned": "tab:pink",
}
CASES = ("largest improvement", "largest deterioration", "rarest pose")


def _figure(width: float, height: float) -> Figure:
    """A figure drawn by the Agg canvas (no pyplot, no display, no global state)."""
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def write_figure(path: str | os.PathLike, figure: Figure, dpi: int) -> None:
    """Save ``figure`` as PNG at ``dpi`` to ``path`` atomically, without metadata that changes between runs."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None}, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())


def per_action_figure(tidy: pd.DataFrame):
    """Bars of Table 1's tidy rows (``patchpose.tables.numbers``): one panel per baseline with a refinement."""
    refined = tidy[tidy["modality"] != INITIAL]
    pairs = list(dict.fromkeys(zip(refined["method"], refined["modality"], strict=True)))
    if not pairs:
        raise ValueError("table 1 holds no refined column; nothing to plot")
    reference = tidy[(tidy["modality"] == INITIAL) & (tidy["action"] == AVG)]
    reference = reference[~reference["method"].isin([method for method, _ in pairs])]
    figure = _figure(12, 3.2 * len(pairs))
    axes = figure.subplots(len(pairs), 1, squeeze=False, sharex=True)
    positions = np.arange(len(ACTION_COLUMNS))
    for axis, (baseline, modality) in zip(axes[:, 0], pairs, strict=True):
        for offset, (label, key, colour) in enumerate(
            (
                ("initial", INITIAL, COLOURS["initial"]),
                (f"+ {MODALITY_LABELS.get(modality, modality)}", modality, COLOURS["refined"]),
            )  # fmt: skip
        ):
            rows = tidy[(tidy["method"] == baseline) & (tidy["modality"] == key)].set_index("action")
            rows = rows.reindex(list(ACTION_COLUMNS))
            values = rows["mpjpe_mm"].to_numpy(dtype=float)
            whiskers = np.abs(np.vstack([values - rows["ci_low"], rows["ci_high"] - values]).astype(float))
            axis.bar(positions + (offset - 0.5) * 0.4, values, 0.4, yerr=whiskers, capsize=2, color=colour,
                     label=label, error_kw={"elinewidth": 0.8})  # fmt: skip
        for _, row in reference.iterrows():
            axis.axhline(row["mpjpe_mm"], color="0.3", linestyle="--", linewidth=0.8,
                         label=f"{row['method']} (reference) {AVG}")  # fmt: skip
        axis.set_title(baseline)
        axis.set_ylabel("MPJPE (mm)")
        axis.legend(loc="upper left", fontsize=8, ncols=3)
        axis.grid(axis="y", linewidth=0.3)
    axes[-1, 0].set_xticks(positions, list(ACTION_COLUMNS), rotation=45, ha="right")
    figure.tight_layout()
    return figure


def _read_deciles(path: str | os.PathLike) -> pd.DataFrame:
    return pd.DataFrame(read_deciles(path), columns=list(DECILE_COLUMNS))


def rarity_figure(deciles: dict[tuple[str, str], str | os.PathLike]):
    """Per rarity decile, one column of panels per baseline: above, the mean MPJPE, initial and refined by each
    of its updaters; below, each updater's relative gain with its bootstrap interval (the rare-pose claim compares
    decile 10's with decile 1's). ``deciles``: {(baseline, variant): its rarity_deciles.csv}."""
    if not deciles:
        raise ValueError("no rarity decile table to plot")
    baselines = list(dict.fromkeys(baseline for baseline, _ in deciles))
    figure = _figure(5.5 * len(baselines), 6.8)
    axes = figure.subplots(2, len(baselines), squeeze=False, sharex=True)
    for column, baseline in enumerate(baselines):
        errors, gains = axes[0, column], axes[1, column]
        variants = [variant for name, variant in deciles if name == baseline]
        tables = {variant: _read_deciles(deciles[(baseline, variant)]) for variant in variants}
        first = tables[variants[0]]
        errors.plot(first["decile"], first["initial_mm"], "o-", color="black", label="initial")
        offsets = np.linspace(-0.25, 0.25, len(tables)) if len(tables) > 1 else np.zeros(1)
        for offset, (variant, table) in zip(offsets, tables.items(), strict=True):
            label, colour = f"+ {MODALITY_LABELS.get(variant, variant)}", VARIANT_COLOURS.get(variant, "tab:gray")
            errors.plot(table["decile"], table["refined_mm"], ".-", label=label, color=colour)
            gain = 100 * table["gain_relative"]
            spread = [gain - 100 * table["gain_relative_ci_low"], 100 * table["gain_relative_ci_high"] - gain]
            gains.errorbar(table["decile"] + offset, gain, yerr=spread, fmt=".", color=colour, label=label,
                           elinewidth=0.8, capsize=2)  # fmt: skip
        errors.set_title(baseline)
        errors.set_ylabel("mean MPJPE (mm)")
        errors.legend(fontsize=8)
        gains.axhline(0, color="0.3", linewidth=0.8)
        gains.set_ylabel("relative gain (%), bootstrap interval")
        gains.set_xlabel("pose rarity decile (1: commonest, 10: rarest)")
        for axis in (errors, gains):
            axis.set_xticks(range(1, 11))
            axis.grid(linewidth=0.3)
    figure.tight_layout()
    return figure


def select_frames(improvement: np.ndarray, rarity: np.ndarray, poses: np.ndarray, count: int) -> dict[str, list]:
    """The test frames of each of ``CASES``: the ``count`` frames with the largest improvement (initial -
    refined, mm), with the largest deterioration (the most negative), and one view (the first row) of each of
    the ``count`` rarest poses (``poses``: a pose id per frame). Ties keep row order."""
    order = np.argsort(-improvement, kind="stable")
    rarest = []
    for index in np.argsort(-rarity, kind="stable").tolist():
        if poses[index] not in {poses[chosen] for chosen in rarest}:
            rarest.append(index)
        if len(rarest) == count:
            break
    worst = np.argsort(improvement, kind="stable")
    return {CASES[0]: order[:count].tolist(), CASES[1]: worst[:count].tolist(), CASES[2]: rarest}


def novel_view(poses_mm: np.ndarray) -> np.ndarray:
    """(..., 17, 3) camera-frame poses (x right, y down, z forward, mm) to plot axes (x, depth, up)."""
    poses = np.asarray(poses_mm, dtype=np.float64)
    return np.stack([poses[..., 0], poses[..., 2], -poses[..., 1]], axis=-1)


def _draw_pose(axis, pose: np.ndarray, colour: str, label: str, width: float) -> None:
    for number, (child, parent) in enumerate(H36M.limbs):
        segment = pose[[parent, child]]
        axis.plot(segment[:, 0], segment[:, 1], segment[:, 2], color=colour, linewidth=width,
                  label=label if number == 0 else None)  # fmt: skip


def qualitative_figure(
    *,
    store: str | os.PathLike,
    patches: str | os.PathLike,
    initial: str | os.PathLike,
    refined: str | os.PathLike,
    initial_errors: str | os.PathLike,
    refined_errors: str | os.PathLike,
    rarity: str | os.PathLike,
    title: str,
    frames_per_case: int,
    azimuth_deg: float,
    elevation_deg: float,
):
    """The qualitative figure of one refinement (module docstring): a row per chosen frame. ``initial``,
    ``refined``: the two prediction files of the test ``store``; ``*_errors``: their per-frame errors;
    ``rarity``: the test split's rarity file; the 3D view turned by ``azimuth_deg`` about the vertical axis
    from the camera's and raised by ``elevation_deg``."""
    dataset = open_dataset(store)
    patch_store = open_patch_store(patches, dataset)
    before, after = read_frame_errors(initial_errors), read_frame_errors(refined_errors)
    check_paired(before, after)
    improvement = before.mpjpe_mm - after.mpjpe_mm
    rarity_mm = read_rarity(rarity, before.num_frames)
    poses = pose_ids(before.subject, before.action, before.subaction, before.frame_index)
    chosen = select_frames(improvement, rarity_mm, poses, frames_per_case)
    rows = [(case, index) for case in CASES for index in chosen[case]]
    indices = np.array([index for _, index in rows])
    start, refined_poses = load_for_store(initial, dataset)[indices], load_for_store(refined, dataset)[indices]
    truth = dataset.joints_3d[indices] - dataset.joints_3d[indices][:, :1]
    frames, crops, affines = dataset.read_frames(indices), patch_store.read(indices), patch_store.read_affine(indices)
    figure = _figure(14, 2.2 * len(rows))
    grid = figure.add_gridspec(len(rows), 2, width_ratios=(4, 1))
    ids = dataset.frame_ids()
    for row, (case, index) in enumerate(rows):
        image_axis = figure.add_subplot(grid[row, 0])
        image_axis.imshow(frame_row(frames[row], crops[row], affines[row]))
        image_axis.set_axis_off()
        image_axis.set_title(
            f"{case}: {ids[index]}   MPJPE {before.mpjpe_mm[index]:.1f} -> {after.mpjpe_mm[index]:.1f} mm, "
            f"rarity {rarity_mm[index]:.0f} mm",
            fontsize=9,
            loc="left",
        )
        pose_axis = figure.add_subplot(grid[row, 1], projection="3d")
        shown = novel_view(np.stack([truth[row], start[row], refined_poses[row]]))
        for pose, colour, label, width in zip(
            shown, (COLOURS["truth"], COLOURS["initial"], COLOURS["refined"]), ("ground truth", "initial", "refined"),
            (3.0, 1.5, 1.5), strict=True,
        ):  # fmt: skip
            _draw_pose(pose_axis, pose, colour, label, width)
        centre, half = (
            shown.reshape(-1, 3).mean(axis=0),
            np.abs(shown.reshape(-1, 3) - shown.reshape(-1, 3).mean(axis=0)).max(),
        )
        for setter, middle in zip((pose_axis.set_xlim, pose_axis.set_ylim, pose_axis.set_zlim), centre, strict=True):
            setter(middle - half, middle + half)
        pose_axis.set_box_aspect((1, 1, 1))
        pose_axis.view_init(elev=elevation_deg, azim=-90 + azimuth_deg)
        pose_axis.set_xticklabels([]), pose_axis.set_yticklabels([]), pose_axis.set_zticklabels([])
        if row == 0:
            pose_axis.legend(fontsize=7, loc="upper left")
    figure.suptitle(f"{title}: frame with the limb regions | 16 RGB patches | 16 segmentation patches | 3D pose",
                    fontsize=10)  # fmt: skip
    figure.tight_layout()
    return figure
