"""The updater's training speed: the default network fed by the streaming patch loader beside the same network
fed batches already in memory (goal: streamed >= 0.95 x in memory).

On one patch store (default: the pipeline's synthetic training split, predicted limb patches), for the default
updater (``config.yaml``'s ``updater.model``, as the ``rgb_seg`` updater trains it; ``--model`` JSON
overrides keys) and ``--modality``:

0. the network: learnable parameters and FLOPs per sample (forward; forward + backward) at its input size,
   counted by ``patchpose.updater.network.complexity``;
1. in memory: training steps as ``training.train`` takes them (``prepare_batch`` of the uint8 batch on the
   device, forward, MSE loss, backward, Adam step; CUDA: autocast bf16, or fp16 + GradScaler, the network
   channels_last) on ``--pool`` batches read from the store before the clock starts, cycled;
2. streamed: the same steps, each batch from ``PatchBatches.iterate`` along an epoch plan (``--workers``
   loader processes; pinned memory on CUDA), so reading overlaps training;
3. the loader alone: the same iteration without training (what it can serve at most);
4. kept (CPU only): the same steps along the same plan with the inputs ``ShrunkPatches`` keeps on the CPU
   (``updater.training.input_cache_mb``), all of the plan's frames kept before the clock starts: what every
   epoch after the first costs; only the recolouring's, normalisation's and network's work is left per step.

Initial orientations, boxes and targets are random (speed only: they cost the same as real ones). Each run
times ``--steps`` steps after ``--warmup`` untimed ones (loader processes start during those); runs 1-3 are
repeated ``--repeats`` times, interleaved, each on a fresh epoch plan, and their medians printed with the
ratios streamed / in memory and kept / streamed. Timings only; nothing asserts on them. Run:

    .venv/bin/python benchmarks/updater.py [--store PATH] [--modality rgb_seg] [--workers 1] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from patchpose.allocator import keep_freed_memory
from patchpose.patches.store import open_patch_store
from patchpose.training import autocast_settings, select_device
from patchpose.updater.inputs import finish_batch, prepare_batch
from patchpose.updater.loader import PatchBatches, ShrunkPatches, check_store, epoch_plan
from patchpose.updater.modalities import MODALITIES
from patchpose.updater.network import OUTPUTS, build_network, complexity
from patchpose.updater.variants import variant_settings

REPO = Path(__file__).resolve().parents[1]


def model_settings(override: str | None) -> tuple[dict, str]:
    """config.yaml's ``updater.model`` as the ``rgb_seg`` updater trains it (``variant_settings``) with
    ``override``'s keys, and where it came from."""
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    settings = copy.deepcopy(variant_settings(config["updater"]["model"], "rgb_seg"))
    for key, value in json.loads(override or "{}").items():
        settings[key] = {**settings[key], **value} if isinstance(value, dict) else value
    return settings, "config.yaml" + (" + --model" if override else "")


class Trainer:
    """One network, optimiser and the step ``training.train`` takes."""

    def __init__(self, settings: dict, modality: str, batch_size: int, device: torch.device):
        keep_freed_memory()  # as training.train does
        torch.manual_seed(0)
        self.network = build_network(settings, modality, load_weights=False).to(device)
        self.amp, self.dtype, scaled = autocast_settings(device)  # as training.train does
        if self.amp:
            self.network.to(memory_format=torch.channels_last)
        self.optimiser = torch.optim.Adam(self.network.parameters(), lr=1e-5)
        self.scaler = torch.amp.GradScaler("cuda", enabled=scaled)
        self.modality, self.size, self.device = modality, settings["input_size"], device
        generator = torch.Generator().manual_seed(0)
        self.orientations = torch.randn(batch_size, OUTPUTS, generator=generator).to(device)
        self.boxes = torch.rand(batch_size, self.network.num_patches, 4, generator=generator).to(device)
        self.targets = torch.randn(batch_size, OUTPUTS, generator=generator).to(device) * 0.1

    def step(self, patches: torch.Tensor) -> None:
        self.train(prepare_batch(patches, self.modality, self.size, self.device))

    def step_kept(self, images: torch.Tensor) -> None:
        """The step on ``ShrunkPatches``' (B, C, S', S') float32 inputs."""
        self.train(finish_batch(images, self.modality, self.size, self.device))

    def train(self, images: torch.Tensor) -> None:
        n = len(images)
        with torch.autocast(device_type=self.device.type, dtype=self.dtype, enabled=self.amp):
            prediction = self.network(images, self.orientations[:n], self.boxes[:n])
            loss = torch.nn.functional.mse_loss(prediction.float(), self.targets[:n])
        self.optimiser.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimiser)
        self.scaler.update()

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def timed(batches, step, warmup: int, steps: int, sync) -> float:
    """Samples/s of ``step`` over ``steps`` batches taken after ``warmup`` untimed ones."""
    batches = iter(batches)
    for patches in itertools.islice(batches, warmup):
        step(patches)
    sync()
    began, samples = time.perf_counter(), 0
    for patches in itertools.islice(batches, steps):
        step(patches)
        samples += len(patches)
    sync()
    return samples / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, default=Path("results/synthetic/patches/predicted/train.zarr"))
    parser.add_argument("--modality", choices=tuple(MODALITIES), default="rgb_seg")
    parser.add_argument("--model", help='JSON overriding updater.model keys, e.g. \'{"architecture": "resnet"}\'')
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pool", type=int, default=8, help="batches held in memory for the in-memory runs")
    parser.add_argument("--workers", type=int, default=1, help="loader processes (0: read in this process)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the training process")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = select_device(args.device)
    settings, origin = model_settings(args.model)
    store = open_patch_store(args.store)
    check_store(store, args.modality)
    trainer = Trainer(settings, args.modality, args.batch_size, device)
    cost = complexity(trainer.network, settings["input_size"])
    print(f"store {store.path}: {store.num_frames} frames of {store.num_patches} x 6 x {store.patch_size}² uint8; "
          f"modality {args.modality}")  # fmt: skip
    print(f"network ({origin}): {settings['architecture']}"
          f"{' conditioned on the initial pose' if settings['condition_on_initial_pose'] else ''} at "
          f"{settings['input_size']} px: {cost['parameters']:,} parameters, {cost['forward_flops'] / 1e9:.3f} "
          f"GFLOPs/sample forward, {cost['training_flops'] / 1e9:.3f} forward + backward")  # fmt: skip
    print(f"device {device}, {args.threads} torch thread(s), batch {args.batch_size}, {args.steps} timed steps "
          f"(after {args.warmup}) x {args.repeats} repeats, loader: {args.workers} process(es)\n")  # fmt: skip
    source = PatchBatches(store, np.arange(store.num_frames), modality=args.modality, num_workers=args.workers,
                          pin_memory=device.type == "cuda")  # fmt: skip
    per_run = args.warmup + args.steps

    def plan(*names):  # one epoch after another of the store's frames, in the order training.train draws them
        epochs = (epoch_plan(store.num_frames, args.batch_size, 0, ("benchmarks", "updater", *names), epoch)
                  for epoch in itertools.count())  # fmt: skip
        return itertools.islice(itertools.chain.from_iterable(epochs), per_run)

    pool = [source.read(positions).patches for positions in itertools.islice(plan("pool"), args.pool)]
    rates = {"in memory": [], "streamed": [], "loader alone": []}
    kept = ShrunkPatches(source, args.modality, settings["input_size"]) if device.type == "cpu" else None
    if kept is not None:
        rates["kept"] = []
    for repeat in range(args.repeats):
        rates["in memory"].append(timed(itertools.cycle(pool), trainer.step, args.warmup, args.steps, trainer.sync))
        streamed = (batch.patches for batch in source.iterate(plan("run", repeat)))
        rates["streamed"].append(timed(streamed, trainer.step, args.warmup, args.steps, trainer.sync))
        alone = (batch.patches for batch in source.iterate(plan("run", repeat)))
        rates["loader alone"].append(timed(alone, lambda patches: None, args.warmup, args.steps, lambda: None))
        if kept is not None:
            positions = list(plan("run", repeat))
            for each in positions:  # kept before the clock starts: an epoch after the first
                kept.batch(each)
            served = (kept.batch(each) for each in positions)
            rates["kept"].append(timed(served, trainer.step_kept, args.warmup, args.steps, trainer.sync))
    print(f"{'samples/s':32s} {'median':>8s}   runs")
    for name, values in rates.items():
        print(f"{name:32s} {statistics.median(values):8.1f}   {', '.join(f'{v:.1f}' for v in values)}")
    ratio = statistics.median(rates["streamed"]) / statistics.median(rates["in memory"])
    print(f"\nstreamed / in memory: {ratio:.3f}x (goal >= 0.95x)")
    if kept is not None:
        print(f"kept / streamed: {statistics.median(rates['kept']) / statistics.median(rates['streamed']):.3f}x")


if __name__ == "__main__":
    main()
