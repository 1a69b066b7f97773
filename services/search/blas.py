"""One BLAS thread while a search runs.

Search does small matrix-vector products; OpenBLAS splits even those over every core, and waking the
other threads costs far more than the work: a 5000x384 product takes 10 ms with 2 threads and 0.1 ms
with one on the 2-core reference machine. The limit is process-wide (OpenBLAS has no per-thread
setting), so overlapping searches share it and the last one out restores the previous setting.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy  # noqa: F401  (loads OpenBLAS before the controller looks for it)
from threadpoolctl import ThreadpoolController

_controller = ThreadpoolController()
_lock = threading.Lock()
_active = 0
_previous: Any = None


@contextmanager
def one_blas_thread() -> Iterator[None]:
    global _active, _previous
    with _lock:
        if _active == 0:
            _previous = _controller.limit(limits=1, user_api="blas")
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and _previous is not None:
                _previous.restore_original_limits()
                _previous = None
