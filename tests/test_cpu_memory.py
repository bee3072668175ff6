"""``monde.cpu_memory``: freed CPU memory is kept for reuse instead of page-faulted anew."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from monde import cpu_memory

# In a fresh process: allocate, fill and free a 64 MiB tensor thirty times; report the minor
# page faults of the last five rounds and the resident memory at the end. glibc settles on
# reusable blocks within ~10 rounds (its 64-byte-aligned requests do not fit the first freed
# block exactly, so a few more are made first). Transparent huge pages are off for the
# process, so that faults count 4 KiB pages whatever the machine's THP setting (64 MiB =
# 16,384 pages).
PROBE = """
import ctypes, json, resource, sys
ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE
from monde.cpu_memory import keep_freed_memory
applied = keep_freed_memory()
import torch
faults = []
for i in range(30):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = torch.empty(16 * 1024 * 1024, dtype=torch.float32).fill_(1.0)
    float(t[-1])
    del t
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
rss_mb = int(open("/proc/self/statm").read().split()[1]) * 4096 // 2**20
print(json.dumps({"applied": applied, "faults": faults[-5:], "rss_mb": rss_mb}))
"""

linux_glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="the tuning is for glibc's malloc")


def _probe(keep: str) -> dict:
    env = {**os.environ, cpu_memory.ENV: keep}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                         text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@linux_glibc
def test_large_tensors_reuse_freed_memory_instead_of_faulting_it_in_again():
    kept, default = _probe("1"), _probe("0")
    assert kept["applied"] and not default["applied"]
    # Default glibc: every 64 MiB block is a fresh mmap, faulted in page by page.
    assert min(default["faults"]) > 10_000, default
    # Kept: freed blocks are reused; no page is faulted again ...
    assert max(kept["faults"]) < 1_000, kept
    # ... at the price of the blocks kept: a few, not one per round (30 x 64 MiB).
    assert kept["rss_mb"] - default["rss_mb"] < 1024, (kept, default)


def test_off_switch_and_other_c_libraries(monkeypatch):
    monkeypatch.setattr(cpu_memory, "_applied", None)
    monkeypatch.setenv(cpu_memory.ENV, "0")
    assert cpu_memory.keep_freed_memory() is False
    assert cpu_memory.keep_freed_memory() is False  # decided once per process

    monkeypatch.setattr(cpu_memory, "_applied", None)
    monkeypatch.delenv(cpu_memory.ENV)
    monkeypatch.setattr(platform, "libc_ver", lambda: ("musl", "1.2"))
    assert cpu_memory.keep_freed_memory() is False
