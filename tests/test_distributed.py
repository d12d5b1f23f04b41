"""Data-parallel training: torchrun with 2 gloo processes on the CPU trains and publishes one model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from derc.distributed import DistInfo, info, mean
from derc.synth.dataset import write_dataset

ROOT = Path(__file__).resolve().parents[1]


def test_single_process_is_a_no_op() -> None:
    assert info() == DistInfo(0, 1, 0)
    assert info().is_main and not info().active
    assert mean(2.5) == 2.5


@pytest.mark.slow
def test_torchrun_two_gloo_processes_train_one_model(tmp_path) -> None:
    data = tmp_path / "data"
    write_dataset(data, 8, seed=5, duration_s=10.0, progress=False)
    model = tmp_path / "model"
    env = {
        **os.environ,
        "DERC_PRESET": "tiny",
        "DERC_DEVICE": "cpu",
        "DERC_DIST_BACKEND": "gloo",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "train_model.py",
        "-d",
        str(data),
        "-m",
        str(model),
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((model / "manifest.json").read_text())
    run = model / manifest["current"]
    assert (run / "classifier.pt").is_file() and (run / "thresholds.json").is_file()
    assert len(list(model.glob("run-*"))) == 1  # published once, by rank 0
    log = (model / "train.log").read_text()
    assert "2 process(es)" in log
    # 6 training records over 2 ranks of batch 4: one step per rank per epoch, both ranks in one log line.
    assert "classifier epoch 2/2" in log
