"""patchpose.allocator: glibc keeps a freed large block in the heap once ``keep_freed_memory`` ran, maps and
unmaps it otherwise; ``PATCHPOSE_MALLOC=default`` opts out; ``training.train`` applies it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import patchpose.training as training
from patchpose.allocator import OPT_OUT, _glibc

pytestmark = pytest.mark.skipif(not _glibc(), reason="the allocator settings are glibc's")

BLOCK = 64 << 20  # above glibc's largest dynamic mmap threshold (32 MiB)

# In a fresh process: optionally apply the settings, then malloc one block and free it, reading glibc's own
# counters (mallinfo2) while it is held and after it is freed.
PROBE = f"""
import ctypes, json, sys
from patchpose.allocator import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else None
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
block = libc.malloc({BLOCK})
held = libc.mallinfo2()
libc.free(block)
freed = libc.mallinfo2()
print(json.dumps({{"applied": applied, "mapped_while_held": held.hblkhd, "heap_after_free": freed.arena,
                   "free_in_heap_after_free": freed.fordblks}}))
"""


def _probe(mode: str, **env: str) -> dict:
    environment = {key: value for key, value in os.environ.items() if key != OPT_OUT}
    completed = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True,
                               env={**environment, **env})  # fmt: skip
    return json.loads(completed.stdout)


def test_a_freed_large_block_stays_in_the_heap_only_with_the_settings():
    glibc = _probe("glibc")
    assert glibc["mapped_while_held"] >= BLOCK  # glibc's own choice: a mapping of its own ...
    assert glibc["heap_after_free"] < BLOCK  # ... given back on free
    kept = _probe("keep")
    assert kept["applied"] is True
    assert kept["mapped_while_held"] < BLOCK  # from the heap instead ...
    assert kept["free_in_heap_after_free"] >= BLOCK  # ... and still there, free, for the next step


def test_the_environment_variable_leaves_glibc_as_it_is():
    opted_out = _probe("keep", **{OPT_OUT: "default"})
    assert opted_out["applied"] is False
    assert opted_out["mapped_while_held"] >= BLOCK
    assert opted_out["heap_after_free"] < BLOCK


def test_train_applies_the_settings(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(training, "keep_freed_memory", lambda: calls.append(True) or True)
    model = torch.nn.Linear(2, 1)
    data = torch.arange(8, dtype=torch.float32).reshape(4, 2)

    def make_batch(indices, rng, device):
        return data[indices].to(device), data[indices].sum(1, keepdim=True).to(device)

    spec = training.TrainSpec(epochs=1, batch_size=2, learning_rate=1e-3, weight_decay=0.0, seed=0,
                               names=("allocator",))  # fmt: skip
    training.train(model, 4, make_batch, torch.nn.functional.mse_loss, spec, tmp_path / "checkpoint.pt",
                   {"test": "allocator"}, torch.device("cpu"))  # fmt: skip
    assert calls == [True]
    assert np.isfinite(training.read_history(tmp_path / "checkpoint.pt")[0]["train_loss"])
