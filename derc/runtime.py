"""Device choice, seeding and CPU thread settings shared by training and inference."""

from __future__ import annotations

import atexit
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import numpy as np
import torch

logger = logging.getLogger("derc")

DEVICE_ENV = "DERC_DEVICE"
THREADS_ENV = "DERC_THREADS"
BF16_ENV = "DERC_BF16"

T = TypeVar("T")


def env_switch(name: str) -> bool | None:
    """The environment variable ``name`` as a switch: True for "1", False for "0", None when unset or empty;
    anything else is an error naming the variable."""
    setting = os.environ.get(name, "").strip()
    if not setting:
        return None
    if setting not in {"0", "1"}:
        raise ValueError(f"{name} must be 0 or 1, not {setting!r}")
    return setting == "1"


def pick_device(prefer: str | None = None) -> torch.device:
    """The torch device to use.

    Precedence: ``prefer`` (when given), then the ``DERC_DEVICE`` environment variable, then CUDA when
    available, else the CPU. ``"auto"`` (or an empty value) means "CUDA when available". Asking for CUDA on a
    machine without it is an error rather than a silent fallback.
    """
    choice = (prefer if prefer is not None else os.environ.get(DEVICE_ENV, "")).strip().lower()
    if choice in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(choice)
    except RuntimeError as error:
        raise ValueError(f"unknown device {choice!r} (from {'argument' if prefer else DEVICE_ENV})") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {choice!r} requested but CUDA is not available on this machine")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's global and torch's (CPU and CUDA) random generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the legacy global stream, for code that still uses it
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def worker_init_fn(worker_id: int) -> None:
    """DataLoader worker hook: seed NumPy and ``random`` from the worker's torch seed.

    torch gives each worker ``base_seed + worker_id``, where ``base_seed`` comes from the loader's generator
    (or torch's global one), so per-worker NumPy streams are distinct and reproducible.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)  # noqa: NPY002 - the legacy global stream, for code that still uses it
    random.seed(seed)


def available_cpus() -> int:
    """CPUs this process may run on (affinity-aware where the platform supports it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def _local_processes() -> int:
    return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))


# Automatic DataLoader workers never exceed this (each holds a renderer and its page buffers).
MAX_AUTO_WORKERS = 12


def data_workers(requested: int | None) -> int:
    """DataLoader workers: ``requested`` when given, else the CPUs left to each training process beyond its own.

    Processes sharing the machine (``torchrun``'s ``LOCAL_WORLD_SIZE``) share its CPUs; the automatic choice is
    1 to ``MAX_AUTO_WORKERS``.
    """
    if requested is not None:
        return max(0, int(requested))
    return max(1, min(MAX_AUTO_WORKERS, available_cpus() // _local_processes() - 1))


def memory_available_mb() -> float:
    """Memory the machine can still give (MemAvailable on Linux; free physical pages elsewhere), in MiB."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (AttributeError, OSError, ValueError):  # pragma: no cover - platforms without sysconf
        return 0.0


def cache_budget_mb(requested: float | None) -> float:
    """MiB one training process may hold as cached validation data: ``requested``, else a quarter of the
    machine's available memory shared by the local processes (``torchrun``'s ``LOCAL_WORLD_SIZE``)."""
    if requested is not None:
        return max(0.0, float(requested))
    return memory_available_mb() / 4 / _local_processes()


def configure_threads(num_threads: int | None = None) -> int:
    """Set torch's intra-op CPU threads and return the number chosen.

    ``num_threads`` wins, then ``DERC_THREADS``, else all CPUs available to this process.
    """
    if num_threads is None:
        from_env = os.environ.get(THREADS_ENV, "").strip()
        num_threads = int(from_env) if from_env else available_cpus()
    num_threads = max(1, int(num_threads))
    if torch.get_num_threads() != num_threads:
        torch.set_num_threads(num_threads)
    logger.debug("torch uses %d CPU thread(s)", num_threads)
    return num_threads


def limit_blas_threads(limit: int = 1) -> Any:
    """The OpenBLAS libraries loaded so far (numpy's, scipy's, OpenCV's bundled copies) to ``limit`` threads for the
    rest of the process. torch's own thread pool (:func:`configure_threads`) is separate, and other BLAS libraries
    (MKL, which some torch builds use for their own matmuls) are left alone.

    The package's own linear algebra is tiny (least squares of 2 to 6 unknowns over a page's samples, line fits
    of a few points), where OpenBLAS's second thread only adds hand-offs, and on a loaded CPU waits for a
    descheduled thread: with another process busy on one of the 2 cores, ``run_models`` averaged 96-109 ms a
    record with the default two BLAS threads and 83-84 ms with one (p95 160-172 -> 117-121 ms; 81-85 ms either
    way on an idle machine), the same labels on all 100 records (2026-12-07, AVX-512 machine, `small` with
    stage C). OpenBLAS's default is a thread per core, so a many-core host hands off more.

    Returns threadpoolctl's limiter (``restore_original_limits()`` undoes it).
    """
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(internal_api="openblas").limit(limits=max(1, int(limit)))


def use_bf16(device: torch.device) -> bool:
    """Whether forward passes run under bfloat16 autocast on ``device`` (inference's, and on a CPU training's when
    the config asks for mixed precision, ``Config.amp``; CUDA training uses float16 with a scaler regardless).

    Only when asked, ``DERC_BF16=1``. On CPUs with AMX tiles (:func:`cpu_has_fast_bf16`) it runs the `small`
    model's forward passes ~1.8x faster, but labels move: 30 of the accuracy benchmark's 500 test records and 4 of
    the quick start's 100 changed, macro F 0.866 -> 0.862 and 0.453 -> 0.451, so fp32 stays the default and
    a model gives the same labels on every CPU.
    """
    choice = os.environ.get(BF16_ENV, "").strip().lower()
    if choice in ("1", "true", "yes", "on"):
        return device.type == "cpu" or (device.type == "cuda" and torch.cuda.is_bf16_supported())
    if choice in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(f"{BF16_ENV}={choice!r}: use 1 or 0")


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with AMX tiles, where oneDNN's bfloat16 convolutions beat fp32 by ~1.8x."""
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private; absent in other torch versions
    try:
        return bool(amx()) if amx is not None else False
    except RuntimeError:
        return False


def follow_torch_threads() -> None:
    """Give the calling thread torch's CPU thread count (:func:`configure_threads`) for its own parallel regions.

    torch.set_num_threads sets OpenMP's team size for the thread that calls it; a thread started elsewhere keeps
    OpenMP's default (OMP_NUM_THREADS, else every core), and oneDNN's convolutions, which read that setting, ran on
    it: on 2 cores with torch at one thread, a convolution on a helper thread used both cores (2.1 ms against 3.7 ms
    on the main thread) and, beside a busy main thread, waited on it in every parallel region (7.3 ms; 4.5 ms after
    this call). Threads that run forward passes call this before each piece of work."""
    torch.set_num_threads(torch.get_num_threads())


class HelperThreads:
    """Daemon threads that run work handed off with :meth:`submit`, first come first served, each piece with torch's
    thread count (:func:`follow_torch_threads`). The threads start on first use in each process: one forked after
    they started holds copies that never run, so work queued there would wait forever, and a forked child starts
    threads of its own instead.

    The threads are daemons, so work queued but not started never holds up the end of the process. Work under way
    does: a daemon thread still inside torch's kernels while the process tears torch down aborts it ("terminate
    called without an active exception", exit status 134) where the caller had simply finished. At exit
    (:func:`_finish_helpers_work`) the threads start nothing new, the process waits for the work under way, at
    most ``AT_EXIT_WAIT_S``, and the threads end before the interpreter finalizes."""

    def __init__(self, name: str, workers: int = 1) -> None:
        self.name = name
        self.workers = max(1, int(workers))
        self._queue: queue.SimpleQueue | None = None
        self._threads: list[threading.Thread] = []
        self._pid = 0

    @property
    def started(self) -> bool:
        """Whether this process's threads are running (:meth:`submit` starts them, :meth:`close` ends them)."""
        return self._queue is not None and self._pid == os.getpid()

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        """``fn(*args)`` on one of the threads; cancelling the future before a thread takes it drops the work."""
        if not self.started:
            self._queue, self._pid = queue.SimpleQueue(), os.getpid()
            self._threads = [
                threading.Thread(target=_serve, args=(self._queue,), name=f"{self.name}-{index}", daemon=True)
                for index in range(self.workers)
            ]
            for thread in self._threads:
                thread.start()
            with _in_flight.state:  # closed sets stay listed until their threads have ended: the exit joins them too
                serving = [
                    (work, threads) for work, threads in _in_flight.serving if any(t.is_alive() for t in threads)
                ]
                _in_flight.serving = [*serving, (self._queue, self._threads)]
        future: Future[T] = Future()
        self._queue.put((future, fn, args))
        return future

    def close(self, *, wait: bool = False) -> None:
        """End the threads once they finish the work queued so far (a later :meth:`submit` starts others);
        ``wait``: return only then."""
        if self.started:
            for _ in self._threads:
                self._queue.put(None)
            if wait:
                for thread in self._threads:
                    thread.join()
        self._queue, self._threads = None, []


class _InFlight:
    """The helper threads' work under way in this process (:class:`HelperThreads`), and whether the process is
    ending."""

    def __init__(self) -> None:
        self.state = threading.Condition()
        self.running = 0
        self.ending = False
        self.serving: list[tuple[queue.SimpleQueue, list[threading.Thread]]] = []  # each started set's queue, threads


_in_flight = _InFlight()
AT_EXIT_WAIT_S = 120.0  # at most this long for helpers' work under way at exit (a record's takes well under a second)


def _serve(work: queue.SimpleQueue) -> None:
    while (item := work.get()) is not None:
        future, fn, args = item
        in_flight = _in_flight
        with in_flight.state:
            if in_flight.ending or not future.set_running_or_notify_cancel():
                continue
            in_flight.running += 1
        try:
            follow_torch_threads()
            future.set_result(fn(*args))
        except BaseException as error:  # handed to whoever waits on the future
            future.set_exception(error)
        finally:
            with in_flight.state:
                in_flight.running -= 1
                in_flight.state.notify_all()


@atexit.register
def _finish_helpers_work() -> None:
    """Wait for the helpers' work under way, then end the threads: each drops the work queued behind it and
    returns, so nothing of theirs is freed once the interpreter finalizes.

    Ending them matters as much as the wait: a thread that merely went back to its queue still held its last
    piece of work (the future and its result) until the next item replaced it, and freeing a tensor releases the
    interpreter's lock; a daemon thread that asks for the lock back while the interpreter finalizes is ended by
    ``pthread_exit``, whose unwinding through torch's C++ frames aborts the process ("terminate called without
    an active exception", exit status 134, in 2 of 30 runs of the test's script before the join)."""
    deadline = time.monotonic() + AT_EXIT_WAIT_S
    with _in_flight.state:
        _in_flight.ending = True
        _in_flight.state.wait_for(lambda: _in_flight.running == 0, timeout=AT_EXIT_WAIT_S)
        serving, _in_flight.serving = _in_flight.serving, []
    for work, threads in serving:
        for _ in threads:
            work.put(None)
    for _, threads in serving:
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))


def _forget_parents_helpers() -> None:
    global _in_flight
    _in_flight = _InFlight()  # a forked child: the parent's helper threads (and their lock) do not run here


os.register_at_fork(after_in_child=_forget_parents_helpers)
