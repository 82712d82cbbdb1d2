"""Refinement's overhead: per frame, cutting the limb patches + the updater's forward pass + rebuilding the
pose (Eq. 1) beside the forward pass alone (goal: the whole <= 1.15 x the forward; the paper says refinement
adds little to the initial method).

On the pipeline's results (default ``results/synthetic``), for one trained updater (``--baseline``,
``--variant``; a patch variant, not ``pose_only`` nor ``pose_boxes``), ``--frames`` test frames and everything
they need are read into memory before the clock starts: the RGB frames, the colour-coded segmentation,
keypoints2d's predicted 2D joints and the baseline's initial poses. Then, batch by batch (``--batch`` frames):

1. forward alone: the network on its inputs already prepared (the patches cut, zoomed and normalised, U_init
   and the boxes on the device);
2. the whole refinement: the limb boxes from the 2D joints (``limb_patch_geometry``), the 16 patches cut from
   frame and segmentation (``cut_patches``), ``prepare_batch``, the boxes normalised, U_init encoded, the
   forward pass, the residual pose rebuilt along the tree and added (``orientation.refine``).

The two are interleaved ``--repeats`` times and the medians of the per-frame times printed with their ratio,
then the share of each step of the whole refinement (boxes, cut, prepare, forward, rebuild).
The frames and segmentation come from the stores (decoding them is the dataset's cost, not refinement's);
the patches are cut at the store's cache size, as the pipeline does. Timings only; nothing asserts on them.
Run (it uses the CPU; on a shared machine hold the lock):

    flock /tmp/patchpose-cpu.lock .venv/bin/python benchmarks/refine.py [--results results/synthetic]
        [--baseline lifting] [--variant rgb_seg] [--frames 256] [--batch 32] [--threads 2] [--repeats 5]
        [--model '{"architecture": "resnet", "input_size": 256, "resnet": {"depth": 50}}']

``--model`` times an untrained network instead: config.yaml's ``updater.model`` for the variant with those
keys changed (weights do not change the time; the trained model still gives the bone statistics), e.g. the
paper's ResNet-50 at 256 px beside the 2-core default.

``--allocator``: ``kept`` (the default) keeps glibc from unmapping the large freed tensors, as the pipeline's
refinement does on the CPU (``predict_residuals``, ``patchpose.allocator``); ``glibc`` leaves glibc as it comes;
``both`` runs the benchmark once with each in fresh processes (the setting cannot be undone in a process), glibc
first, prints both and the ratio of their per-frame times.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from patchpose.allocator import OPT_OUT, keep_freed_memory
from patchpose.dataset_format import open_dataset
from patchpose.keypoints2d.stage import read_predictions
from patchpose.orientation import BoneStatistics, encode_orientation, refine
from patchpose.patches.geometry import LimbPatchGeometry, limb_patch_geometry
from patchpose.patches.sampler import cut_patches
from patchpose.patches.store import open_patch_store
from patchpose.poses3d.loading import load_for_store
from patchpose.segmentation.store import open_segmentation
from patchpose.training import select_device
from patchpose.updater.inputs import normalise_boxes, prepare_batch
from patchpose.updater.network import OUTPUTS, build_network
from patchpose.updater.stage import load_updater
from patchpose.updater.variants import variant_settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from allocator import MODES  # noqa: E402  (the environment of each allocator mode, as benchmarks/allocator.py runs it)

REPO = Path(__file__).resolve().parents[1]


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=Path("results/synthetic"))
    parser.add_argument("--baseline", default="lifting")
    parser.add_argument("--variant", default="rgb_seg")
    parser.add_argument("--frames", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--model",
        help="JSON keys over the trained updater's model settings: time an untrained "
        "network of those settings instead (e.g. the paper's ResNet-50 at 256 px)",
    )
    parser.add_argument("--allocator", choices=("kept", "glibc", "both"), default="kept",
                        help="freed large blocks kept (as the pipeline), glibc as it comes, or both")  # fmt: skip
    return parser.parse_args()


PER_FRAME = {
    "forward": re.compile(r"^forward alone: +([0-9.]+) ms/frame$", re.M),
    "whole": re.compile(r"^boxes \+ cut \+ prepare \+ forward \+ rebuild: +([0-9.]+) ms/frame$", re.M),
}


def both_allocators() -> None:
    """This benchmark with glibc's allocator as it comes, then with freed blocks kept, each in a fresh process."""
    argv = sys.argv[1:]
    at = argv.index("--allocator") if "--allocator" in argv else None
    if at is not None:
        del argv[at : at + 2]
    times = {}
    for mode in ("glibc", "kept"):
        environment = {**{key: value for key, value in os.environ.items() if key != OPT_OUT}, **MODES[mode]}
        command = [sys.executable, str(Path(__file__).resolve()), *argv, "--allocator", mode]
        result = subprocess.run(command, env=environment, capture_output=True, text=True)
        print(f"--- allocator {mode}")
        print(result.stdout, end="")
        if result.returncode != 0:
            sys.stderr.write(result.stderr)
            raise SystemExit(f"the {mode} run failed (exit {result.returncode})")
        times[mode] = {name: float(pattern.search(result.stdout).group(1)) for name, pattern in PER_FRAME.items()}
    for name, label in (("whole", "whole refinement"), ("forward", "forward alone")):
        print(f"{label} per frame, glibc / kept: {times['glibc'][name] / times['kept'][name]:.2f}x "
              f"({times['glibc'][name]:.3f} -> {times['kept'][name]:.3f} ms)")  # fmt: skip


def main() -> None:
    args = _arguments()
    if args.allocator == "both":
        both_allocators()
        return
    torch.set_num_threads(args.threads)
    device = select_device()
    kept = args.allocator == "kept" and device.type == "cpu" and keep_freed_memory()  # as predict_residuals does
    results = args.results
    network, payload = load_updater(results / "updater" / args.baseline / args.variant / "model.pt", device)
    if args.model:  # timing only: random weights of other settings, the trained model's modality and statistics
        config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
        settings = copy.deepcopy(variant_settings(config["updater"]["model"], args.variant))
        for key, value in json.loads(args.model).items():
            settings[key] = {**settings[key], **value} if isinstance(value, dict) else value
        torch.manual_seed(0)
        network = build_network(settings, payload["modality"], load_weights=False).to(device).eval()
        payload = {**payload, "model_settings": settings}
    modality = payload["modality"]
    if not network.uses_images:
        raise SystemExit(f"{args.variant}: the updater reads no patch pixels (a control); choose a patch variant")
    if modality == "uncropped_rgb":
        raise SystemExit(f"{args.variant}: the whole frame is not cut by limb boxes; choose a limb variant")
    stats = BoneStatistics.from_dict(payload["bone_statistics"])
    size = payload["model_settings"]["input_size"]

    store = open_dataset(results / "dataset/test.zarr")
    limb_store = open_patch_store(results / "patches/predicted/test.zarr", store)
    placed = limb_store.geometry  # the settings that placed the pipeline's patches, at its cache size
    geometry = LimbPatchGeometry(placed["min_side_at_256"], placed["scale"], placed["square"], limb_store.patch_size)
    rows = np.arange(min(args.frames, store.num_frames))
    rgb = store.read_frames(rows)
    segmentation = open_segmentation(results / "segmentation/test.zarr", store).read_encoded(rows)
    joints_2d = read_predictions(results / "keypoints2d/test_joints_2d.npz", store)[rows].astype(np.float64)
    initial = load_for_store(results / "baselines" / args.baseline / "test_poses_3d.npz", store)[rows]
    batches = [slice(start, min(start + args.batch, len(rows))) for start in range(0, len(rows), args.batch)]

    parts = {"boxes": 0.0, "cut": 0.0, "prepare": 0.0, "forward": 0.0, "rebuild": 0.0}

    def network_inputs(part: slice, lap) -> tuple:
        """The network's arguments for frames ``part``: boxes, cut, prepare (``lap(step)`` after each)."""
        boxes, affines = limb_patch_geometry(joints_2d[part], store.frame_size, geometry)
        lap("boxes")
        patches = cut_patches(rgb[part], segmentation[part], affines, geometry.cache_size)
        lap("cut")
        images = prepare_batch(patches, modality, size, device)
        box_inputs = torch.from_numpy(normalise_boxes(boxes, store.frame_size)).to(device)
        u_init = torch.from_numpy(encode_orientation(initial[part], stats).reshape(-1, OUTPUTS).astype(np.float32))
        lap("prepare")
        return images, u_init.to(device), box_inputs if network.uses_boxes else None

    def whole(part: slice) -> np.ndarray:  # adds each step's seconds to ``parts``
        clock = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            parts[name] += now - clock
            clock = now

        delta = network(*network_inputs(part, lap)).float().cpu().numpy().reshape(-1, OUTPUTS // 3, 3)
        lap("forward")
        refined = refine(initial[part], delta, stats)
        lap("rebuild")
        return refined

    # the forward pass's inputs, made before its clock starts
    prepared = [network_inputs(part, lambda step: None) for part in batches]

    def forward_alone() -> None:
        for inputs in prepared:
            network(*inputs).float().cpu()

    def refinement() -> None:
        for part in batches:
            whole(part)

    timings = {"forward": [], "refine": []}
    with torch.no_grad():
        forward_alone(), refinement()  # warm-up: allocators, OpenCV and torch kernels
        parts.update(dict.fromkeys(parts, 0.0))
        for _ in range(args.repeats):
            for name, run in (("forward", forward_alone), ("refine", refinement)):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                run()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                timings[name].append((time.perf_counter() - start) / len(rows))
    forward, whole_ms = (statistics.median(timings[name]) * 1000 for name in ("forward", "refine"))
    print(f"{args.baseline}/{args.variant} ({payload['model_settings']['architecture']}, {modality}, input "
          f"{size} px), {len(rows)} test frames in batches of {args.batch}, {args.threads} threads, {device.type}, "
          f"median of {args.repeats}, allocator {'kept' if kept else 'glibc'}")  # fmt: skip
    print(f"forward alone:                        {forward:8.3f} ms/frame")
    print(f"boxes + cut + prepare + forward + rebuild: {whole_ms:8.3f} ms/frame")
    print(f"ratio whole / forward: {whole_ms / forward:.2f}x (goal <= 1.15x)")
    total = sum(parts.values())
    shares = ", ".join(f"{name} {100 * seconds / total:.0f}%" for name, seconds in parts.items())
    print(f"where the whole refinement's time goes (all repeats): {shares}")


if __name__ == "__main__":
    main()
