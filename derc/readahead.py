"""Read the next record's images while ``run_models`` works on this one.

``run_model.py`` (the organizers' copy and ours) calls ``run_models`` once per record, in ``find_records`` order:
sorted paths. So while one record is denoised, digitized and classified, the next one in its folder is already
known, and its images can be checked, decoded and converted (:func:`derc.images.read_record_images`) on a spare
CPU core. On a Challenge-size page (2200x1700 RGBA PNG) that is ~100 ms of PNG inflating, more than the rest of
the record at ``small``; a record's own work never waits for it unless it needs that record's images.

What is read ahead is used only when it is the same work the record would do itself: the record that comes next
is the one predicted, its header lists the same image names, and the header and the image files have the same
size and modification time as when they were read. Anything else (another order, a changed file, a read that
failed) falls back to reading the record in the caller's thread, so errors name the record and the problem
exactly as they would without read-ahead, and ``run_model.py -f`` goes on past a broken record as before. After
a record that came out of order nothing is read ahead until the order holds again.

A helper also turns the pages upright (:func:`derc.images.orient_record_images`) when it has finished
decoding before the caller asks for them; otherwise the caller does, and the helper moves on to the next record.
Either way the pages are the same arrays. Given a ``prepare`` step (:class:`ReadAhead`), a helper that has turned
every page of a record before the caller asks for it goes on to that step (``DercModel`` denoises the pages: its
UNet pass), and the caller takes the result with :meth:`ReadAhead.prepared_for`; a step that fails there is left
to the caller, which does it again and meets its error itself.

Where torch leaves several cores free (a GPU model on a many-core host), as many helpers read as many records ahead
(:func:`read_ahead_depth`).

The helper competes with torch's CPU threads: read-ahead is for a model on a GPU, or on a CPU whose torch threads
leave a core free. A light model (``small``) leaves one by default on a CPU (:func:`cpu_threads`); heavier ones use
every core unless ``DERC_THREADS`` says otherwise; see :func:`read_ahead_wanted`.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from derc.config import Config
from derc.images import Page, load_record_pages, orient_record_images, read_record_images
from derc.runtime import THREADS_ENV, HelperThreads, available_cpus, env_switch

log = logging.getLogger("derc")

READ_AHEAD_ENV = "DERC_READ_AHEAD"  # "0" never reads ahead, "1" always; unset: where a core is free for it

Loader = Callable[[str], list[Image.Image]]
NamesOf = Callable[[str], Sequence[str]]
Prepare = Callable[[Sequence[Page]], object]
Signature = tuple[tuple[str, int, int], ...]


# A model whose input is at most this many pixels (small's 224x288 twice over) leaves a CPU core to read-ahead by
# default: its forward passes are short next to reading a page (at small on 2 cores, 500 records' run_model.py took
# 42.7 s on 2 torch threads, 31.6 s on 1 with read-ahead). At medium the forward passes need the core more: a
# record took 249 ms on 2 threads and 399 ms on 1, of which read-ahead could hide only the intake's ~27 ms.
SPARE_CORE_MAX_PIXELS = 2 * 224 * 288


def cpu_threads(config: Config) -> int | None:
    """torch's CPU threads for inference with ``config``'s model: None (:func:`derc.runtime.configure_threads`'s
    default: ``DERC_THREADS``, else every CPU) unless the model is light enough for read-ahead to pay for a core,
    read-ahead is not switched off and neither ``DERC_THREADS`` nor a single CPU decides otherwise."""
    if os.environ.get(THREADS_ENV, "").strip() or os.environ.get(READ_AHEAD_ENV, "").strip() == "0":
        return None
    cpus = available_cpus()
    if cpus < 2 or config.image_height * config.image_width > SPARE_CORE_MAX_PIXELS:
        return None
    return cpus - 1


MAX_DEPTH = 4  # records read ahead at most (each holds its decoded images: ~11 MB for a 2200x1700 page)


def read_ahead_depth(device: torch.device) -> int:
    """How many records to read ahead, each on its own helper thread: 0 where :func:`read_ahead_wanted` says no;
    else the cores torch's threads leave free (on CUDA all but the caller's), at least 1 and at most MAX_DEPTH;
    one more where torch runs one thread, which has no parallel regions for a helper to stall and waits for
    pages while the helpers decode (2 cores, 1 torch thread: 12 records at 200 dpi 134-135 -> 119-122 ms a
    record with 2 helpers instead of 1; 150 at 100 dpi 58-61 ms either way). Decoding is the slow part of a
    record's intake (~100 ms a Challenge-size PNG, one core each), so several helpers keep up with a GPU that
    finishes a record's forward passes in a few milliseconds."""
    if not read_ahead_wanted(device):
        return 0
    cpus = available_cpus()
    if device.type == "cuda":
        spare = cpus - 1
    else:
        threads = torch.get_num_threads()
        spare = cpus - threads + (threads == 1)
    return int(min(MAX_DEPTH, max(1, spare)))


def read_ahead_wanted(device: torch.device) -> bool:
    """``DERC_READ_AHEAD`` when set; else True on CUDA (the CPU's cores are free while the GPU runs the models) and
    on a CPU where torch's threads leave at least one core to the helper. With every core in torch's pool a helper
    thread stalls its parallel regions: the UNet's forward pass at ``small`` went 19 -> 260 ms a call beside a PNG
    decoding thread, 2 torch threads on 2 cores."""
    setting = env_switch(READ_AHEAD_ENV)
    if setting is not None:
        return setting
    return device.type == "cuda" or torch.get_num_threads() < available_cpus()


def record_key(record: str) -> str:
    """One spelling per record path (``data/x`` and ``./data//x`` are the same record)."""
    return os.path.normcase(os.path.abspath(record))


def file_signature(record: str, names: Sequence[str]) -> Signature:
    """(name, size, modification time) of the record's header (named "") and of the listed image files that exist."""
    folder = os.path.dirname(record) or "."
    files = [("", record + ".hea")] + [(str(n), os.path.join(folder, str(n))) for n in names if str(n).strip()]
    signature = []
    for name, path in files:
        try:
            stat = os.stat(path)
        except OSError:
            continue  # a missing file is part of what the read saw (and what check_image_files reports)
        signature.append((name, stat.st_size, stat.st_mtime_ns))
    return tuple(signature)


class RecordOrder:
    """The records after a given one in ``find_records`` order, among the records of its own folder (the folder's
    headers, sorted; listed again when the folder changes). What comes after a folder's last record is in another
    folder, and guessing it is not worth a walk of the tree."""

    def __init__(self) -> None:
        self._folder = ""
        self._stamp = -1
        self._names: list[str] = []

    def after(self, record: str, count: int = 1) -> list[str]:
        """Up to ``count`` records that follow ``record`` in its folder, nearest first."""
        folder, name = os.path.split(record)
        try:
            stamp = os.stat(folder or ".").st_mtime_ns
            if (folder, stamp) != (self._folder, self._stamp):
                with os.scandir(folder or ".") as entries:
                    self._names = sorted(e.name[: -len(".hea")] for e in entries if e.name.endswith(".hea"))
                self._folder, self._stamp = folder, stamp
        except OSError:
            return []
        index = bisect.bisect_right(self._names, name)
        return [os.path.join(folder, following) for following in self._names[index : index + count]]


@dataclass
class _Read:
    """One record read ahead: what the helper saw and made."""

    names: tuple[str, ...]
    signature: Signature
    images: list[tuple[str, np.ndarray]]
    pages: list[Page]  # upright pages of the first len(pages) images (the helper's orienting, when it had time)
    prepared: object = None  # the prepare step's result for all the pages (when the helper had time for it too)


@dataclass
class _Job:
    future: Future
    wanted: threading.Event  # set once the caller waits for it


class ReadAhead:
    """Loads a record's pages (:func:`derc.images.load_record_pages`) and starts reading the next ``depth``
    records' on as many helper threads. ``prepare``: a step a helper applies to a record's upright pages once it has
    them all and the caller has not yet asked for them (:meth:`prepared_for` hands its result over)."""

    def __init__(self, *, enabled: bool = True, depth: int = 1, prepare: Prepare | None = None) -> None:
        self.enabled = enabled
        self.depth = max(1, int(depth))
        self.prepare = prepare
        self.hits = 0  # records whose pages came from a helper
        self.prepared_hits = 0  # records whose prepare step a helper did
        self._prepared: tuple[list[Page], object] | None = None  # the last pages handed out, with their step's result
        self._order = RecordOrder()
        self._jobs: dict[str, _Job] = {}  # the records being read ahead, nearest first
        self._expected: str | None = None  # the record predicted to come next
        self._helpers = HelperThreads("derc-read-ahead", self.depth)  # started by the first read ahead

    def load_pages(self, record: str, names: Sequence[str], loader: Loader, names_of: NamesOf) -> list[Page]:
        """The pages of ``record`` (whose header lists ``names``), as :func:`derc.images.load_record_pages` gives
        them; ``names_of(record)`` reads a header's image names (the official ``get_image_files``)."""
        self._prepared = None
        if not self.enabled:
            return load_record_pages(record, names, loader)
        if not self._helpers.started:  # none started yet, closed, or forked: no helper here reads these records
            self._jobs = {}
        key = record_key(record)
        in_order = self._expected in (None, key)
        job = self._jobs.pop(key, None)
        coming = self._order.after(record, self.depth)
        self._expected = record_key(coming[0]) if coming else None
        wanted = {record_key(following): following for following in coming} if in_order else {}
        for stale in [k for k in self._jobs if k not in wanted]:
            self._jobs.pop(stale).future.cancel()  # not started: dropped; started: finishes unused
        for following_key, following in wanted.items():
            if following_key not in self._jobs:  # queued behind the reads already under way
                self._jobs[following_key] = self._start(following, loader, names_of)
        read = self._finished(job, names, record)
        if read is None:
            return load_record_pages(record, names, loader)
        self.hits += 1
        pages = read.pages + orient_record_images(record, read.images[len(read.pages) :])
        if read.prepared is not None:
            self._prepared = (pages, read.prepared)
        return pages

    def prepared_for(self, pages: Sequence[Page]) -> object | None:
        """The ``prepare`` step's result for ``pages``, taken once, where a helper did the step: only for the very
        Page objects the last :meth:`load_pages` returned (those it was done on); None otherwise."""
        held, self._prepared = self._prepared, None
        if held is None or len(held[0]) != len(pages) or any(a is not b for a, b in zip(held[0], pages)):
            return None
        self.prepared_hits += 1
        return held[1]

    def _finished(self, job: _Job | None, names: Sequence[str], record: str) -> _Read | None:
        """A helper's read of this record, if one read it, succeeded, and the files are unchanged."""
        if job is None:
            return None
        job.wanted.set()
        try:
            read = job.future.result()
        except Exception as error:  # read again here, where its error is raised (and -f handles it)
            log.debug("record %s: read ahead failed (%s); reading it again", record, error)
            return None
        if read.names != tuple(names) or read.signature != file_signature(record, names):
            log.debug("record %s: its files changed since they were read ahead; reading them again", record)
            return None
        return read

    def close(self) -> None:
        """Drop the reads not yet started and end the helper threads once they finish what they are reading
        (also when the ReadAhead is garbage-collected: the helpers hold only the queue, not the ReadAhead)."""
        for job in self._jobs.values():
            job.future.cancel()
        self._jobs.clear()
        self._helpers.close()

    def __del__(self) -> None:
        self.close()

    def _start(self, record: str, loader: Loader, names_of: NamesOf) -> _Job:
        wanted = threading.Event()
        return _Job(self._helpers.submit(_read, record, loader, names_of, wanted, self.prepare), wanted)


def _read(
    record: str, loader: Loader, names_of: NamesOf, wanted: threading.Event, prepare: Prepare | None = None
) -> _Read:
    names = tuple(names_of(record))
    signature = file_signature(record, names)
    images = read_record_images(record, names, loader)
    pages: list[Page] = []
    for index in range(len(images)):
        if wanted.is_set():
            break  # the caller is waiting: it orients the rest while this thread reads the next record
        pages += orient_record_images(record, images[index : index + 1])
    prepared = None
    if prepare is not None and pages and len(pages) == len(images) and not wanted.is_set():
        try:
            prepared = prepare(pages)
        except Exception as error:  # left to the caller, which does the step again and meets the error there
            log.debug("record %s: its pages' step ahead failed (%s); the record does it itself", record, error)
    return _Read(names, signature, images, pages, prepared)
