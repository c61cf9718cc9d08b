"""Child processes that cannot outlive the harness: the embedded Triton server and the cell workers.

`die_with_parent` is a `preexec_fn`: between fork and exec the child asks the kernel (PR_SET_PDEATHSIG) for
SIGTERM when its parent dies, so even a SIGKILLed harness leaves no orphan behind.
"""

from __future__ import annotations

import ctypes
import signal

_PR_SET_PDEATHSIG = 1

try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved now: the forked child must not dlopen
except (OSError, AttributeError):
    _prctl = None


def die_with_parent() -> None:
    """Runs in the child between fork and exec: one already-resolved libc call, nothing that takes locks."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
