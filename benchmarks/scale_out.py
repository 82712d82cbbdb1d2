"""Scale-out arithmetic: Human3.6M with the paper's settings, GPU-hours per training stage, disk per store, fan-out.

Settings: ``config.yaml`` with the ``--configfile`` files merged over it in order, as Snakemake's ``--configfile``
does (default ``config/h36m_paper.yaml``), validated like the pipeline's config. The estimate is for Human3.6M
protocol 1 as the extraction keeps it (``dataset.h36m``: ``train_stride``, ``test_every``, ``frame_size``),
whatever ``dataset.kind`` says.

1. **Networks, per sample.** Every network the training stages build for those settings, built by the stages'
   own builders: keypoints2d's hourglass, the segmentation stage's own network (only if ``segmentation.network``
   is not the keypoints2d part head), every lifting and integral3d baseline, and the updater of every planned
   (baseline, variant) pair (networks of one shape are measured once). On this machine's CPU, one torch thread,
   random inputs at the stage's input size: learnable parameters; FLOPs per sample of a forward pass (eval) and
   of a training step (forward + backward), counted by ``torch.utils.flop_counter.FlopCounterMode`` on a batch of
   2 (convolutions and matrix products, a multiply-add = 2 FLOPs; batch norm, activations, the loss, Adam and
   the augmentation or patch zoom on the device are not counted); CPU seconds per sample (``time.process_time``,
   median of ``--steps`` steps after one warm-up step) of a training step (forward, a surrogate loss: the mean
   square of every output, backward, Adam) and of a forward pass, at the stage's own batch size where one
   training step of it costs at most ``--max-step-gflop``, else at ``--batch``.
2. **Stages.** Frames from the protocol (``H36M_*_FRAMES``, README "Patches") at the configured subsampling.
   A k-fold stage trains k fold models, each on (k - 1)/k of the training frames (subjects taken as equally
   large), less its validation frames, for its epochs (``max_epochs`` is an upper bound: early stopping may end
   sooner); validation passes every epoch, calibration passes and the predictions of both splits count as
   forward passes. GPU-hours = FLOPs / ``--sustained-tflops`` (an assumption, not a measurement); CPU
   core-hours = the measured CPU seconds per sample x samples.
3. **Disk.** Measured on the pipeline's stores under ``--results`` (default ``results/synthetic``): per image
   array, the compressed bytes per raw byte, times the raw bytes of that array at the Human3.6M settings (the
   measured bytes scaled by pixel count); the other per-frame arrays as measured; the prediction files
   (uncompressed npz) per frame; model files from the networks' state (float32) and checkpoints with Adam's
   two moments.
4. **Fan-out.** Which jobs of a stage run side by side, with how many GPUs each, and the wall hours of the GPU
   stages one after another if every job of a stage has its own GPUs (linear scaling assumed).

Nothing asserts on a number. Run (~5 minutes on one core with the paper-sized networks; ``--quick``: one timed
step per network):

    .venv/bin/python benchmarks/scale_out.py [--sustained-tflops 100] [--json OUT] [--quick]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
import zarr
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from patchpose.atomic import atomic_write_text
from patchpose.baselines.integral3d.stage import build_model as build_integral3d
from patchpose.baselines.lifting.stage import INPUTS as LIFTING_INPUTS
from patchpose.baselines.lifting.stage import build_model as build_lifting
from patchpose.config import ConfigError, merge_config, validate_config
from patchpose.dataset_format import open_dataset
from patchpose.folds import assign_folds
from patchpose.keypoints2d.stage import build_model as build_keypoints2d
from patchpose.patches.store import open_patch_store
from patchpose.segmentation.stage import build_model as build_refinenet
from patchpose.segmentation.store import open_segmentation
from patchpose.skeleton import H36M
from patchpose.updater.modalities import get_modality
from patchpose.updater.network import OUTPUTS, build_network
from patchpose.updater.variants import get_variant, planned_pairs, updater_owner, updater_sources, variant_settings

REPO = Path(__file__).resolve().parents[1]

# Human3.6M protocol 1 before subsampling, all 4 cameras (README "Patches": "about 1.5 M training frames (S1, S5,
# S6, S7, S8, 4 cameras) ... about 0.55 M test frames (S9, S11)"). The extraction keeps every train_stride-th
# frame of a training video and every test_every-th of a test video (patchpose/h36m/extract.py).
H36M_TRAIN_FRAMES = 1_500_000
H36M_TEST_FRAMES = 550_000
PATCH_CHANNELS = 6  # per patch: R, G, B of the frame, then of the colour-coded segmentation
FOLD_JOB_GPUS = 1  # rules/{keypoints2d,segmentation,baselines}.smk: each fold training job asks for gpu=1
ADAM_MOMENTS = 2  # a checkpoint holds the model and Adam's two float32 moments per parameter


# --- settings and frames ---


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SystemExit(f"{path}: cannot read the config file: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise SystemExit(f"{path}: not valid YAML: {' '.join(str(error).split())}") from None
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: a config file must be a mapping of keys")
    return data


def load_settings(overlays: list[Path]) -> tuple[dict, dict[str, dict]]:
    """config.yaml with ``overlays`` merged over it in order, validated (schema defaults filled); and each
    overlay's own keys by its name."""
    config = _read_yaml(REPO / "config.yaml")
    raw = {str(path): _read_yaml(path) for path in overlays}
    for data in raw.values():
        merge_config(config, copy.deepcopy(data))
    h36m = config.setdefault("dataset", {}).setdefault("h36m", {})
    if not h36m.get("root"):  # required with kind h36m; no release is read here
        h36m["root"] = "<not read: arithmetic only>"
    try:
        return validate_config(config), raw
    except ConfigError as error:
        raise SystemExit(f"{' + '.join(['config.yaml', *map(str, overlays)])}: {error}") from None


def settings_from(block: tuple[str, ...], overlays: dict[str, dict]) -> str:
    """Which files set keys of the config ``block``: the overlays that have it, else config.yaml alone."""
    names = []
    for name, data in overlays.items():
        for key in block:
            data = data.get(key) if isinstance(data, dict) else None
        if data is not None:
            names.append(Path(name).name)
    return " + ".join(["config.yaml", *names]) if names else "config.yaml"


def protocol_frames(config: dict) -> dict:
    """Kept Human3.6M frames per split at ``dataset.h36m``'s subsampling, the fold count and the frame side."""
    h36m = config["dataset"]["h36m"]
    return {
        "train": round(H36M_TRAIN_FRAMES / h36m["train_stride"]),
        "test": round(H36M_TEST_FRAMES / h36m["test_every"]),
        "train_before_subsampling": H36M_TRAIN_FRAMES,
        "test_before_subsampling": H36M_TEST_FRAMES,
        "train_stride": h36m["train_stride"],
        "test_every": h36m["test_every"],
        "k": config["folds"]["k"],
        "frame_size": h36m["frame_size"],
    }


# --- the networks the training stages build ---


@dataclass(frozen=True)
class NetworkSpec:
    """One network: what it is, how its stage builds it, example inputs, and the stage's batch size."""

    what: str
    block: tuple[str, ...]  # the config block its settings come from
    build: Callable[[], nn.Module]
    inputs: Callable[[nn.Module, int, torch.Generator], tuple]
    batch_size: int


def _images(size: int):
    return lambda network, batch, generator: (torch.rand(batch, 3, size, size, generator=generator),)


def _updater_inputs(size: int):
    def make(network, batch, generator):
        images = None
        if network.uses_images:
            images = torch.rand(batch, network.in_channels, size, size, generator=generator)
        boxes = torch.rand(batch, network.num_patches, 4, generator=generator) if network.uses_boxes else None
        return images, torch.randn(batch, OUTPUTS, generator=generator), boxes

    return make


def hourglass_settings(config: dict, part_head: bool) -> dict:
    """keypoints2d's model settings, with the part head's key only when it segments (rules/common.smk)."""
    model = dict(config["keypoints2d"]["model"])
    if not part_head:
        model.pop("part_head_channels", None)
    return model


def updater_plan(config: dict) -> dict:
    """The (baseline, variant) pairs the tables need, as rules/common.smk plans them: ``refined`` (one refine job
    each), ``trained`` (one train_updater job each: the pairs of baselines with updaters of their own) and
    ``owner`` (whose updaters refine each baseline)."""
    sources = updater_sources(config["baselines"])
    trained = [name for name, source in sources.items() if not source.startswith("from ")]
    plan = planned_pairs(list(sources), config["updater"]["ablation_baseline"],
                         config["updater"]["condition_on_initial_pose"], trained=trained)  # fmt: skip
    pairs = plan["table1"] + plan["ablation"]
    return {
        "refined": pairs,
        "trained": [pair for pair in pairs if pair[0] in trained],
        "owner": {name: updater_owner(name, source) for name, source in sources.items()},
    }


def _image_modality(config: dict, variant: str) -> str | None:
    """The modality whose patch pixels variant ``variant``'s updater reads: None for a pose_only network (the
    ``pose_only`` control and the ``pose_boxes`` one, which reads only the boxes of its store)."""
    if variant_settings(config["updater"]["model"], variant)["architecture"] == "pose_only":
        return None
    return get_variant(variant).modality


def updater_key(config: dict, variant: str) -> str:
    """The measured network of a variant's updater (variants of one shape share it: rgb and seg)."""
    settings = variant_settings(config["updater"]["model"], variant)
    modality = _image_modality(config, variant)
    channels = get_modality(modality).num_channels if modality else 0
    return f"updater {settings['architecture']}" + (f" {channels} ch" if channels else "") + (
        " conditioned" if settings["condition_on_initial_pose"] else "")  # fmt: skip


def network_specs(config: dict) -> dict[str, NetworkSpec]:
    """{key: NetworkSpec} for every network the training stages build with ``config``."""
    specs = {}
    with_head = config["segmentation"]["network"] == "keypoints2d"
    hourglass = hourglass_settings(config, with_head)
    side = hourglass["input_size"]
    shape = f"{hourglass['stacks']} stack(s) x {hourglass['features']} features, depth {hourglass['depth']}"
    specs["keypoints2d"] = NetworkSpec(
        f"hourglass{' + part head' if with_head else ''}, {shape}, 3 x {side}²", ("keypoints2d", "model"),
        lambda hourglass=hourglass: build_keypoints2d(hourglass), _images(side),
        config["keypoints2d"]["training"]["batch_size"])  # fmt: skip
    if not with_head:
        model = config["segmentation"]["model"]
        specs["segmentation"] = NetworkSpec(
            f"RefineNet-like, width {model['width']}, {model['levels']} levels, 3 x {model['input_size']}²",
            ("segmentation", "model"),
            lambda model=model: build_refinenet(model), _images(model["input_size"]),
            config["segmentation"]["training"]["batch_size"])  # fmt: skip
    for name, block in config["baselines"].items():
        if block["kind"] == "lifting":
            model = block["model"]
            specs[f"baseline {name}"] = NetworkSpec(
                f"lifting MLP, width {model['width']}, {model['blocks']} blocks, {LIFTING_INPUTS} inputs",
                ("baselines", name, "model"),
                lambda model=model: build_lifting(model),
                lambda network, batch, generator: (torch.randn(batch, LIFTING_INPUTS, generator=generator),),
                block["training"]["batch_size"],
            )
        elif block["kind"] == "integral3d":
            settings = {"hourglass": hourglass_settings(config, False), **block["model"]}
            specs[f"baseline {name}"] = NetworkSpec(
                f"hourglass ({shape}) + depth head, {block['model']['depth_bins']} bins, 3 x {side}²",
                ("keypoints2d", "model"),
                lambda settings=settings: build_integral3d(settings), _images(side),
                block["training"]["batch_size"])  # fmt: skip
    size = config["updater"]["model"]["input_size"]
    for _, variant in updater_plan(config)["trained"]:
        key = updater_key(config, variant)
        if key in specs:
            continue
        settings = variant_settings(config["updater"]["model"], variant)
        architecture, modality = settings["architecture"], get_variant(variant).modality
        if architecture == "pose_only" and settings["condition_on_initial_pose"]:
            boxes = 4 * get_modality(modality).num_patches
            what = f"pose-only MLP, width {settings['pose_only']['width']}, U_init ({OUTPUTS}) + boxes ({boxes})"
        elif architecture == "pose_only":
            what = f"pose-only MLP, width {settings['pose_only']['width']}, U_init ({OUTPUTS}) only"
        else:
            net = f"ResNet-{settings['resnet']['depth']}" if architecture == "resnet" else "limb encoder"
            what = f"{net}, {get_modality(modality).num_channels} x {size}²"
            what += " + U_init + boxes" if settings["condition_on_initial_pose"] else ""

        def build(settings=settings, modality=modality):
            return build_network(settings, modality, load_weights=False)

        batch = config["updater"]["training"]["batch_size"]
        specs[key] = NetworkSpec(what, ("updater", "model"), build, _updater_inputs(size), batch)
    return specs


# --- measuring a network ---


def _surrogate_loss(outputs) -> torch.Tensor:
    """The mean square of every output tensor, summed (reaches every output head)."""
    if isinstance(outputs, torch.Tensor):
        return outputs.float().square().mean()
    return sum(_surrogate_loss(output) for output in outputs if output is not None)


def _median_cpu_seconds(step: Callable[[], object], steps: int) -> float:
    step()  # warm-up
    seconds = []
    for _ in range(steps):
        start = time.process_time()
        step()
        seconds.append(time.process_time() - start)
    return statistics.median(seconds)


def measure_network(spec: NetworkSpec, steps: int, batch: int, max_step_gflop: float) -> dict:
    """Parameters, state bytes, FLOPs and CPU seconds per sample of one network (module docstring, part 1)."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    network = spec.build()
    parameters = sum(p.numel() for p in network.parameters() if p.requires_grad)
    state_bytes = sum(t.numel() * t.element_size() for t in network.state_dict().values())
    pair = spec.inputs(network, 2, generator)  # batch norm in training mode needs two samples
    network.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        network(*pair)
    forward_flops = counter.get_total_flops() / 2
    network.train()
    with FlopCounterMode(display=False) as counter:
        _surrogate_loss(network(*pair)).backward()
    training_flops = counter.get_total_flops() / 2
    network.zero_grad(set_to_none=True)

    timing_batch = spec.batch_size if spec.batch_size * training_flops <= max_step_gflop * 1e9 else batch
    inputs = spec.inputs(network, timing_batch, generator)
    optimiser = torch.optim.Adam(network.parameters(), lr=1e-5)

    def train_step():
        optimiser.zero_grad(set_to_none=True)
        _surrogate_loss(network(*inputs)).backward()
        optimiser.step()

    train_seconds = _median_cpu_seconds(train_step, steps)
    network.eval()
    with torch.no_grad():
        forward_seconds = _median_cpu_seconds(lambda: network(*inputs), steps)
    return {
        "what": spec.what,
        "parameters": parameters,
        "state_bytes": state_bytes,
        "forward_flops": forward_flops,
        "training_flops": training_flops,
        "timing_batch": timing_batch,
        "cpu_train_s": train_seconds / timing_batch,
        "cpu_forward_s": forward_seconds / timing_batch,
    }


# --- the stages' work ---


def _held_fraction(config: dict) -> float:
    """The updater's validation share of the training frames (whole subjects taken as equally large)."""
    training = config["updater"]["training"]
    subjects = training["validation_subjects"]
    if subjects:
        return len(subjects) / len(config["dataset"]["h36m"]["train_subjects"])
    return training["validation_fraction"]


def largest_fold(config: dict) -> float:
    """The largest fold model's share of the training frames (folds.k round-robin over dataset.h36m's training
    subjects, ``patchpose.folds``; subjects taken as equally large): 4/5 for 5 subjects in 3 folds."""
    folds = assign_folds(config["dataset"]["h36m"]["train_subjects"], config["folds"]["k"])
    trained = [sum(fold != f for fold in folds.values()) for f in range(config["folds"]["k"])]
    return max(trained) / len(folds)


def _fold_row(stage, network, k, n_train, n_test, epochs, held, largest, ram_per_frame, basis, calibrate=False):
    """A k-fold stage: k jobs on (k - 1)/k of the training frames each (less ``held`` for validation), the largest
    on ``largest`` of them; validation every epoch (and ``calibrate``: once more); a prediction job per split."""
    folds = (k - 1) * n_train
    return {"stage": stage, "network": network, "jobs": k, "gpus_per_job": FOLD_JOB_GPUS,
            "train_samples": folds * (1 - held) * epochs, "eval_samples": folds * held * (epochs + calibrate),
            "predict_samples": n_train + n_test, "largest_job_share": largest / (k - 1),
            "largest_predict_samples": max(n_train, n_test), "ram_bytes": largest * n_train * ram_per_frame,
            "streams": None, "basis": basis}  # fmt: skip


def stage_work(config: dict, frames: dict) -> list[dict]:
    """One row per trained network of a stage: training jobs and GPUs per job; samples of training steps, of
    forward passes inside the training jobs (validation, calibration) and in prediction jobs; the largest
    training job's share and in-memory frames; and the basis, in words."""
    n_train, n_test, k, side = frames["train"], frames["test"], frames["k"], frames["frame_size"]
    largest = largest_fold(config)
    fold_text = f"{k} folds x (k-1)/k of train frames (largest {largest:.2f})"
    with_head = config["segmentation"]["network"] == "keypoints2d"
    size = config["keypoints2d"]["model"]["input_size"]
    epochs = config["keypoints2d"]["training"]["epochs"]
    ram = 3 * size * size + (side * side if with_head else 0)  # frames at the input size, labels at the frame's
    rows = [_fold_row("keypoints2d", "keypoints2d", k, n_train, n_test, epochs, 0.0, largest, ram,
                      f"{fold_text} x {epochs} epochs; predict both splits")]  # fmt: skip
    if with_head:
        rows.append({"stage": "segmentation", "network": "keypoints2d", "jobs": 0, "gpus_per_job": 0,
                     "train_samples": 0, "eval_samples": 0, "predict_samples": n_train + n_test,
                     "largest_job_share": 0.0, "largest_predict_samples": max(n_train, n_test), "ram_bytes": 0,
                     "streams": None,
                     "basis": "keypoints2d's part head (trained there); segment both splits"})  # fmt: skip
    else:
        seg = config["segmentation"]
        epochs, size = seg["training"]["epochs"], seg["model"]["input_size"]
        rows.append(_fold_row("segmentation", "segmentation", k, n_train, n_test, epochs, 0.0, largest,
                              3 * size * size + side * side,
                              f"{fold_text} x {epochs} epochs; segment both splits"))  # fmt: skip
    for name, block in config["baselines"].items():
        if block["kind"] not in ("lifting", "integral3d"):
            continue
        held, epochs = block["training"]["validation_fraction"], block["training"]["max_epochs"]
        image = block["kind"] == "integral3d"  # its scale calibration predicts the validation frames once more
        rows.append(_fold_row(
            f"baselines/{name}", f"baseline {name}", k, n_train, n_test, epochs, held, largest,
            3 * config["keypoints2d"]["model"]["input_size"] ** 2 if image else 0,
            f"{fold_text} x {1 - held:g} x <= {epochs} epochs; validation{' + calibration' if image else ''}; "
            "predict both splits", calibrate=image))  # fmt: skip
    plan = updater_plan(config)
    training = config["updater"]["training"]
    held, epochs, processes = _held_fraction(config), training["max_epochs"], training["processes"]
    for baseline, variant in plan["refined"]:
        trained = (baseline, variant) in plan["trained"]
        modality = _image_modality(config, variant)
        rows.append({
            "stage": f"updater {baseline}/{variant}", "network": updater_key(config, variant),
            "jobs": int(trained), "gpus_per_job": processes if trained else 0,
            "train_samples": n_train * (1 - held) * epochs if trained else 0,
            # validation every epoch and the calibration's predictions once (made whatever training.calibration)
            "eval_samples": n_train * held * (epochs + 1) if trained else 0,
            "predict_samples": n_test, "largest_job_share": 1.0, "largest_predict_samples": n_test, "ram_bytes": 0,
            "streams": None if modality is None else get_modality(modality).kind,
            "basis": (f"{1 - held:g} of train frames x <= {epochs} epochs on {processes} GPU(s) (DDP); validation + "
                      "calibration; refine test") if trained
            else f"refine test with {plan['owner'][baseline]}'s {variant} updater",
        })  # fmt: skip
    return rows


def cost_rows(work: list[dict], networks: dict, tflops: float, basis: dict) -> list[dict]:
    """``work`` with FLOPs, GPU-hours at ``tflops`` sustained, CPU core-hours, the wall hours of the stage with its
    jobs side by side on their own GPUs (the largest training job, then the largest prediction job), and for the
    updaters the bytes streamed from the patch store (``basis``: ``measure_disk``) and the read rate they need."""
    rate = tflops * 1e12
    rows = []
    for row in work:
        net = networks[row["network"]]
        training = row["train_samples"] * net["training_flops"] + row["eval_samples"] * net["forward_flops"]
        flops = training + row["predict_samples"] * net["forward_flops"]
        cpu = (row["train_samples"] * net["cpu_train_s"]
               + (row["eval_samples"] + row["predict_samples"]) * net["cpu_forward_s"])  # fmt: skip
        job_seconds = training * row["largest_job_share"] / max(1, row["gpus_per_job"]) / rate
        wall = job_seconds + row["largest_predict_samples"] * net["forward_flops"] / rate
        out = {**row, "flops": flops, "gpu_hours": flops / rate / 3600, "cpu_core_hours": cpu / 3600,
               "wall_hours_fanned_out": wall / 3600, "read_bytes": 0.0, "read_bytes_per_s": 0.0}  # fmt: skip
        if row["streams"] is not None:
            per_frame = basis["patches" if row["streams"] == "limbs" else "uncropped"]["bytes_per_frame"]
            samples = row["train_samples"] + row["eval_samples"] + row["predict_samples"]
            out["read_bytes"] = samples * per_frame
            if job_seconds:
                out["read_bytes_per_s"] = (row["train_samples"] + row["eval_samples"]) * per_frame / job_seconds
        rows.append(out)
    return rows


def critical_path(rows: list[dict]) -> dict:
    """Wall hours of the GPU stages one after another, each stage's jobs side by side on their own GPUs:
    keypoints2d, then the baselines and the segmentation (side by side), then the updaters (side by side)."""

    def longest(prefix: str) -> float:
        return max((row["wall_hours_fanned_out"] for row in rows if row["stage"].startswith(prefix)), default=0.0)

    chain = {
        "keypoints2d": longest("keypoints2d"),
        "baselines | segmentation": max(longest("baselines/"), longest("segmentation")),
        "updaters": longest("updater "),
    }
    return {**chain, "total": sum(chain.values())}


# --- disk ---


def _bytes_under(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def _require(path: Path) -> Path:
    if not path.exists():
        raise SystemExit(f"{path}: missing; run the pipeline's default config first (or pass --results)")
    return path


def measure_store(paths: list[Path], targets: dict[str, int]) -> dict:
    """Bytes per frame of stores like ``paths`` at other sizes: ``targets`` {image array: raw bytes per frame
    there}. Each image array's measured disk/raw ratio x its target raw bytes, plus every other array's measured
    bytes per frame (the group's own metadata included)."""
    disk, raw, frames = dict.fromkeys(targets, 0), dict.fromkeys(targets, 0), 0
    other = 0
    with warnings.catch_warnings():  # Snakemake's .snakemake_timestamp beside the arrays
        warnings.filterwarnings("ignore", message="Object at .* is not recognized")
        for path in paths:
            group = zarr.open_group(path, mode="r", zarr_format=3)
            arrays = dict(group.arrays())
            missing = sorted(set(targets) - set(arrays))
            if missing:
                raise SystemExit(f"{path}: has no array {missing[0]!r}")
            frames += group.attrs["num_frames"]
            other += _bytes_under(path) - sum(_bytes_under(path / name) for name in targets)
            for name in targets:
                array = arrays[name]
                disk[name] += _bytes_under(path / name)
                raw[name] += int(np.prod(array.shape)) * array.dtype.itemsize
    ratios = {name: disk[name] / raw[name] for name in targets}
    per_frame = sum(ratios[name] * targets[name] for name in targets) + other / frames
    return {
        "measured_on": [str(path) for path in paths],
        "measured_frames": frames,
        "ratio": ratios,
        "other_bytes_per_frame": other / frames,
        "raw_bytes_per_frame": sum(targets.values()) + other / frames,
        "bytes_per_frame": per_frame,
    }


def _npz_bytes_per_frame(paths: list[Path], frames: dict[str, int]) -> dict:
    total = sum(path.stat().st_size for path in paths)
    count = sum(frames[path.name.split("_", 1)[0]] for path in paths)
    return {"measured_on": [str(path) for path in paths], "measured_frames": count, "bytes_per_frame": total / count}


def measure_disk(results: Path, config: dict, side: int) -> dict:
    """Bytes per frame at the Human3.6M sizes, measured on the stores and files of the pipeline run ``results``
    (each opened with its reader first, so a broken one is named)."""
    cache, uncropped = config["patches"]["cache_size"], config["patches"]["uncropped_size"]
    splits = ("train", "test")
    stores = {split: open_dataset(_require(results / "dataset" / f"{split}.zarr")) for split in splits}
    measured_frames = {split: store.num_frames for split, store in stores.items()}
    for split in splits:
        open_segmentation(_require(results / "segmentation" / f"{split}.zarr"), stores[split])
    predicted = _require(results / "patches" / "predicted" / "train.zarr")
    uncropped_store = _require(results / "patches" / "uncropped" / "train.zarr")
    for path in (predicted, uncropped_store):
        open_patch_store(path, stores["train"])
    joints_2d = [_require(results / "keypoints2d" / f"{split}_joints_2d.npz") for split in splits]
    poses_3d = sorted((results / "baselines").glob("*/*_poses_3d.npz"))
    if not poses_3d:
        raise SystemExit(f"{results / 'baselines'}: no <name>/<split>_poses_3d.npz; run the pipeline first")
    return {
        "dataset": measure_store([stores[s].path for s in splits],
                                 {"frames": side * side * 3, "part_labels": side * side}),
        "segmentation": measure_store([results / "segmentation" / f"{s}.zarr" for s in splits],
                                      {"encoded": 3 * side * side, "labels": side * side}),
        "patches": measure_store([predicted], {"patches": H36M.num_limbs * PATCH_CHANNELS * cache * cache}),
        "uncropped": measure_store([uncropped_store], {"patches": PATCH_CHANNELS * uncropped * uncropped}),
        "joints_2d": _npz_bytes_per_frame(joints_2d, measured_frames),
        "poses_3d": _npz_bytes_per_frame(poses_3d, measured_frames),
    }  # fmt: skip


def disk_rows(basis: dict, config: dict, frames: dict, networks: dict) -> list[dict]:
    """Per store or set of files of a Human3.6M run with ``config``: files, frames, bytes per frame (``basis``:
    ``measure_disk``) and total; model files and checkpoints from the networks' sizes."""
    side, cache = frames["frame_size"], config["patches"]["cache_size"]
    uncropped = config["patches"]["uncropped_size"]
    splits = {"train": frames["train"], "test": frames["test"]}
    plan = updater_plan(config)
    baselines = [name for name, block in config["baselines"].items() if block["kind"] != "external"]
    rows = []

    def add(what: str, files: int, n: int, measured: str, note: str = "", counted: bool = True) -> None:
        per_frame = basis[measured]["bytes_per_frame"]
        raw = basis[measured].get("raw_bytes_per_frame", per_frame)
        rows.append({"store": what, "files": files, "frames": n, "raw_bytes_per_frame": raw,
                     "bytes_per_frame": per_frame, "bytes": files * n * per_frame, "basis": measured,
                     "note": note, "in_total": counted})  # fmt: skip

    for split, n in splits.items():
        add(f"dataset/{split}.zarr", 1, n, "dataset", f"frames + part labels {side}² (zstd)")
    add("dataset/h36m_sequences/*", 1, sum(splits.values()), "dataset", "per-sequence intermediates, same format")
    for split, n in splits.items():
        add(f"segmentation/{split}.zarr", 1, n, "segmentation", f"encoded + labels {side}² (zstd)")
    for split, n in splits.items():
        codec = config["patches"]["compressor"]
        add(f"patches/predicted/{split}.zarr", 1, n, "patches", f"16 x 6 x {cache}² ({codec})")
    for split, n in splits.items():
        add(f"patches/groundtruth/{split}.zarr", 1, n, "patches", "only when asked for; not in the total", False)
    for split, n in splits.items():
        add(f"patches/uncropped/{split}.zarr", 1, n, "uncropped", f"1 x 6 x {uncropped}²")
    for split, n in splits.items():
        add(f"keypoints2d/{split}_joints_2d.npz", 1, n, "joints_2d")
    for split, n in splits.items():
        add(f"baselines/*/{split}_poses_3d.npz", len(baselines), n, "poses_3d", ", ".join(baselines))
    add("refined/*/*/test_poses_3d.npz", len(plan["refined"]), frames["test"], "poses_3d", "one per updater pair")

    models = []
    for row in stage_work(config, frames):
        if row["jobs"]:
            net = networks[row["network"]]
            checkpoint = net["state_bytes"] + ADAM_MOMENTS * 4 * net["parameters"]
            models.append((row["stage"], row["jobs"], net["state_bytes"], checkpoint))
    for stage, count, state, checkpoint in models:
        rows.append({"store": f"{stage} models + checkpoints", "files": 2 * count, "frames": 0,
                     "raw_bytes_per_frame": 0, "bytes_per_frame": 0, "bytes": count * (state + checkpoint),
                     "basis": "networks", "note": f"{count} x ({state / 1e6:.1f} MB model + {checkpoint / 1e6:.1f} MB "
                     "checkpoint)", "in_total": True})  # fmt: skip
    return rows


# --- fan-out ---


def fan_out(config: dict, rows: list[dict]) -> list[dict]:
    """Which jobs run side by side, per stage (rules/*.smk; patchpose/distributed.py for the DDP ranks)."""
    k = config["folds"]["k"]
    plan = updater_plan(config)
    trained = [row for row in rows if row["stage"].startswith("baselines/")]
    processes = config["updater"]["training"]["processes"]
    own_segmentation = config["segmentation"]["network"] != "keypoints2d"
    return [
        {"stage": "dataset (Human3.6M)", "jobs": "1 per (subject, sequence); 1 merge per split", "gpus_per_job": 0,
         "after": "-"},
        {"stage": "keypoints2d", "jobs": f"{k} fold models side by side; 1 prediction per split",
         "gpus_per_job": FOLD_JOB_GPUS, "after": "dataset"},
        {"stage": "segmentation",
         "jobs": (f"{k} fold models side by side; " if own_segmentation else "no training (keypoints2d's part head); ")
         + "1 prediction per split", "gpus_per_job": FOLD_JOB_GPUS if own_segmentation else 0,
         "after": "dataset" if own_segmentation else "keypoints2d folds"},
        {"stage": "baselines", "jobs": f"{len(trained)} baselines x {k} folds = {len(trained) * k} side by side",
         "gpus_per_job": FOLD_JOB_GPUS,
         "after": "integral3d fold f: keypoints2d fold f; lifting: keypoints2d train predictions"},
        {"stage": "patches", "jobs": "1 per (store, split)", "gpus_per_job": 0, "after": "keypoints2d, segmentation"},
        {"stage": "updater", "jobs": f"{len(plan['trained'])} (baseline, variant) pairs side by side",
         "gpus_per_job": processes, "after": "the pair's baseline, patches; DDP ranks in a job: "
         "updater.training.processes"},
        {"stage": "refine", "jobs": f"{len(plan['refined'])} pairs side by side", "gpus_per_job": 0,
         "after": "the pair's updater"},
    ]  # fmt: skip


# --- printing ---


def table(headers: list[str], rows: list[list[str]], align: str) -> str:
    """Plain text; ``align``: one letter per column, ``l`` left (words) or ``r`` right (numbers)."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells):
        padded = [
            str(c).ljust(w) if a == "l" else str(c).rjust(w) for c, w, a in zip(cells, widths, align, strict=True)
        ]
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), *(line(row) for row in rows)])


def _bytes(value: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.{1 if value < 100 * size else 0}f} {unit}"
    return f"{value:.0f} B"


def _shown(path: str) -> str:
    """``path`` relative to the repository where it lies inside it."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else path


def _count(value: float) -> str:
    return f"{value / 1e6:.2f} M" if value >= 1e6 else f"{value:,.0f}"


def report(result: dict) -> str:
    settings, frames = result["settings"], result["frames"]
    lines = [
        f"settings: {' + '.join(settings['config_files'])}",
        f'Human3.6M frames (README "Patches"): train ~{_count(frames["train_before_subsampling"])} (S1 S5 S6 S7 S8 x '
        f"4 cameras) / train_stride {frames['train_stride']} = {frames['train']:,}; test "
        f"~{_count(frames['test_before_subsampling'])} (S9 S11 x 4 cameras) / test_every {frames['test_every']} = "
        f"{frames['test']:,}; frames {frames['frame_size']}²; folds k = {frames['k']}",
        f"CPU timings: this machine, 1 torch thread, CPU seconds (process_time), median of {settings['steps']} "
        f"step(s) after 1 warm-up; load average {settings['load_before']:.2f} before, {settings['load_after']:.2f} "
        f"after ({settings['cores']} cores, shared)",
        f"GPU throughput: {settings['sustained_tflops']:g} TFLOP/s sustained, an ASSUMPTION, not a measurement "
        "(e.g. an A100 sustaining about a third of its 312 TFLOP/s bf16 peak; training runs bf16 autocast on CUDA)",
        "",
        "1. networks, per sample (FLOPs: FlopCounterMode, convolutions and matrix products, multiply-add = 2)",
    ]
    rows = [[key, net["what"], net["settings_from"], f"{net['parameters'] / 1e6:.2f} M",
             f"{net['forward_flops'] / 1e9:.3f}", f"{net['training_flops'] / 1e9:.3f}", str(net["timing_batch"]),
             f"{net['cpu_train_s'] * 1e3:.2f}", f"{net['cpu_forward_s'] * 1e3:.2f}"]
            for key, net in result["networks"].items()]  # fmt: skip
    lines.append(table(["network", "what", "settings from", "params", "GFLOP fwd", "GFLOP train", "batch",
                        "CPU ms train", "CPU ms fwd"], rows, "lllrrrrrr"))  # fmt: skip
    lines += ["", f"2. stages (samples = frames x epochs; GPU-hours at {settings['sustained_tflops']:g} TFLOP/s "
                  "sustained, assumed; CPU core-hours from the measured CPU ms per sample)"]  # fmt: skip
    rows = []
    for row in result["stages"]:
        data = f"RAM {_bytes(row['ram_bytes'])}" if row["ram_bytes"] else ""
        if row["read_bytes"]:
            data = f"reads {_bytes(row['read_bytes'])}"
            data += f", {_bytes(row['read_bytes_per_s'])}/s" if row["read_bytes_per_s"] else ""
        rows.append([row["stage"], _count(row["train_samples"]), _count(row["eval_samples"] + row["predict_samples"]),
                     f"{row['flops'] / 1e18:.3f}", f"{row['gpu_hours']:.1f}", f"{row['wall_hours_fanned_out']:.2f}",
                     f"{row['cpu_core_hours']:,.0f}", data, row["basis"]])  # fmt: skip
    totals = result["totals"]
    rows.append(["total", "", "", f"{totals['flops'] / 1e18:.3f}", f"{totals['gpu_hours']:.1f}", "",
                 f"{totals['cpu_core_hours']:,.0f}", "", ""])  # fmt: skip
    headers = ["stage", "train samples", "fwd samples", "EFLOP", "GPU-h", "wall h", "CPU core-h", "largest job's data",
               "basis"]  # fmt: skip
    lines.append(table(headers, rows, "lrrrrrrll"))
    lines.append("  wall h: the stage's jobs side by side, each on its own GPU(s): its largest training job, then its "
                 "largest prediction job; largest job's data: the training frames it holds in memory (frames at the "
                 "input size, part labels at the frame size), or what an updater streams from its patch store "
                 "(training, validation, refinement) and the read rate its training needs at the assumed "
                 "speed. GPU-h from FLOPs is a lower bound for the small networks: a step of a few GFLOP is bound by "
                 "kernel launches and data, not by arithmetic")  # fmt: skip
    lines += ["", "3. disk per store (Human3.6M; bytes per frame measured on the stores below, image arrays scaled "
                  "by pixel count)"]  # fmt: skip
    rows = [[row["store"], str(row["files"]), f"{row['frames']:,}" if row["frames"] else "",
             _bytes(row["raw_bytes_per_frame"]) if row["frames"] else "",
             _bytes(row["bytes_per_frame"]) if row["frames"] else "", _bytes(row["bytes"]), row["note"]]
            for row in result["disk"]]  # fmt: skip
    rows.append(["total", "", "", "", "", _bytes(totals["disk_bytes"]), "without patches/groundtruth"])
    lines.append(table(["store", "files", "frames", "raw/frame", "disk/frame", "total", "note"], rows, "lrrrrrl"))
    lines.append("measured on:")
    for name, basis in result["disk_basis"].items():
        ratios = ", ".join(f"{array} {ratio:.3f} of raw" for array, ratio in basis.get("ratio", {}).items())
        extra = f"; other arrays {basis['other_bytes_per_frame']:.0f} B/frame" if "ratio" in basis else ""
        shown = [_shown(path) for path in basis["measured_on"]]
        where = ", ".join(shown[:2]) + (f" and {len(shown) - 2} more" if len(shown) > 2 else "")
        lines.append(f"  {name}: {where} ({basis['measured_frames']:,} frames): "
                     f"{ratios or _bytes(basis['bytes_per_frame']) + '/frame'}{extra}")  # fmt: skip
    lines += ["", "4. fan-out (GPUs per job from rules/*.smk and updater.training.processes)"]
    rows = [[row["stage"], row["jobs"], str(row["gpus_per_job"]), row["after"]] for row in result["fan_out"]]
    lines.append(table(["stage", "jobs", "GPUs/job", "waits for"], rows, "llrl"))
    chain = result["critical_path"]
    lines += ["", "GPU wall hours, stage after stage, each stage's jobs on their own GPUs (equal jobs, linear DDP "
                  "scaling; CPU stages not included): " + " + ".join(f"{name} {hours:.1f}" for name, hours in
                                                                   chain.items() if name != "total")
              + f" = {chain['total']:.1f} h"]  # fmt: skip
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", nargs="*", type=Path, default=[REPO / "config" / "h36m_paper.yaml"],
                        help="files merged over config.yaml in order (default: config/h36m_paper.yaml; none: "
                             "config.yaml alone)")  # fmt: skip
    parser.add_argument(
        "--results",
        type=Path,
        default=REPO / "results" / "synthetic",
        help="results of a pipeline run whose stores are measured (default: results/synthetic)",
    )
    parser.add_argument(
        "--sustained-tflops", type=float, default=100.0, help="assumed sustained GPU throughput, TFLOP/s (default 100)"
    )
    parser.add_argument("--steps", type=int, default=3, help="timed CPU steps per network (default 3)")
    parser.add_argument("--batch", type=int, default=2, help="CPU timing batch of the large networks (default 2)")
    parser.add_argument(
        "--max-step-gflop",
        type=float,
        default=20.0,
        help="time at the stage's batch size when one training step costs at most this (default 20)",
    )
    parser.add_argument("--quick", action="store_true", help="one timed step per network (smoke runs)")
    parser.add_argument("--json", type=Path, help="also write the numbers as JSON here")
    args = parser.parse_args(argv)
    if args.sustained_tflops <= 0 or args.steps < 1 or args.batch < 2 or args.max_step_gflop <= 0:
        parser.error("--sustained-tflops and --max-step-gflop must be > 0, --steps >= 1, --batch >= 2")
    if args.quick:
        args.steps = 1
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    torch.set_num_threads(1)
    config, overlays = load_settings(args.configfile)
    frames = protocol_frames(config)
    try:  # first: a missing or broken store stops the run at once, before any output
        basis = measure_disk(args.results, config, frames["frame_size"])
    except (ValueError, OSError) as error:  # the readers' errors name the store
        raise SystemExit(str(error)) from None
    specs = network_specs(config)
    load_before = os.getloadavg()[0]
    networks = {
        key: {**measure_network(spec, args.steps, args.batch, args.max_step_gflop),
              "settings_from": settings_from(spec.block, overlays)}
        for key, spec in specs.items()
    }  # fmt: skip
    load_after = os.getloadavg()[0]
    stages = cost_rows(stage_work(config, frames), networks, args.sustained_tflops, basis)
    disk = disk_rows(basis, config, frames, networks)
    result = {
        "settings": {
            "config_files": ["config.yaml", *(_shown(str(path)) for path in args.configfile)],
            "sustained_tflops": args.sustained_tflops,
            "sustained_tflops_is": "an assumption, not a measurement",
            "steps": args.steps,
            "cores": os.cpu_count(),
            "load_before": load_before,
            "load_after": load_after,
            "results": str(args.results),
        },
        "frames": frames,
        "networks": networks,
        "stages": stages,
        "totals": {
            "flops": sum(row["flops"] for row in stages),
            "gpu_hours": sum(row["gpu_hours"] for row in stages),
            "cpu_core_hours": sum(row["cpu_core_hours"] for row in stages),
            "disk_bytes": sum(row["bytes"] for row in disk if row["in_total"]),
        },
        "critical_path": critical_path(stages),
        "disk": disk,
        "disk_basis": basis,
        "fan_out": fan_out(config, stages),
    }
    print(report(result))
    print(f"\nrun time {time.perf_counter() - started:.0f} s")
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
