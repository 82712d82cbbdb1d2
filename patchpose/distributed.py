"""Data-parallel training inside one job: the package starts its own worker processes.

A Snakemake ``script:`` runs in one Python process, so it cannot be started by ``torchrun``; instead
``launch(function, processes, *args)`` starts ``processes`` worker processes (``torch.multiprocessing``,
spawned), joins them into one ``torch.distributed`` process group through a rendezvous file in a fresh
temporary directory (no network port to choose or collide on), and runs ``function(ranks, *args)`` in each.
With one process it simply calls ``function(SINGLE, *args)`` in the calling process, so a one-process run is
exactly the run it has always been.

Backend: NCCL when every rank has a GPU of its own (rank r uses ``cuda:r``), else gloo on the CPU (what the tests
use). ``patchpose.training.train`` does the rest: each rank takes its share of every global batch, gradients
are averaged (DistributedDataParallel), losses summed over ranks, and only rank 0 writes checkpoints and model
files.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

__all__ = ["Ranks", "SINGLE", "launch", "rank_device", "share", "all_reduce_sums", "all_gather", "barrier"]

log = logging.getLogger("patchpose.distributed")


@dataclass(frozen=True)
class Ranks:
    """This process's rank and the number of processes training together."""

    rank: int
    world: int

    def __post_init__(self):
        if self.world < 1 or not 0 <= self.rank < self.world:
            raise ValueError(f"rank {self.rank} of {self.world} processes is not a rank")

    @property
    def writer(self) -> bool:
        """Rank 0 writes checkpoints, model files and curves."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.world > 1


SINGLE = Ranks(0, 1)


def share(indices: np.ndarray, ranks: Ranks) -> np.ndarray:
    """This rank's share of a global batch: every ``world``-th example from position ``rank`` (shares differ
    in size by at most one)."""
    return np.asarray(indices)[ranks.rank :: ranks.world]


def rank_device(ranks: Ranks) -> torch.device:
    """``cuda:<rank>`` when each rank has a GPU, else the CPU."""
    if torch.cuda.is_available() and torch.cuda.device_count() >= ranks.world:
        return torch.device("cuda", ranks.rank)
    return torch.device("cpu")


def all_reduce_sums(values: list[float], ranks: Ranks) -> list[float]:
    """The sums over ranks of ``values`` (float64); the values themselves with one process."""
    if not ranks.parallel:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.to(rank_device(ranks))
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().tolist()


def all_gather(value: Any, ranks: Ranks) -> list[Any]:
    """Every rank's ``value`` (picklable), in rank order; ``[value]`` with one process."""
    if not ranks.parallel:
        return [value]
    gathered: list[Any] = [None] * ranks.world
    dist.all_gather_object(gathered, value)
    return gathered


def barrier(ranks: Ranks) -> None:
    if ranks.parallel:
        dist.barrier()


def _worker(rank: int, function: Callable, world: int, rendezvous: str, args: tuple) -> None:
    ranks = Ranks(rank, world)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s rank {rank} %(name)s %(levelname)s %(message)s")
    device = rank_device(ranks)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    try:
        function(ranks, *args)
    finally:
        dist.destroy_process_group()


def launch(function: Callable[..., Any], processes: int, *args: Any) -> Any:
    """Run ``function(ranks, *args)`` in ``processes`` processes joined into one process group (spawned: the
    function and args must be picklable, i.e. defined at module level); returns its result with one process,
    None otherwise (the workers' results stay in their files). An exception in a worker is raised here."""
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    if processes == 1:
        return function(SINGLE, *args)
    with tempfile.TemporaryDirectory(prefix="patchpose-ddp-") as directory:
        rendezvous = str(Path(directory) / "rendezvous")
        log.info("starting %d training processes", processes)
        torch.multiprocessing.start_processes(
            _worker, args=(function, processes, rendezvous, args), nprocs=processes, join=True, start_method="spawn"
        )
    return None
