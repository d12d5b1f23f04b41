"""The digitizer's compiled kernels: numba, compiled for their signatures when their module is imported, and kept
in numba's on-disk cache so that later processes load them instead of compiling again.

Compiling all of them takes 30-35 s of a first import on an idle 2-core AVX2 host (2026-12-08, after the tenth
session's kernels; ~9 s on the AVX-512 hosts before them); loading them from the cache a fraction of a second
(``import derc.digitize`` 1.6-1.7 s in all beyond numpy, numba and scipy on that host). The `Dockerfile` fills the
cache when the image is built. The cache sits in ``__pycache__`` beside the sources, or in numba's per-user cache
directory where the package is read-only (``NUMBA_CACHE_DIR`` moves it); numba keys it on the source file and the
CPU, so an edited module or another machine compiles afresh. Where no cache location is writable at all, the
kernels are compiled in each process, as before there was a cache.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numba
import numpy as np

F = TypeVar("F", bound=Callable)


def kernel(signature: str | list[str]) -> Callable[[F], F]:
    """``numba.njit(signature, nogil=True)``, cached on disk where numba finds a writable place for it."""

    def compile_it(function: F) -> F:
        try:
            return numba.njit(signature, nogil=True, cache=True)(function)
        except RuntimeError as error:  # "cannot cache function ...: no locator available"
            if "cannot cache" not in str(error):
                raise
            return numba.njit(signature, nogil=True, cache=False)(function)

    return compile_it


@kernel("float64(float64[::1], int64)")
def numpy_sum(values: np.ndarray, length: int) -> float:  # pragma: no cover
    """numpy's float64 ``sum`` of a contiguous row of ``length`` values, ``values`` padded with zeros to it: 0 plus
    the pairwise sum numpy's reduction uses (8 partial sums from 8 values on), so a kernel's sums match numpy's to
    the bit."""
    n = values.size
    if length < 8:
        res = 0.0
        for i in range(n):
            res += values[i]
        return 0.0 + res
    r = np.zeros(8)
    for i in range(8):
        r[i] = values[i] if i < n else 0.0
    i = 8
    while i < length - (length % 8):
        for j in range(8):
            r[j] += values[i + j] if i + j < n else 0.0
        i += 8
    res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    while i < length:
        res += values[i] if i < n else 0.0
        i += 1
    return 0.0 + res
