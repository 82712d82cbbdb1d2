"""What would a perfect segmentation give the updaters? A finished run, retrained from its limb patches on with
the ground-truth part labels in place of the segmentation stage's predictions.

Copies a finished run (a directory with ``Snakefile``, ``config.yaml`` and ``results/<dataset>``, as
``benchmarks/pipeline.py --workdir`` leaves it) to ``--workdir``, rewrites both splits' segmentation stores
(``results/<dataset>/segmentation/{train,test}.zarr``) with the palette colours of the dataset stores' part
labels (the renderer's: the synthetic world has them, Human3.6M does not), and runs Snakemake there with the
predicted limb patches forced to rerun (``--rerun-triggers mtime``): the patches, every updater, the refinements,
``claims.json`` and the tables are rebuilt; the 2D keypoints and the baselines stay the run's own. Then
prints both segmentations' mean IoU against those labels and the two runs' claims side by side
(``benchmarks/claims_spread.py``). An oracle, never a result: it measures how much of the paper's
effect the segmentation stage's quality holds back.

Run:  .venv/bin/python benchmarks/segmentation_oracle.py RUN --workdir DIR [--side S | --from OTHER_RUN]
          [--truth-parts PARTS] [--truth-sides] [--encoding argmax] [--splits train,test] [--cores 2]
          [-- snakemake args]
      .venv/bin/python benchmarks/segmentation_oracle.py RUN --score-only

``--splits train`` or ``--splits test``: only that split's segmentation is replaced (an updater trained on a perfect
segmentation of the training subjects and refining with the stage's, or the other way round).

``--side S``: the labels a perfect segmenter with an S x S output would give (each part's share of a cell,
upsampled bilinearly, argmax: ``patchpose.segmentation.store.coarse_labels``); the default network's part head
has a 32 x 32 output.

``--from OTHER_RUN``: not an oracle but a swap: the segmentation stores of another finished run of the same
frames (checked: same frame ids and pixels) in place of RUN's, e.g. a larger keypoint network's part head beside
RUN's own 2D keypoints and baselines; what a separate segmenter of that quality would give. OTHER_RUN may also be
the ``--out`` of ``benchmarks/limb_segmenter.py`` (stores and the digests of their frames).

``--truth-parts PARTS``: an oracle for some parts only. Every pixel that the renderer's labels or the
segmentation (RUN's, or OTHER_RUN's with ``--from``) put in one of PARTS (part names, or the groups ``arms``,
``legs``, ``head_torso``, comma-separated) takes the renderer's label and its palette colour; every other pixel
keeps the segmentation's. So those parts are segmented perfectly and the rest as the stage does: which parts'
mistakes hold the updaters back. With ``--side S`` those parts are segmented as the perfect S x S segmenter above
would segment them.

``--truth-sides``: the segmentation with its left and right put right and nothing else: every pixel it gives
the true part of the other side (a left forearm for a right one) takes the true label and its palette colour. With
``--encoding argmax`` (the other pixels' colours hard too) it isolates what taking one side for the other costs.

``--encoding argmax``: the segmentation channel S as the palette colour of each pixel's most probable part (the
store's ``labels``) instead of the expected colour under the part probabilities (its ``encoded``, the paper's and
the stage's): whether the soft colours of an uncertain segmentation, rather than its labels, are what the
updaters cannot use. An oracle's colours are its labels' already.

RUN should come from the code at hand: the jobs the oracle does not retrain read RUN's model files, and a file
written by older code may lack a key the current code needs (a refinement then fails, naming it).

``--score-only``: print the IoU per part of RUN's segmentation on both splits (a finished run, or an oracle's
``--workdir``) and stop.

Extra Snakemake arguments go after ``--`` (a run made with ``-- --config seed=1`` needs the same here).
About 5 minutes on 2 idle cores with the default world (the 6 updaters that read patches retrained).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from patchpose.augment import PART_FLIP
from patchpose.dataset_format import open_dataset
from patchpose.parts import PART_NAMES, encode_labels
from patchpose.segmentation.evaluate import confusion_counts, iou_from_counts
from patchpose.segmentation.store import (
    coarse_labels,
    open_segmentation,
    write_ground_truth_segmentation,
    write_segmentation,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from claims_spread import read_claims, render, spread  # noqa: E402

SPLITS = ("train", "test")
PART_GROUPS = {
    "arms": tuple(f"{side}_{part}" for side in ("left", "right") for part in ("upper_arm", "lower_arm", "hand")),
    "legs": tuple(f"{side}_{part}" for side in ("left", "right") for part in ("upper_leg", "lower_leg", "foot")),
    "head_torso": ("head", "torso"),
}
ENCODINGS = ("expected", "argmax")


def part_ids(text: str) -> np.ndarray:
    """The part ids that ``--truth-parts`` names (part names and ``PART_GROUPS``), or exit naming a wrong one."""
    names: list[str] = []
    for word in filter(None, (word.strip() for word in text.split(","))):
        if word in PART_GROUPS:
            names += PART_GROUPS[word]
        elif word in PART_NAMES[1:]:
            names.append(word)
        else:
            known = ", ".join([*PART_GROUPS, *PART_NAMES[1:]])
            raise SystemExit(f"--truth-parts {text}: {word!r} is not a body part or group; known: {known}")
    if not names:
        raise SystemExit(f"--truth-parts {text!r}: name at least one body part or group")
    return np.array(sorted({PART_NAMES.index(name) for name in names}), np.uint8)


def results_directory(run: Path) -> Path:
    """``run/results/<dataset>`` of the run's ``config.yaml``, or exit naming what is missing."""
    for name in ("Snakefile", "config.yaml"):
        if not (run / name).is_file():
            raise SystemExit(f"{run}: not a finished run directory (no {name})")
    config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    results = run / "results" / config["dataset"]["name"]
    for split in SPLITS:
        for stage in ("dataset", "segmentation"):
            if not (results / stage / f"{split}.zarr").is_dir():
                raise SystemExit(f"{results / stage / f'{split}.zarr'}: missing (run the pipeline first)")
    if not (results / "claims.json").is_file():
        raise SystemExit(f"{results / 'claims.json'}: missing (run the pipeline first)")
    return results


# each part id -> one id shared with its mirror image (``PART_FLIP``): the lower of the two, so the left part's
SIDELESS = np.minimum(np.arange(len(PART_FLIP)), PART_FLIP).astype(np.uint8)


def part_iou(results: Path, split: str, merge_sides: bool = False) -> tuple[np.ndarray, float]:
    """IoU per part and their mean, of the run's segmentation of ``split`` against the dataset's part labels; with
    ``merge_sides`` a right part counts as its left counterpart in both (``SIDELESS``: left and right taken for
    each other is no mistake; the right parts' IoU is then NaN)."""
    dataset = open_dataset(results / "dataset" / f"{split}.zarr")
    segmentation = open_segmentation(results / "segmentation" / f"{split}.zarr", dataset)
    counts = 0
    for start in range(0, dataset.num_frames, 256):
        rows = np.arange(start, min(start + 256, dataset.num_frames))
        predicted, truth = segmentation.read_labels(rows), dataset.read_part_labels(rows)
        if merge_sides:
            predicted, truth = SIDELESS[predicted], SIDELESS[truth]
        counts = counts + confusion_counts(predicted, truth)
    return iou_from_counts(counts)


def mean_iou(results: Path, split: str) -> float:
    """Mean IoU of the run's segmentation of ``split`` against the dataset's part labels."""
    return part_iou(results, split)[1]


IOU_COLUMNS = ("head", "torso", "upper_arm", "lower_arm", "hand", "upper_leg", "lower_leg", "foot")


def iou_row(iou: np.ndarray) -> dict[str, float]:
    """``part_iou``'s per-part IoU by ``IOU_COLUMNS``, left and right averaged."""
    row = {}
    for column in IOU_COLUMNS:
        ids = [i for i, name in enumerate(PART_NAMES) if name == column or name.endswith(f"_{column}")]
        row[column] = float(np.nanmean(iou[ids]))
    return row


def print_iou_table(runs: dict[str, Path], split: str) -> None:
    """Two lines per run: the mean IoU of ``split`` and each ``IOU_COLUMNS`` part's, then the same with left and
    right merged (``part_iou(merge_sides=True)``: what the segmentation misses beside taking one side for the
    other)."""
    print(f"IoU per part, {split} split (left and right averaged; then with left and right merged)")
    print(f"{'segmentation':44s}{'mean':>7s}" + "".join(f"{column:>10s}" for column in IOU_COLUMNS))
    for name, results in runs.items():
        for merged in (False, True):
            iou, mean = part_iou(results, split, merged)
            label = f"  {'(left = right)':>42s}" if merged else f"{name:44s}"
            print(f"{label}{mean:>7.3f}" + "".join(f"{value:>10.3f}" for value in iou_row(iou).values()))


def frames_digest(store_path: Path) -> str:
    """SHA-256 of a dataset store's frame ids and pixels (two runs render the same frames or not)."""
    dataset = open_dataset(store_path)
    digest = hashlib.sha256("\n".join(dataset.frame_ids()).encode())
    for start in range(0, dataset.num_frames, 512):
        digest.update(
            np.ascontiguousarray(dataset.read_frames(np.arange(start, min(start + 512, dataset.num_frames)))).tobytes()
        )
    return digest.hexdigest()


def swap_in(store: Path, source: Path, dataset_path: Path) -> None:
    """Replace the segmentation store ``store`` with a copy of ``source`` (fresh mtimes, so Snakemake's mtime
    trigger sees it as newer than the models it came from), checked against the dataset store."""
    partial = store.with_name(store.name + ".swap")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        shutil.copytree(source, partial, copy_function=shutil.copy)  # file contents and modes, not times
        open_segmentation(partial, open_dataset(dataset_path))  # complete, and of exactly these frames
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    for directory, _, _ in os.walk(partial):  # copytree copies the directories' times
        os.utime(directory)
    shutil.rmtree(store)
    partial.rename(store)


def mix_colours_and_labels(encoded, labels, truth, parts, encoding, sides=False):
    """One batch of the store ``remix`` writes: (B, 3, H, W) colours and (B, H, W) labels. Where ``truth`` or
    ``labels`` is one of ``parts`` (ids; may be empty), the true label and its palette colour; elsewhere the
    segmentation's. With ``sides``, also where ``labels`` is the true part's mirror image (``PART_FLIP``).
    With ``encoding`` ``argmax`` every colour is its pixel's label's palette colour."""
    labels = np.asarray(labels)
    if sides:
        other_side = (PART_FLIP[labels] == truth) & (labels != truth)
        labels = np.where(other_side, truth, labels).astype(np.uint8)
        encoded = np.where(other_side[:, None], encode_labels(truth).transpose(0, 3, 1, 2), encoded)
    if len(parts):
        ours = np.isin(truth, parts) | np.isin(labels, parts)
        labels = np.where(ours, truth, labels).astype(np.uint8)
        encoded = np.where(ours[:, None], encode_labels(truth).transpose(0, 3, 1, 2), encoded)
    if encoding == "argmax":
        encoded = encode_labels(labels).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(encoded, dtype=np.uint8), labels


def remix(
    store: Path, dataset_path: Path, parts: np.ndarray, encoding: str, side: int | None = None, sides: bool = False
) -> None:
    """Rewrite the segmentation store ``store`` in place with ``mix_colours_and_labels`` (its folds kept),
    whole or not at all; with ``side``, the truth is the perfect ``side`` x ``side`` segmenter's
    (``coarse_labels``)."""
    dataset = open_dataset(dataset_path)
    source = open_segmentation(store, dataset)
    folds = source.fold

    def produce(start: int, stop: int):
        rows = np.arange(start, stop)
        truth = dataset.read_part_labels(rows) if len(parts) or sides else None
        if truth is not None and side is not None:
            truth = coarse_labels(truth, side)
        encoded, labels = mix_colours_and_labels(
            source.read_encoded(rows), source.read_labels(rows), truth, parts, encoding, sides
        )
        return encoded, labels, folds[start:stop]

    # every read happens before the new store is published (write_segmentation builds it beside, atomically)
    write_segmentation(store, dataset.split, dataset.frame_ids(), dataset.frame_size, produce)


def write_frames_json(out: Path, results: Path, **extra) -> None:
    """``out/frames.json``: the digests of ``results``' frames of both splits (``frames_digest``) and ``extra``, by
    which ``segmentation_source`` accepts ``out`` as another run; written last, whole (renamed into place)."""
    digests = {split: frames_digest(results / "dataset" / f"{split}.zarr") for split in SPLITS}
    partial = out / "frames.json.partial"
    partial.write_text(json.dumps({**digests, **extra}), encoding="utf-8")
    partial.rename(out / "frames.json")


def segmentation_source(other: Path, results: Path) -> Path:
    """The directory whose ``segmentation/<split>.zarr`` ``--from OTHER`` swaps in: a finished run's results
    directory, or OTHER itself where it holds ``frames.json`` (``benchmarks/limb_segmenter.py --out``: the
    digests of the frames it segmented). Exits unless both splits' frames are RUN's (``frames_digest``)."""
    if (other / "frames.json").is_file():
        source, digests = other, json.loads((other / "frames.json").read_text(encoding="utf-8"))
    else:
        source = results_directory(other)
        digests = {split: frames_digest(source / "dataset" / f"{split}.zarr") for split in SPLITS}
    for split in SPLITS:
        if digests.get(split) != frames_digest(results / "dataset" / f"{split}.zarr"):
            raise SystemExit(f"--from {other}: its {split} frames are not {results}'s (other world or seed)")
        if not (source / "segmentation" / f"{split}.zarr").is_dir():
            raise SystemExit(f"{source / 'segmentation' / f'{split}.zarr'}: missing")
    return source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a finished run directory (benchmarks/pipeline.py --workdir)")
    parser.add_argument("--workdir", type=Path, help="where the oracle run goes (must not exist; required)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--side", type=int, help="a perfect segmentation at SIDE x SIDE cells (default: per pixel)")
    parser.add_argument("--from", dest="other", type=Path,
                        help="another run, or limb_segmenter.py --out, whose segmentation to swap in")  # fmt: skip
    parser.add_argument("--splits", default="train,test", help="the splits given the oracle (default: train,test)")
    parser.add_argument("--truth-parts", help="the renderer's labels for these parts only (names, arms, legs, "
                        "head_torso; comma-separated), the segmentation's elsewhere")  # fmt: skip
    parser.add_argument("--encoding", choices=ENCODINGS, default="expected",
                        help="the segmentation channel's colours: expected (the stage's) or argmax")  # fmt: skip
    parser.add_argument("--truth-sides", action="store_true",
                        help="the true side where the segmentation has the part on the wrong side")  # fmt: skip
    parser.add_argument("--score-only", action="store_true",
                        help="print RUN's segmentation's IoU per part on both splits, run nothing")  # fmt: skip
    parser.add_argument("snakemake_args", nargs="*", help="after --: more snakemake arguments")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)  # RUN comes first, so argparse would not see them
    args = parser.parse_args(argv[:cut])
    args.snakemake_args = argv[cut + 1 :]
    results = results_directory(args.run)
    if args.score_only:
        for split in SPLITS:
            print_iou_table({str(args.run): results}, split)
        return
    if args.workdir is None:
        raise SystemExit("--workdir: required (where the oracle run goes), unless --score-only")
    given = args.splits.split(",")
    if not given or any(split not in SPLITS for split in given) or len(set(given)) != len(given):
        raise SystemExit(f"--splits {args.splits}: a comma-separated choice of {', '.join(SPLITS)}")
    if args.workdir.exists():
        raise SystemExit(f"--workdir {args.workdir}: exists; give a new directory")
    other = None
    if args.other is not None:
        if args.side is not None and args.truth_parts is None:
            raise SystemExit("--side and --from: give one (a coarse ground truth, or another run's segmentation)")
        other = segmentation_source(args.other, results)
    parts = part_ids(args.truth_parts) if args.truth_parts is not None else np.zeros(0, np.uint8)
    mixed = len(parts) > 0 or args.encoding != "expected" or args.truth_sides
    if args.side is not None and args.encoding != "expected" and not len(parts):
        raise SystemExit("--side with --encoding: --side is an oracle for every part, in its labels' colours already")
    for split in SPLITS:
        if not open_dataset(results / "dataset" / f"{split}.zarr").has_part_labels:
            raise SystemExit(f"{results / 'dataset' / f'{split}.zarr'}: has no part labels (synthetic world only)")
    predicted = {split: mean_iou(results, split) for split in SPLITS}
    shutil.copytree(args.run, args.workdir, symlinks=True)
    oracle = args.workdir / results.relative_to(args.run)
    for split in given:
        store, dataset_path = oracle / "segmentation" / f"{split}.zarr", oracle / "dataset" / f"{split}.zarr"
        if other is not None:
            swap_in(store, other / "segmentation" / f"{split}.zarr", dataset_path)
        elif not mixed:
            write_ground_truth_segmentation(store, open_dataset(dataset_path), args.side)
        if mixed:
            remix(store, dataset_path, parts, args.encoding, args.side, args.truth_sides)
    patches = [str((oracle / "patches/predicted" / f"{split}.zarr").relative_to(args.workdir)) for split in SPLITS]
    # mtime only: a run made by older code would otherwise rerun every stage whose params gained a key since,
    # the segmentation with them (overwriting the oracle's stores); forcerun rebuilds the patches and all after
    command = [sys.executable, "-m", "snakemake", "--cores", str(args.cores), "--rerun-triggers", "mtime",
               "--forcerun", *patches, *args.snakemake_args]  # fmt: skip
    print("running in", args.workdir, ":", " ".join(command[1:]), flush=True)
    with open(args.workdir / "oracle_snakemake.log", "w", encoding="utf-8") as log:
        done = subprocess.run(command, cwd=args.workdir, stdout=log, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"snakemake failed (exit {done.returncode}); see {args.workdir / 'oracle_snakemake.log'}")
    oracle_iou = {split: mean_iou(oracle, split) for split in SPLITS}
    print(
        f"mean IoU of the 15 parts: predicted segmentation train {predicted['train']:.3f}, test "
        f"{predicted['test']:.3f}; the {'swapped' if other or mixed else 'oracle'}'s train "
        f"{oracle_iou['train']:.3f}, test {oracle_iou['test']:.3f}"
    )
    name = "ground-truth segmentation" if args.side is None else f"ground truth at {args.side}x{args.side}"
    if other is not None or mixed:
        name = f"segmentation of {args.other.name}" if other is not None else "the run's segmentation"
        if len(parts):
            name += f", the renderer's {args.truth_parts}"
            if args.side is not None:
                name += f" at {args.side}x{args.side}"
        if args.truth_sides:
            name += ", the renderer's sides"
        if args.encoding != "expected":
            name += f", {args.encoding} colours"
    if len(given) < len(SPLITS):
        name += f" ({given[0]} only)"
    print_iou_table({"predicted segmentation": results, name: oracle}, "test")
    runs = {"predicted segmentation": read_claims(results), name: read_claims(oracle)}
    print(render(spread(runs), list(runs)))


if __name__ == "__main__":
    main()
