"""The updater's training step with glibc's allocator as it comes beside the settings ``training.train`` applies
(``patchpose.allocator.keep_freed_memory``: freed large blocks stay in the heap instead of being unmapped).

The settings are per process and cannot be undone, so every run is a fresh process (this script with
``--child``): ``glibc`` runs with ``PATCHPOSE_MALLOC=default``, ``kept`` without; they alternate, ``--repeats``
times each. A run builds the default updater network (``benchmarks/updater.py``'s ``Trainer``: the step
``training.train`` takes, ``prepare_batch`` of the uint8 batch, forward, loss, backward, Adam) on ``--threads``
torch threads, reads ``--pool`` batches of ``--batch-size`` from the patch store and times ``--steps`` steps over
them after ``--warmup`` untimed ones. Printed: each run's samples/s and peak resident memory
(``ru_maxrss``), the medians, and the ratio kept / glibc. Timings only; nothing asserts on them. Run:

    .venv/bin/python benchmarks/allocator.py [--store PATH] [--modality rgb_seg] [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODES = {"glibc": {"PATCHPOSE_MALLOC": "default"}, "kept": {}}


def _updater_benchmark():
    spec = importlib.util.spec_from_file_location("updater_benchmark", HERE / "updater.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def child(args) -> None:
    """One run in this process: print {"applied", "samples_per_s", "max_rss_mb"} as JSON."""
    import numpy as np
    import torch

    from patchpose.allocator import keep_freed_memory
    from patchpose.patches.store import open_patch_store
    from patchpose.updater.loader import PatchBatches, check_store, epoch_plan

    bench = _updater_benchmark()
    torch.set_num_threads(args.threads)
    applied = keep_freed_memory()  # as training.train does; a no-op under PATCHPOSE_MALLOC=default
    store = open_patch_store(args.store)
    check_store(store, args.modality)
    settings, _ = bench.model_settings(None)
    trainer = bench.Trainer(settings, args.modality, args.batch_size, torch.device("cpu"))
    source = PatchBatches(store, np.arange(store.num_frames), modality=args.modality, num_workers=0)
    plan = epoch_plan(store.num_frames, args.batch_size, 0, ("benchmarks", "allocator"), 0)
    pool = [source.read(positions).patches for positions in plan[: args.pool]]
    rate = bench.timed(itertools.cycle(pool), trainer.step, args.warmup, args.steps, trainer.sync)
    print(json.dumps({"applied": applied, "samples_per_s": rate,
                      "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, default=Path("results/synthetic/patches/predicted/train.zarr"))
    parser.add_argument("--modality", default="rgb_seg")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=25, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per run")
    parser.add_argument("--pool", type=int, default=8, help="batches read from the store and cycled")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each mode, alternating")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if not (args.store / "patches").is_dir():
        parser.error(f"{args.store}: not a patch store (run the pipeline's patches stage first, or pass --store)")
    forwarded = sys.argv[1:]
    base = {key: value for key, value in os.environ.items() if key != "PATCHPOSE_MALLOC"}
    print(f"store {args.store}, modality {args.modality}, batch {args.batch_size}, {args.threads} torch "
          f"thread(s), {args.steps} timed steps (after {args.warmup}) per run, {args.repeats} runs per mode, "
          "alternating\n")  # fmt: skip
    runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for _ in range(args.repeats):
        for mode, env in MODES.items():
            completed = subprocess.run([sys.executable, __file__, *forwarded, "--child"], env={**base, **env},
                                       capture_output=True, text=True)  # fmt: skip
            if completed.returncode:
                sys.exit(f"{mode} run failed:\n{completed.stderr}")
            runs[mode].append(json.loads(completed.stdout.strip().splitlines()[-1]))
    print(f"{'mode':8s} {'samples/s median':>17s} {'peak RSS MB median':>19s}   runs (samples/s, MB)")
    for mode, results in runs.items():
        rates = [run["samples_per_s"] for run in results]
        rss = [run["max_rss_mb"] for run in results]
        listed = ", ".join(f"{rate:.1f}/{mb:.0f}" for rate, mb in zip(rates, rss, strict=True))
        print(f"{mode:8s} {statistics.median(rates):17.1f} {statistics.median(rss):19.0f}   {listed}")
    if not all(run["applied"] for run in runs["kept"]):
        print("\nthe settings were not applied in the 'kept' runs (not glibc?): the two modes are the same")
    speed = statistics.median(r["samples_per_s"] for r in runs["kept"]) / statistics.median(
        r["samples_per_s"] for r in runs["glibc"])  # fmt: skip
    memory = statistics.median(r["max_rss_mb"] for r in runs["kept"]) / statistics.median(
        r["max_rss_mb"] for r in runs["glibc"])  # fmt: skip
    print(f"\nkept / glibc: {speed:.3f}x the samples/s, {memory:.3f}x the peak resident memory")


if __name__ == "__main__":
    main()
