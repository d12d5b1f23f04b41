"""Fault tests through the Challenge scripts: SIGKILLed training resumes to the same model, broken records
in a test folder are skipped (``-f``) or stop the run naming the record, and a killed ``run_model.py`` leaves
valid outputs for every record it finished.

Subprocess start-up (torch import) dominates on a busy machine; the interrupted runs are subprocesses, the rest runs
the same entry points in this process.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import restored_derc_state

import helper_code
import run_model
import train_model
from derc import modelfolder as mf
from derc.checkpoints import load_state
from derc.errors import RecordError
from derc.inference import DercModel
from derc.records import write_test_inputs
from derc.synth import write_dataset
from derc.synth.__main__ import main as synth_main

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "DERC_PRESET": "tiny", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "DERC_DEVICE": "cpu"}
TIMEOUT = 300


def command(script: str, *args: str | Path) -> list[str]:
    return [sys.executable, script, *map(str, args)]


def kill_when(script_args: list[str], ready, *, poll_s: float = 0.005) -> bool:
    """Start a script, SIGKILL it as soon as ``ready()`` is true; False when it ended before that."""
    process = subprocess.Popen(script_args, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + TIMEOUT
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if ready():
                process.send_signal(signal.SIGKILL)
                process.wait()
                return True
            time.sleep(poll_s)
        return False
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("faults")
    write_dataset(base / "train", 10, seed=5, progress=False)
    synth_main(["-o", str(base / "test"), "-n", "10", "-s", "6", "--images", "1", "--dpi", "60", "-q"])
    write_test_inputs(base / "test", base / "inputs")
    return {"base": base, "train": base / "train", "test": base / "test", "inputs": base / "inputs"}


@contextmanager
def in_process(threads: int = 1) -> Iterator[None]:
    """Run Challenge entry points here as the subprocesses do: tiny preset, one thread; restore logging after."""
    old_env = {key: os.environ.get(key) for key in ("DERC_PRESET", "DERC_DEVICE")}
    os.environ.update(DERC_PRESET="tiny", DERC_DEVICE="cpu")
    try:
        with restored_derc_state(threads):
            yield
    finally:
        for key, value in old_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def call(script, *args: str | Path, threads: int = 1) -> None:
    """A Challenge script's ``run(args)`` in this process (saves a process start; the same code runs)."""
    with in_process(threads):
        script.run(script.get_parser().parse_args([str(a) for a in args]))


@pytest.fixture(scope="module")
def reference(data: dict[str, Path]) -> Path:
    """An uninterrupted training run at the same seed, in this process (as train_model.py does it)."""
    model = data["base"] / "reference"
    call(train_model, "-d", data["train"], "-m", model)
    return model


def weights(model: Path, name: str) -> dict[str, torch.Tensor]:
    return load_state(mf.resolve(model)[name], what=name)["state_dict"]


def test_sigkilled_training_resumes_to_the_uninterrupted_model(data: dict[str, Path], reference: Path) -> None:
    model = data["base"] / "interrupted"
    work = mf.work_dir(model)
    args = command("train_model.py", "-d", data["train"], "-m", model)
    # Kill 1: as soon as the first checkpoint exists (end of the UNet stage, before unet.pt).
    assert kill_when(args, lambda: (work / "unet.ckpt").exists()), "training ended before the first checkpoint"
    assert not (model / mf.MANIFEST).exists()
    # Kill 2: in the classifier stage, after its first epoch's checkpoint.
    assert kill_when(args, lambda: (work / "classifier.ckpt").exists()), "training ended before the classifier ckpt"
    assert not (model / mf.MANIFEST).exists()
    assert (work / mf.UNET_FILE).is_file()  # the resumed run finished stage A and kept it
    call(train_model, "-d", data["train"], "-m", model)  # the rerun (in this process: the same code)
    log = (model / "train.log").read_text()
    assert "resuming the unfinished training run" in log
    assert "stage A (UNet) already finished" in log
    assert re.search(r"classifier: resuming from .* after epoch 1", log), log
    assert not work.exists()

    # Same weights, thresholds and predictions as the uninterrupted run.
    for name in (mf.UNET_FILE, mf.CLASSIFIER_FILE):
        a, b = weights(reference, name), weights(model, name)
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=f"{name}:{key}")
    ta = json.loads(mf.resolve(reference)[mf.THRESHOLDS_FILE].read_text())["thresholds"]
    tb = json.loads(mf.resolve(model)[mf.THRESHOLDS_FILE].read_text())["thresholds"]
    np.testing.assert_allclose(ta, tb, atol=1e-6)
    first = DercModel.load(reference, device=torch.device("cpu"))
    second = DercModel.load(model, device=torch.device("cpu"))
    from derc.images import load_record_images

    for record in helper_code.find_records(str(data["inputs"]))[:4]:
        path = str(data["inputs"] / record)
        images = load_record_images(path, helper_code.get_image_files(path), helper_code.load_images)
        pa, pb = first.probabilities(first.denoise(images)), second.probabilities(second.denoise(images))
        np.testing.assert_allclose(pa, pb, atol=1e-5)
        assert first.labels(pa) == second.labels(pb)


def break_records(inputs: Path, records: list[str]) -> dict[str, str]:
    """Break each record a different way; returns record -> a phrase its error message must contain."""
    kinds = [
        (lambda image: image.write_bytes(b""), "empty (0 bytes)"),
        (lambda image: image.write_text("not an image"), "named as PNG but contains text"),
        (lambda image: image.write_bytes(image.read_bytes()[:2000]), "truncated or corrupt"),
        (lambda image: image.unlink(), "missing"),
    ]
    reasons = {}
    for record, (breaker, reason) in zip(records, kinds):
        image = inputs / helper_code.get_image_files(str(inputs / record))[0]
        breaker(image)
        reasons[record] = reason
    return reasons


def test_a_folder_with_20_percent_broken_records(
    data: dict[str, Path], reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = tmp_path / "inputs"
    shutil.copytree(data["inputs"], inputs)
    records = helper_code.find_records(str(inputs))
    broken = break_records(inputs, [records[3], records[7]])  # 2 of 10

    out = tmp_path / "with_f"
    call(run_model, "-d", inputs, "-m", reference, "-o", out, "-f")
    for record in records:
        text = (out / f"{record}.hea").read_text()
        assert ("# Labels:" in text) == (record not in broken), record
    failed = re.findall(r"record (\S+) failed: (.*)", capsys.readouterr().err)
    assert [name for name, _ in failed] == list(broken)
    for (name, message), reason in zip(failed, broken.values()):
        assert "RecordError" in message and str(inputs / name) in message and reason in message, message

    out = tmp_path / "without_f"
    with pytest.raises(RecordError) as caught:
        call(run_model, "-d", inputs, "-m", reference, "-o", out)
    assert caught.value.record == str(inputs / records[3])
    assert str(caught.value).startswith(f"record {inputs / records[3]}:") and broken[records[3]] in str(caught.value)
    assert all("# Labels:" in (out / f"{r}.hea").read_text() for r in records[:3])
    assert not (out / f"{records[4]}.hea").exists()


def replicate(inputs: Path, target: Path, copies: int) -> list[str]:
    """``copies`` test records that all show the first input record's image (cheap to make, real to run)."""
    source = helper_code.find_records(str(inputs))[0]
    header = (inputs / f"{source}.hea").read_text()
    image = helper_code.get_image_files(str(inputs / source))[0]
    target.mkdir()
    names = []
    for i in range(copies):
        name = f"r{i:03d}"
        (target / f"{name}.hea").write_text(header.replace(source, name))
        shutil.copyfile(inputs / image, target / image.replace(source, name))
        names.append(name)
    return names


def test_run_model_killed_half_way_leaves_valid_outputs(data: dict[str, Path], reference: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    records = replicate(data["inputs"], inputs, 60)
    out = tmp_path / "out"

    def labelled() -> list[str]:
        found = []
        for path in out.glob("*.hea"):
            try:
                if "# Labels:" in path.read_text():
                    found.append(path.stem)
            except OSError:
                pass
        return found

    args = command("run_model.py", "-d", inputs, "-m", reference, "-o", out)
    assert kill_when(args, lambda: len(labelled()) >= 8), "run_model.py finished before it could be killed"
    done = labelled()
    assert 8 <= len(done) < len(records)
    for record in done:  # every finished record: the input header plus exactly one labels line
        source = (inputs / f"{record}.hea").read_text()
        written = (out / f"{record}.hea").read_text()
        assert written.startswith(source)
        extra = written[len(source) :].strip().splitlines()
        assert len(extra) == 1 and extra[0].startswith("# Labels:")
        assert helper_code.load_labels(str(out / record)) is not None
    call(run_model, "-d", inputs, "-m", reference, "-o", out)  # running again completes every record
    assert sorted(labelled()) == records
