"""The digitizer's compiled kernels: kept in numba's disk cache where it has a place, compiled in-process where not."""

from __future__ import annotations

import numba
import numba.core.caching
import pytest

from derc.digitize.jit import kernel


def test_kernels_compile_without_a_cache_location(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Cached in a writable place (NUMBA_CACHE_DIR here); compiled in the process where numba finds none."""
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))

    @kernel("int64(int64)")
    def cached(x):
        return x + 1

    assert cached(1) == 2 and type(cached._cache).__name__ != "NullCache"
    assert any(tmp_path.rglob("*.nbi"))
    monkeypatch.setattr(numba.core.caching.CacheImpl, "_locator_classes", [])

    @kernel("int64(int64)")
    def uncached(x):
        return x + 2

    assert uncached(1) == 3 and type(uncached._cache).__name__ == "NullCache"
