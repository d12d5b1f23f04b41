"""Data-parallel training: torchrun with 2 gloo processes on the CPU trains and publishes one model; EMA agrees."""

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


EMA_SCRIPT = """
import sys
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from derc import distributed
from derc.config import StageConfig
from derc.training import fit

rank = distributed.init_from_env("gloo")
torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 1, 1))
x = torch.rand(12, 2, 6, 6, generator=torch.Generator().manual_seed(100 + rank.rank)) + 3 * rank.rank
data = TensorDataset(x, x.mean(dim=1, keepdim=True))
stage = StageConfig(epochs=2, lr=1e-2, ema_decay=0.5, early_stopping_patience=5)
fit(model, train_loader=DataLoader(data, batch_size=4), val_loader=DataLoader(data, batch_size=6),
    loss_fn=nn.functional.mse_loss, stage=stage, device="cpu", name="ema", log_dir=sys.argv[1], progress=False)
state = torch.cat([value.float().flatten() for value in model.state_dict().values()])
gathered = [torch.zeros_like(state) for _ in range(rank.world_size)]
dist.all_gather(gathered, state)
assert torch.equal(gathered[0], gathered[1]), "ranks returned different weights"
if rank.rank == 0:
    open(sys.argv[1] + "/agreed", "w").close()
distributed.shutdown()
"""


@pytest.mark.slow
def test_torchrun_ema_batchnorm_statistics_agree_across_ranks(tmp_path) -> None:
    script = tmp_path / "ema_fit.py"
    script.write_text(EMA_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)]
    done = subprocess.run([*command, str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-3000:]
    # the ranks' data differ (offset by 3 per rank), so only averaging over ranks makes their statistics agree
    assert (tmp_path / "agreed").is_file()


DIGITIZE_SCRIPT = """
import sys
from pathlib import Path
import torch
from derc import distributed
from derc.config import Config
from derc.models.factory import build_denoiser
from derc.records import index_records
from derc.signal_stage import digitized_inputs

state = distributed.init_from_env("gloo")
config = Config.load(sys.argv[1])
entries = index_records(sys.argv[2], sorted(p.stem for p in Path(sys.argv[2]).glob("*.hea")))
out = digitized_inputs(entries, build_denoiser(config, None), config, torch.device("cpu"), seed=3)
torch.save(out, f"{sys.argv[3]}/rank{state.rank}.pt")
distributed.shutdown()
"""


@pytest.mark.slow
def test_torchrun_ranks_split_stage_c_digitizing_and_share_the_result(tmp_path) -> None:
    """Each rank digitizes every other page; all ranks end with what one process reads alone."""
    import dataclasses

    import torch

    from derc.config import get_preset
    from derc.models.factory import build_denoiser
    from derc.records import index_records
    from derc.signal_stage import digitized_inputs

    data = tmp_path / "data"
    names = write_dataset(data, 5, seed=6, balanced=True, progress=False)
    # grey levels instead of a UNet: no weights to share, so both runs see the very same ink maps
    config = dataclasses.replace(get_preset("tiny"), image_height=224, image_width=288, denoiser="none", num_workers=0)
    config.save(tmp_path / "config.json")
    script = tmp_path / "digitize.py"
    script.write_text(DIGITIZE_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)]
    args = [str(tmp_path / "config.json"), str(data), str(tmp_path)]
    done = subprocess.run([*command, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    alone = digitized_inputs(
        index_records(data, names), build_denoiser(config, None), config, torch.device("cpu"), seed=3
    )
    assert bool(alone[2].any()), "no page was read: the comparison would be empty"
    for rank in (0, 1):
        shared = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        for mine, theirs in zip(shared, alone):
            assert torch.equal(mine, theirs)
