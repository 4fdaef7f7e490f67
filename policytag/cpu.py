"""How many CPU cores this process may use: one answer for the scorers' threads, the tagger's worker processes and
Ray's local instance (containers limit CPUs by affinity or by a cgroup quota, and os.cpu_count() sees neither)."""

from __future__ import annotations

import os
from pathlib import Path


def available_cores() -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup (v2) CPU quota when there is one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return cores
