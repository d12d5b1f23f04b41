"""Read-ahead (derc.readahead): the next record's pages read on a helper thread are exactly the pages the record
would read itself, and anything the helper cannot vouch for (another order, a changed file, a broken record) is
read again by the caller, with the same result or the same error."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile
from test_images import draw_page

from derc.config import get_preset
from derc.errors import RecordError
from derc.images import Page, load_record_pages, pixel_limit
from derc.readahead import ReadAhead, RecordOrder, _read, cpu_threads, read_ahead_depth, read_ahead_wanted, record_key
from derc.runtime import HelperThreads
from helper_code import get_image_files, load_images


def write_record(folder: Path, name: str, rgbs: list[np.ndarray], *, turn: int = 0) -> str:
    names = [f"{name}-{i}.png" for i in range(len(rgbs))]
    for file, rgb in zip(names, rgbs):
        Image.fromarray(np.ascontiguousarray(np.rot90(rgb, k=turn))).save(folder / file)
    (folder / f"{name}.hea").write_text(f"{name} 12 500 5000\n# Image: {', '.join(names)}\n")
    return str(folder / name)


@pytest.fixture()
def records(tmp_path: Path) -> list[str]:
    rng = np.random.default_rng(5)
    # upright, upside down (two pages), portrait: the helper's orienting turns pages as the caller's would
    pages = [[draw_page(rng, width_px=700) for _ in range(1 + (i == 1))] for i in range(4)]
    return [write_record(tmp_path, f"r{i}", pages[i], turn=(0, 2, 1, 0)[i]) for i in range(4)]


def same_pages(a: list[Page], b: list[Page]) -> bool:
    return len(a) == len(b) and all(
        np.array_equal(x.rgb, y.rgb) and (x.kept, x.text_score) == (y.kept, y.text_score) for x, y in zip(a, b)
    )


def load(reader: ReadAhead, record: str) -> list[Page]:
    return reader.load_pages(record, get_image_files(record), load_images, get_image_files)


def settle(reader: ReadAhead) -> None:
    """Wait until the helper has finished what it was given (so a test can change files after it read them)."""
    for job in reader._jobs.values():
        job.future.result(timeout=60)


def test_the_next_record_in_a_folder(tmp_path: Path) -> None:
    for name in ("b", "a", "c"):
        (tmp_path / f"{name}.hea").write_text("x")
    (tmp_path / "a-0.png").write_bytes(b"")
    order = RecordOrder()
    assert order.after(str(tmp_path / "a")) == [str(tmp_path / "b")]
    assert order.after(str(tmp_path / "a"), 5) == [str(tmp_path / "b"), str(tmp_path / "c")]
    assert order.after(str(tmp_path / "c")) == []  # the folder's last: the next is elsewhere
    time.sleep(0.01)
    (tmp_path / "d.hea").write_text("x")  # the folder changed: listed again
    assert order.after(str(tmp_path / "c")) == [str(tmp_path / "d")]
    assert order.after(str(tmp_path / "missing" / "a")) == []


def test_pages_read_ahead_are_the_pages_read_in_place(records: list[str]) -> None:
    reader = ReadAhead()
    for record in records:
        assert same_pages(load(reader, record), load_record_pages(record, get_image_files(record), load_images))
    assert reader.hits == len(records) - 1  # all but the first came from the helper
    assert {page.kept for record in records for page in load(ReadAhead(), record)} == {True, False}  # turned ones too


def test_several_records_ahead(records: list[str]) -> None:
    reader = ReadAhead(depth=3)
    first = load(reader, records[0])
    assert sorted(reader._jobs) == sorted(record_key(record) for record in records[1:])  # three helpers at work
    pages = [first] + [load(reader, record) for record in records[1:]]
    for record, got in zip(records, pages):
        assert same_pages(got, load_record_pages(record, get_image_files(record), load_images))
    assert reader.hits == 3
    skipped = ReadAhead(depth=2)
    load(skipped, records[0])
    load(skipped, records[2])  # r1 skipped: r2 was read ahead all the same, r1's read is dropped
    assert skipped.hits == 1 and record_key(records[1]) not in skipped._jobs


def test_the_helper_orients_only_while_nobody_waits(records: list[str]) -> None:
    in_place = load_record_pages(records[1], get_image_files(records[1]), load_images)
    idle, waiting = threading.Event(), threading.Event()
    waiting.set()
    done = _read(records[1], load_images, get_image_files, idle)
    assert len(done.images) == 2 and same_pages(done.pages, in_place)  # nobody waited: both pages oriented
    rushed = _read(records[1], load_images, get_image_files, waiting)
    assert rushed.pages == []  # the caller waits: it orients them itself, from the same decoded images
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(rushed.images, done.images))


def test_a_prepare_step_is_done_ahead_only_on_pages_the_caller_gets(records: list[str]) -> None:
    """``ReadAhead(prepare=...)``: a helper that oriented all of a record's pages before the caller asked applies the
    step to them; :meth:`ReadAhead.prepared_for` hands its result over once, for those very Page objects only; a
    step that fails on the helper is left to the caller."""
    calls: list[str] = []

    def prepare(pages: list[Page]) -> list[int]:
        calls.append(threading.current_thread().name)
        if len(pages) == 2:
            raise RuntimeError("the two-page record's step fails on the helper")
        return [page.rgb.shape[1] for page in pages]

    reader = ReadAhead(prepare=prepare)
    first = load(reader, records[0])
    assert reader.prepared_for(first) is None  # read in place: the caller does its own step
    settle(reader)
    second = load(reader, records[1])  # two pages: the helper's step failed
    assert reader.prepared_for(second) is None and calls == ["derc-read-ahead-0"]
    settle(reader)
    third = load(reader, records[2])
    copy = [Page(page.rgb.copy(), page.kept, page.text_score) for page in third]
    assert reader.prepared_for(copy) is None  # equal pages, but not the ones the step was done on
    third = load(reader, records[2])  # read again (now out of order, in place): nothing prepared
    assert reader.prepared_for(third) is None
    helped = ReadAhead(prepare=prepare)
    load(helped, records[2])
    settle(helped)
    fourth = load(helped, records[3])
    assert same_pages(fourth, load_record_pages(records[3], get_image_files(records[3]), load_images))
    assert helped.prepared_for(fourth) == [fourth[0].rgb.shape[1]]
    assert helped.prepared_for(fourth) is None  # taken once
    assert (helped.hits, helped.prepared_hits) == (1, 1)
    unhurried = _read(records[3], load_images, get_image_files, threading.Event(), prepare)
    assert unhurried.prepared == [unhurried.pages[0].rgb.shape[1]]
    waiting = threading.Event()
    waiting.set()  # the caller waits for these pages: it orients them and does the step itself
    assert _read(records[3], load_images, get_image_files, waiting, prepare).prepared is None


BUSY = """
import sys, time, torch

torch.set_num_threads(1)
conv = torch.nn.Conv2d(16, 16, 3, padding=1)


def busy(said):
    x = torch.randn(1, 16, 256, 256)
    with torch.inference_mode():
        for _ in range(300):  # a second or more inside torch's kernels
            x = conv(x)
    print(said, flush=True)
    return x
"""

EXIT_WHILE_A_HELPER_COMPUTES = (
    BUSY
    + """
from derc.readahead import ReadAhead
from helper_code import get_image_files, load_images

reader = ReadAhead(prepare=lambda pages: busy("step done"))
reader.load_pages(sys.argv[1], get_image_files(sys.argv[1]), load_images, get_image_files)
time.sleep(0.3)  # the helper has read the next record and is inside its step
print("exiting", flush=True)
"""
)


def test_the_process_ends_cleanly_while_a_helper_computes(records: list[str]) -> None:
    """A process that ends while a helper runs torch kernels for the next record (the caller wanted no more records)
    waits for that work instead of aborting in torch's teardown (exit status 134 before the at-exit wait)."""
    # the step finished after the main thread's end
    assert python_output(EXIT_WHILE_A_HELPER_COMPUTES, records[0]) == ["exiting", "step", "done"]


EXIT_WHILE_A_WORKER_COMPUTES = (
    BUSY
    + """
import atexit, threading


def workers_alive():  # registered before derc.runtime's own at-exit wait, so it runs after it
    alive = [thread for thread in threading.enumerate() if thread.name.startswith("test-worker")]
    print("alive" if alive else "ended", flush=True)


atexit.register(workers_alive)
from derc.runtime import HelperThreads

worker = HelperThreads("test-worker")
worker.submit(busy, "first done")
worker.submit(busy, "second done")  # queued behind it: nobody waits for it, so the exit drops it
if sys.argv[1:] == ["close"]:
    worker.close()  # ends the thread after the work queued so far, without waiting: the exit still joins it
time.sleep(0.3)
print("exiting", flush=True)
"""
)


@pytest.mark.parametrize("closed", [False, True])
def test_the_process_ends_cleanly_while_a_worker_computes(closed: bool) -> None:
    """The same for work handed to any helper thread (the image classifier's): the work under way is finished at
    exit, the work queued behind it is dropped, and the thread has ended before the interpreter finalizes: a
    daemon thread left at its queue still held its last work's result, and freeing that tensor once the interpreter
    finalized aborted the process (exit status 134, "terminate called without an active exception", in 2 of 30
    runs and once in CI). A closed set of threads that has not ended yet is joined the same way."""
    args = ["close"] if closed else []
    assert python_output(EXIT_WHILE_A_WORKER_COMPUTES, *args) == ["exiting", "first", "done", "ended"]


def python_output(script: str, *args: str) -> list[str]:
    """The words ``script`` prints, run by a fresh interpreter in the project's root; it must exit with status 0."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()


def openmp_team_size() -> Callable[[], int]:
    """The loaded OpenMP runtime's ``omp_get_max_threads`` (the calling thread's team size for parallel regions)."""
    torch.set_num_threads(torch.get_num_threads())  # makes sure torch's OpenMP runtime is loaded and initialized
    torch_lib = str(Path(torch.__file__).resolve().parent / "lib")
    with open("/proc/self/maps") as maps:  # other packages (scikit-learn, OpenCV) may load OpenMP runtimes of their own
        found = {line.split()[-1] for line in maps if ("libgomp" in line or "libiomp" in line) and torch_lib in line}
    if len(found) != 1:
        pytest.skip(f"not one OpenMP runtime in torch's library folder: {sorted(found)}")
    return ctypes.CDLL(found.pop()).omp_get_max_threads


def test_helper_threads_run_with_torchs_thread_count(records: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """oneDNN sizes its OpenMP teams by the calling thread's setting, which a new thread takes from OMP_NUM_THREADS
    or the cores, not from torch.set_num_threads: the image classifier's worker and the read-ahead helpers set it
    (``derc.runtime.follow_torch_threads``) before their work, or their passes would use every core."""
    team = openmp_team_size()
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        seen: list[int] = []
        bare = threading.Thread(target=lambda: seen.append(team()))
        bare.start()
        bare.join()
        if "OMP_NUM_THREADS" not in os.environ and (os.cpu_count() or 1) > 1:
            assert seen == [os.cpu_count()]  # what a thread gets by default: the case the helpers must not keep
        worker = HelperThreads("test-worker")
        assert worker.submit(team).result(timeout=60) == 1
        worker.close(wait=True)
        reader = ReadAhead(prepare=lambda pages: team())
        load(reader, records[0])
        settle(reader)
        assert reader.prepared_for(load(reader, records[1])) == 1
        reader.close()
    finally:
        torch.set_num_threads(saved)


def test_a_file_changed_after_it_was_read_ahead_is_read_again(records: list[str]) -> None:
    reader = ReadAhead()
    load(reader, records[0])
    settle(reader)  # records[1] is read
    image = Path(records[1] + "-0.png")
    Image.fromarray(draw_page(np.random.default_rng(9), width_px=650)).save(image)
    os.utime(image, ns=(time.time_ns(), time.time_ns() + 10**9))  # a new modification time, whatever the clock
    pages = load(reader, records[1])
    assert reader.hits == 0
    assert pages[0].rgb.shape[1] == 650
    assert same_pages(pages, load_record_pages(records[1], get_image_files(records[1]), load_images))


def test_a_broken_record_read_ahead_fails_as_it_would_in_place_and_the_run_goes_on(records: list[str]) -> None:
    full = Path(records[2] + "-0.png").read_bytes()
    Path(records[2] + "-0.png").write_bytes(full[: len(full) // 2])
    reader = ReadAhead()
    load(reader, records[0])
    load(reader, records[1])  # the helper now reads records[2] and fails
    with pytest.raises(RecordError) as in_place:
        load_record_pages(records[2], get_image_files(records[2]), load_images)
    with pytest.raises(RecordError) as read_ahead:
        load(reader, records[2])
    assert str(read_ahead.value) == str(in_place.value)
    assert "truncated or corrupt" in str(read_ahead.value)
    assert same_pages(load(reader, records[3]), load_record_pages(records[3], get_image_files(records[3]), load_images))
    assert reader.hits == 2  # records[1] and records[3]


def test_out_of_order_records_are_read_in_place(records: list[str]) -> None:
    reader = ReadAhead()
    for record in (records[3], records[0], records[2], records[1], records[2], records[3]):
        assert same_pages(load(reader, record), load_record_pages(record, get_image_files(record), load_images))
    # r3 is its folder's last (predicts nothing); r0 predicts r1, but r2 comes: nothing is read ahead after an
    # unpredicted record, so r1 and the r2 after it are read in place; r2 came as predicted, so r3 is read ahead
    assert reader.hits == 1


def test_closing_ends_the_helpers(records: list[str]) -> None:
    def helpers() -> set[threading.Thread]:
        return {thread for thread in threading.enumerate() if thread.name.startswith("derc-read-ahead")}

    before = helpers()
    reader = ReadAhead(depth=2)
    load(reader, records[0])
    started = helpers() - before
    assert len(started) == 2
    reader.close()
    for thread in started:
        thread.join(30)
        assert not thread.is_alive()
    assert same_pages(load(reader, records[1]), load_record_pages(records[1], get_image_files(records[1]), load_images))
    reader.close()


def test_switched_off_reads_in_place(records: list[str]) -> None:
    reader = ReadAhead(enabled=False)
    for record in records:
        load(reader, record)
    assert reader.hits == 0 and not reader._helpers.started  # no helper thread started


def test_pixel_limit_holds_while_any_thread_is_inside() -> None:
    saved = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True  # as a user's code may have left it
    try:
        inside, release = threading.Event(), threading.Event()

        def other() -> None:
            with pixel_limit(1000):
                inside.set()
                release.wait(10)

        thread = threading.Thread(target=other)
        with pixel_limit(1000):
            thread.start()
            inside.wait(10)
        # the first holder left, the other thread is still inside: still strict
        assert (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES) == (1000, False)
        with pixel_limit(2000):
            assert Image.MAX_IMAGE_PIXELS == 1000  # the smallest limit held applies
            with pixel_limit(500):
                assert Image.MAX_IMAGE_PIXELS == 500
            assert Image.MAX_IMAGE_PIXELS == 1000
        release.set()
        thread.join(10)
        assert (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES) == (saved[0], True)  # the last one restored
    finally:
        Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved


def test_who_reads_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DERC_THREADS", raising=False)
    monkeypatch.delenv("DERC_READ_AHEAD", raising=False)
    monkeypatch.setattr("derc.readahead.available_cpus", lambda: 4)
    assert cpu_threads(get_preset("small")) == 3  # light: a core is left to the helper
    assert cpu_threads(get_preset("paper")) is None  # heavy: every core to torch
    monkeypatch.setenv("DERC_THREADS", "4")
    assert cpu_threads(get_preset("small")) is None  # the user's choice
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        assert not read_ahead_wanted(torch.device("cpu"))  # no core left
        assert read_ahead_wanted(torch.device("cuda"))
        torch.set_num_threads(3)
        assert read_ahead_wanted(torch.device("cpu"))
        assert read_ahead_depth(torch.device("cpu")) == 1  # one core left
        torch.set_num_threads(2)
        assert read_ahead_depth(torch.device("cpu")) == 2
        torch.set_num_threads(1)
        assert read_ahead_depth(torch.device("cpu")) == 4  # one torch thread: one helper more than spare cores
        assert read_ahead_depth(torch.device("cuda")) == 3  # all but the caller's core
        monkeypatch.setattr("derc.readahead.available_cpus", lambda: 64)
        assert read_ahead_depth(torch.device("cuda")) == 4  # at most MAX_DEPTH
        monkeypatch.setattr("derc.readahead.available_cpus", lambda: 4)
        monkeypatch.setenv("DERC_READ_AHEAD", "0")
        assert not read_ahead_wanted(torch.device("cuda"))
        monkeypatch.setenv("DERC_READ_AHEAD", "1")
        torch.set_num_threads(4)
        assert read_ahead_wanted(torch.device("cpu"))
        monkeypatch.setenv("DERC_READ_AHEAD", "yes")
        with pytest.raises(ValueError, match="DERC_READ_AHEAD"):
            read_ahead_wanted(torch.device("cpu"))
    finally:
        torch.set_num_threads(saved)


def test_a_forked_process_reads_for_itself(records: list[str]) -> None:
    """A process forked while a helper reads ahead holds a copy of the helper that never runs: it reads the record
    itself instead of waiting forever on the parent's read. The image classifier's worker thread
    (``derc.runtime.HelperThreads``) likewise starts afresh in the child."""
    gate = threading.Event()

    def held_in_helpers(path: str) -> list[Image.Image]:
        if threading.current_thread().name.startswith("derc-read-ahead"):
            gate.wait(60)  # the parent's read of the next record is under way when the process forks
        return load_images(path)

    reader = ReadAhead()
    reader.load_pages(records[0], get_image_files(records[0]), held_in_helpers, get_image_files)
    worker = HelperThreads("test-worker")
    assert worker.submit(sum, [40, 2]).result(timeout=60) == 42  # the parent's thread is started (and idle)
    context = multiprocessing.get_context("fork")
    results = context.Queue()

    def child() -> None:
        pages = reader.load_pages(records[1], get_image_files(records[1]), load_images, get_image_files)
        in_place = load_record_pages(records[1], get_image_files(records[1]), load_images)
        results.put((same_pages(pages, in_place), worker.submit(sum, [1, 2]).result(timeout=30)))

    try:
        process = context.Process(target=child)
        process.start()
        process.join(timeout=120)
        alive = process.is_alive()
        if alive:
            process.kill()
        assert not alive and process.exitcode == 0
        assert results.get(timeout=10) == (True, 3)
    finally:
        gate.set()
        worker.close(wait=True)
