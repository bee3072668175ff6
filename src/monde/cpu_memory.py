"""Keep freed CPU memory in the process, so that large temporaries are not page-faulted anew.

PyTorch allocates CPU tensors through the C library's ``malloc``. glibc serves every block
above its mmap threshold (which adapts, but never beyond 32 MiB) with a fresh ``mmap`` and
hands it back to the kernel on ``free``. A training step or an evaluation batch makes the
same large temporaries again and again — attention score matrices, batches of windows, the
read-out's feature blocks — so each one is page-faulted and zero-filled on every use. On the
2-core development machine this is most of the time of some element-wise kernels (a bf16
``exp`` over a 50 MB tensor: 27 ms fresh, 8 ms in reused memory) and 30 M page faults in one
ETTh1 evaluation (docs/results.md).

:func:`keep_freed_memory` tells glibc not to use ``mmap`` for allocations and to return
freed memory to the kernel only once more than 1 GiB of it sits at the top of the heap, so
those blocks are reused. The cost: memory a process has freed stays counted as its own
(resident set) until it ends or reuses it — 5–30% more peak memory on the workloads
measured, a few blocks more in a loop that makes one large tensor (glibc's aligned requests
do not fit a freed block of the same size exactly, so it keeps a few before it settles).

The ``monde`` command and :func:`monde.train.train` call it; ``MONDE_KEEP_FREED_MEMORY=0``
turns it off. Standard library only, so the command line can call it before importing torch.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

ENV = "MONDE_KEEP_FREED_MEMORY"
_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_MAX = -4
_TRIM_THRESHOLD = 1 << 30

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Tune glibc's ``malloc`` to keep freed memory for reuse (see the module docstring).

    Idempotent. Does nothing on other C libraries and platforms, or when the environment
    variable ``MONDE_KEEP_FREED_MEMORY`` is ``0``.

    Returns:
        Whether the tuning is in effect in this process.
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success. Raise the trim threshold first: with mmap off and the
    # default 128 KiB threshold, every free at the top of the heap would shrink it again.
    _applied = bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) and mallopt(_M_MMAP_MAX, 0))
    return _applied
