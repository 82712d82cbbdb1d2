"""Threads per job: one training job on N threads beside N one-thread jobs side by side, on the same cores.

The rules that train and predict with torch (and cut patches with OpenCV) declare ``threads: 1``: on the 2-core
default machine Snakemake then runs two of them at once instead of one on two threads. This script measures why,
for the two networks that take most of the default run's CPU time, as ``config.yaml`` (or ``--configfile``)
builds them:

* ``keypoints2d``: the stacked hourglass with its part head (``keypoints2d.model``), batches of
  ``keypoints2d.training.batch_size`` frames at ``input_size`` px;
* ``updater``: the ``rgb_seg`` updater (``updater.model``), batches of ``updater.training.batch_size`` frames of
  the 16 limb patches' 6 channels at ``input_size`` px.

For each network and each repeat, interleaved: (a) one process on ``--jobs`` threads, (b) ``--jobs`` processes on
one thread each, started together (a barrier) and timed over the same number of training steps each (forward, a
squared-output loss, backward, Adam; random inputs, drawn once: speed only). It prints the median training
throughput, frames per second of all the jobs together, and CPU seconds per frame, with the ratio (b) / (a). A
ratio above 1 means N one-thread jobs side by side get more work done than one job using N threads, as the
pipeline's jobs do when enough of them are ready. Timings only; nothing asserts on them. Run it on a quiet
machine (hold the shared CPU lock):

    flock /tmp/patchpose-cpu.lock .venv/bin/python benchmarks/threads.py [--jobs 2] [--steps 60] [--repeats 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from pathlib import Path

import torch

from patchpose.config import load_config
from patchpose.keypoints2d.settings import fold_settings
from patchpose.keypoints2d.stage import build_model
from patchpose.updater.modalities import num_channels
from patchpose.updater.network import OUTPUTS, build_network
from patchpose.updater.variants import variant_settings

NETWORKS = ("keypoints2d", "updater")


def _tensors(value):
    """Every tensor in a network's output (a tensor, or nested tuples and lists of them; None skipped)."""
    if torch.is_tensor(value):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors(item)


def build(network: str, config: dict):
    """The network of ``config`` and one batch of random inputs for it: (model, inputs tuple, batch size)."""
    generator = torch.Generator().manual_seed(0)
    if network == "keypoints2d":
        settings = fold_settings(config)
        size, batch = settings["model"]["input_size"], settings["training"]["batch_size"]
        return build_model(settings["model"]), (torch.rand(batch, 3, size, size, generator=generator),), batch
    updater = config["updater"]
    size, batch = updater["model"]["input_size"], updater["training"]["batch_size"]
    model = build_network(variant_settings(updater["model"], "rgb_seg"), "rgb_seg", load_weights=False)
    images = torch.rand(batch, num_channels("rgb_seg"), size, size, generator=generator)
    return model, (images, torch.randn(batch, OUTPUTS, generator=generator)), batch


def _job(network: str, configfile: str, threads: int, warmup: int, steps: int, barrier, results) -> None:
    """One job: ``warmup`` untimed steps, wait for the others, then ``steps`` timed ones; put (frames, wall, CPU)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, inputs, batch = build(network, load_config(configfile))
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step():
        loss = sum(output.float().square().mean() for output in _tensors(model(*inputs)))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    barrier.wait()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    results.put((steps * batch, time.perf_counter() - wall, time.process_time() - cpu))


def measure(network: str, configfile: str, processes: int, threads: int, warmup: int, steps: int) -> tuple:
    """``processes`` jobs of ``threads`` threads each, side by side: (frames/s of all together, CPU s per frame)."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    jobs = [context.Process(target=_job, args=(network, configfile, threads, warmup, steps, barrier, results))
            for _ in range(processes)]  # fmt: skip
    for job in jobs:
        job.start()
    done = [results.get() for _ in jobs]
    for job in jobs:
        job.join()
        if job.exitcode != 0:
            raise SystemExit(f"a {network} job failed (exit code {job.exitcode})")
    frames = sum(item[0] for item in done)
    return sum(item[0] / item[1] for item in done), sum(item[2] for item in done) / frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", type=Path, default=Path("config.yaml"), help="the config whose networks run")
    parser.add_argument("--jobs", type=int, default=2, help="threads of the one job = one-thread jobs side by side")
    parser.add_argument("--steps", type=int, default=60, help="timed training steps per job and run")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before each run")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each arrangement, interleaved; medians")
    parser.add_argument("--networks", default=",".join(NETWORKS), help=f"comma-separated, of {NETWORKS}")
    args = parser.parse_args()
    networks = args.networks.split(",")
    unknown = sorted(set(networks) - set(NETWORKS))
    if unknown or args.jobs < 1 or args.steps < 1 or args.warmup < 0 or args.repeats < 1:
        parser.error(f"networks must be of {NETWORKS} (unknown: {unknown}); --jobs, --steps, --repeats >= 1")
    configfile = str(args.configfile)
    load_config(configfile)  # a wrong config fails here, naming the file, before any process starts
    print(f"{args.jobs} jobs x 1 thread vs 1 job x {args.jobs} threads; {args.steps} steps per job, medians of "
          f"{args.repeats}; {multiprocessing.cpu_count()} CPUs")  # fmt: skip
    print(f"{'network':<12} {'arrangement':<22} {'frames/s':>9} {'CPU ms/frame':>13}")
    for network in networks:
        runs = {"one": [], "side": []}
        for _ in range(args.repeats):
            runs["one"].append(measure(network, configfile, 1, args.jobs, args.warmup, args.steps))
            runs["side"].append(measure(network, configfile, args.jobs, 1, args.warmup, args.steps))
        medians = {key: [statistics.median(run[i] for run in value) for i in (0, 1)] for key, value in runs.items()}
        labels = {"one": f"1 job x {args.jobs} threads", "side": f"{args.jobs} jobs x 1 thread"}
        for key in ("one", "side"):
            rate, cpu = medians[key]
            print(f"{network:<12} {labels[key]:<22} {rate:>9.1f} {1000 * cpu:>13.2f}")
        print(f"{network:<12} {'side by side / one':<22} {medians['side'][0] / medians['one'][0]:>8.2f}x")


if __name__ == "__main__":
    main()
