"""Peak memory of a process tree: Snakemake and every job process it starts.

``ProcessTreeMonitor`` sums the resident sets of a process and all its descendants, read from ``/proc``
every ``interval`` s in a thread, and keeps the peak. Pages shared between processes (libraries, forked
copies) count once per process, so the sum overestimates what the machine needed, and a peak shorter than
the interval can be missed. ``largest_child_rss_mb`` is the kernel's exact maximum
(``getrusage(RUSAGE_CHILDREN).ru_maxrss``), but of the largest single descendant only. Linux only.
"""

from __future__ import annotations

import os
import resource
import threading

__all__ = ["tree_rss_bytes", "ProcessTreeMonitor", "largest_child_rss_mb"]


def _children_by_parent() -> dict[int, list[int]]:
    """{parent pid: child pids} of every process /proc shows."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="utf-8", errors="replace") as handle:
                stat = handle.read()
        except OSError:  # the process ended meanwhile
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])  # fields after the command name: state, ppid
        children.setdefault(parent, []).append(int(entry.name))
    return children


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def tree_rss_bytes(root: int) -> tuple[int, int]:
    """(summed resident bytes, processes) of ``root`` and all its descendants, now."""
    children = _children_by_parent()
    total, count, stack = 0, 0, [root]
    while stack:
        pid = stack.pop()
        total += _rss_bytes(pid)
        count += 1
        stack.extend(children.get(pid, ()))
    return total, count


class ProcessTreeMonitor:
    """Samples the summed RSS of a process and its descendants every ``interval`` s in a thread; a context
    manager. ``peak_mb`` and ``peak_processes`` (the process count at that peak) after ``stop()``."""

    def __init__(self, pid: int, interval: float = 0.5):
        self.pid, self.interval = pid, interval
        self.peak_bytes, self.peak_processes, self.samples = 0, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-monitor-{pid}", daemon=True)

    def _run(self) -> None:
        while True:
            total, count = tree_rss_bytes(self.pid)
            self.samples += 1
            if total > self.peak_bytes:
                self.peak_bytes, self.peak_processes = total, count
            if self._stop.wait(self.interval):
                return

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / 2**20

    def start(self) -> ProcessTreeMonitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> ProcessTreeMonitor:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def largest_child_rss_mb() -> float:
    """The largest resident set (MB) of any waited-for descendant of this process, over its lifetime."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux: KiB
