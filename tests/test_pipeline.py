"""End to end at tiny size: synthetic records -> train_model.py -> run_model.py -> evaluate_model.py.

One training run (module fixture) serves every test here; it takes about a minute on 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import helper_code
from derc import modelfolder as mf
from derc.errors import ModelFolderError
from derc.inference import DercModel
from derc.labels import LABELS
from derc.records import write_test_inputs
from derc.synth import write_dataset

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "DERC_PRESET": "tiny", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "2"}


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=ENV, capture_output=True, text=True, check=check, timeout=600
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("e2e")
    train, test = base / "train", base / "test"
    # Balanced label mix: every label occurs in the validation split (its Youden thresholds are fitted, not the
    # 0.5 fallback) and in the test records. With the PTB-XL-like mix the tiny model's F depended on the CPU's
    # vector unit: 0.168 with AVX2 kernels, 0.101 with AVX-512 (same seeds), against 0.082 for the prior.
    write_dataset(train, 60, seed=1, balanced=True, progress=False)
    run("-m", "derc.synth", "-o", str(test), "-n", "20", "-s", "2", "--images", "1", "--dpi", "60", "--balanced", "-q")
    write_test_inputs(test, base / "test_input")
    result = run("train_model.py", "-d", str(train), "-m", str(base / "model"), "-v")
    assert "training preset 'tiny'" in result.stderr
    return {"base": base, "train": train, "test": test, "inputs": base / "test_input", "model": base / "model"}


def scores(stdout: str) -> dict[str, float]:
    values = dict(line.split(": ") for line in stdout.strip().splitlines() if ": " in line)
    return {key: float(value) for key, value in values.items()}


def write_constant_outputs(test: Path, out: Path, labels: list[str]) -> None:
    for record in helper_code.find_records(str(test)):
        header = helper_code.load_header(str(test / record))
        kept = "\n".join(line for line in header.splitlines() if not line.startswith("# Labels:"))
        (out / f"{record}.hea").parent.mkdir(parents=True, exist_ok=True)
        (out / f"{record}.hea").write_text(kept + "\n")
        if labels:
            helper_code.save_labels(str(out / record), labels)


def test_model_folder_holds_what_training_promised(trained: dict[str, Path]) -> None:
    model = trained["model"]
    paths = mf.resolve(model)
    config = json.loads(paths[mf.CONFIG_FILE].read_text())
    assert config["preset"] == "tiny"
    thresholds = json.loads(paths[mf.THRESHOLDS_FILE].read_text())
    assert thresholds["labels"] == list(LABELS)
    assert thresholds["info"]["rule"] == config["threshold_rule"]  # the rule the thresholds were fitted by
    for name in ("train.log", "unet_log.csv", "unet_curves.png", "classifier_log.csv", "classifier_curves.png"):
        assert (model / name).is_file(), name
    assert not (model / mf.WORK).exists()


def test_run_and_evaluate_score_the_models_labels(trained: dict[str, Path], tmp_path: Path) -> None:
    """run_model.py writes one labels line per record and evaluate_model.py scores it like constant outputs.

    Not a test of learning: at 64x96 with 60 records the tiny model's probabilities rank no better than chance
    (macro AUROC 0.47-0.48 on the test records of three training seeds, 2026-12-06; 0.59 at best in validation
    with 120 records and 10 classifier epochs), so its F-measure against the most-common-label baseline
    (0.120, 0.115 and 0.036 against 0.042) is decided by how broadly its Youden thresholds label, and an
    assertion on that margin broke on innocuous changes of the renderer's draws. Learning is measured by
    benchmarks/bench_accuracy.py at the ``small`` preset.
    """
    out = tmp_path / "outputs"
    run("run_model.py", "-d", str(trained["inputs"]), "-m", str(trained["model"]), "-o", str(out))
    records = helper_code.find_records(str(trained["inputs"]))
    for record in records:
        source = (trained["inputs"] / f"{record}.hea").read_text()
        written = (out / f"{record}.hea").read_text()
        assert written.startswith(source)
        extra = written[len(source) :].strip().splitlines()
        assert len(extra) == 1 and extra[0].startswith("# Labels:")
    labelled = sum(bool(helper_code.load_labels(str(out / record))) for record in records)
    model_f = scores(run("evaluate_model.py", "-d", str(trained["test"]), "-o", str(out)).stdout)["F-measure"]

    # Constant outputs scored by the same evaluator: nothing predicted, and the most common label for everyone.
    none_out, prior_out = tmp_path / "none", tmp_path / "prior"
    write_constant_outputs(trained["test"], none_out, [])
    train_labels = [
        helper_code.load_labels(str(trained["train"] / r)) for r in helper_code.find_records(str(trained["train"]))
    ]
    counts = {name: sum(name in labels for labels in train_labels) for name in LABELS}
    write_constant_outputs(trained["test"], prior_out, [max(counts, key=counts.get)])
    none_f = scores(run("evaluate_model.py", "-d", str(trained["test"]), "-o", str(none_out)).stdout)["F-measure"]
    prior_f = scores(run("evaluate_model.py", "-d", str(trained["test"]), "-o", str(prior_out)).stdout)["F-measure"]
    print(
        f"F-measure: model {model_f:.3f} ({labelled} of {len(records)} records labelled), all-negative {none_f:.3f}, "
        f"most-common-label {prior_f:.3f}"
    )
    # As in the official evaluation, a run in which no record got labels scores nan (not completed).
    assert np.isnan(none_f)
    assert 0.0 < prior_f < 1.0
    assert labelled > 0 and 0.0 < model_f <= 1.0


def test_run_continues_past_a_broken_record_only_with_f(trained: dict[str, Path], tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    write_test_inputs(trained["test"], inputs, helper_code.find_records(str(trained["test"]))[:3])
    broken = helper_code.find_records(str(inputs))[1]
    image = helper_code.get_image_files(str(inputs / broken))[0]
    (inputs / image).write_text("not an image")
    failing = run(
        "run_model.py", "-d", str(inputs), "-m", str(trained["model"]), "-o", str(tmp_path / "a"), check=False
    )
    assert failing.returncode != 0
    assert broken in failing.stderr and "named as PNG but contains text" in failing.stderr
    run("run_model.py", "-d", str(inputs), "-m", str(trained["model"]), "-o", str(tmp_path / "b"), "-f")
    for record in helper_code.find_records(str(inputs)):
        labelled = "# Labels:" in (tmp_path / "b" / f"{record}.hea").read_text()
        assert labelled == (record != broken)


def test_loaded_model_is_deterministic_and_refuses_tampering(trained: dict[str, Path], tmp_path: Path) -> None:
    model = DercModel.load(trained["model"], device=torch.device("cpu"))
    image = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    first = model.probabilities(model.denoise([image]))
    again = DercModel.load(trained["model"], device=torch.device("cpu"))
    np.testing.assert_array_equal(first, again.probabilities(again.denoise([image])))

    import shutil

    copy = tmp_path / "model"
    shutil.copytree(trained["model"], copy)
    weights = mf.resolve(copy)[mf.UNET_FILE]
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFolderError, match="manifest hash"):
        DercModel.load(copy)
    with pytest.raises(ModelFolderError, match="does not exist"):
        DercModel.load(tmp_path / "missing")


def test_a_loaded_model_keeps_numpys_blas_to_one_thread(trained: dict[str, Path]) -> None:
    """The digitizer's least-squares fits are tiny: loading a model leaves numpy's OpenBLAS one thread (the
    default is one per core), and torch's own pool as DERC_THREADS / the cores say."""
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(limits=2, user_api="blas"):  # as numpy starts on a 2-core machine, whatever this one is
        DercModel.load(trained["model"], device=torch.device("cpu"))
        openblas = [pool for pool in threadpool_info() if pool["internal_api"] == "openblas"]
        assert any("numpy" in pool["filepath"] for pool in openblas)
        assert all(pool["num_threads"] == 1 for pool in openblas)


def test_pages_denoised_ahead_give_the_outputs_of_pages_denoised_in_place(
    trained: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``DercModel.denoise_pages`` on the read-ahead helper (``derc.inference.denoise_ahead_wanted``): the records'
    probabilities and signals are those of the model that reads and denoises each record in the caller."""
    from conftest import restored_derc_state

    from derc.inference import Digitizer, denoise_ahead_wanted

    monkeypatch.setenv("DERC_DENOISE_AHEAD", "1")
    inputs = trained["inputs"]
    records = [str(inputs / record) for record in helper_code.find_records(str(inputs))[:6]]
    cpu = torch.device("cpu")
    with restored_derc_state(1):
        ahead = DercModel.load(trained["model"], device=cpu, read_ahead=True)
        in_place = DercModel.load(trained["model"], device=cpu, read_ahead=False)
        assert ahead.read_ahead.prepare is not None and denoise_ahead_wanted(ahead)
        assert not denoise_ahead_wanted(in_place)  # nothing is read ahead: nothing to denoise there
        for record in records:
            results = []
            for model in (ahead, in_place):
                header = helper_code.load_header(record)
                pages = model.load_pages(
                    record, helper_code.get_image_files(record), helper_code.load_images, helper_code.get_image_files
                )
                results.append(
                    model.read_pages(
                        pages,
                        fs=helper_code.get_sampling_frequency(header),
                        num_samples=helper_code.get_num_samples(header),
                        leads=helper_code.get_signal_names(header),
                        digitizer=Digitizer.for_model(model),
                        record=record,
                    )
                )
            (probs, signal), (alone, alone_signal) = results
            np.testing.assert_array_equal(probs, alone)
            assert (signal is None) == (alone_signal is None)
            if signal is not None:
                np.testing.assert_array_equal(signal, alone_signal)
            for job in list(ahead.read_ahead._jobs.values()):
                job.future.result(timeout=120)  # the helper finishes the next record (and its step) first
        assert ahead.read_ahead.prepared_hits == len(records) - 1
        monkeypatch.setenv("DERC_DENOISE_AHEAD", "0")
        assert not denoise_ahead_wanted(ahead)
        monkeypatch.delenv("DERC_DENOISE_AHEAD")
        import dataclasses

        from derc.runtime import HelperThreads

        torch.set_num_threads(1)  # (loading with read_ahead=True left torch every core)
        beside = dataclasses.replace(ahead, image_thread=HelperThreads("unused"))  # (never started)
        assert denoise_ahead_wanted(beside)  # one torch thread, the image classifier beside the digitizer
        assert not denoise_ahead_wanted(ahead)  # on a CPU without that thread: no gain measured
        torch.set_num_threads(2)
        assert not denoise_ahead_wanted(beside)
        assert denoise_ahead_wanted(dataclasses.replace(ahead, device=torch.device("cuda")))
        ahead.read_ahead.close()

        # the helpers' passes run one at a time (DercModel.ahead_lock): never two at once, whatever the threads
        class Watched(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.running, self.most = 0, 0

            def forward(self, batch: torch.Tensor) -> torch.Tensor:
                self.running += 1
                self.most = max(self.most, self.running)
                time.sleep(0.05)
                self.running -= 1
                return batch[:, :1]

        watched = dataclasses.replace(ahead, denoiser=Watched())
        pages = ahead.load_pages(
            records[0], helper_code.get_image_files(records[0]), helper_code.load_images, helper_code.get_image_files
        )
        threads = [threading.Thread(target=watched.denoise_pages, args=(pages,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert watched.denoiser.most == 1
