"""The fit loop: early stopping with best-weight restore, plateau and cosine LR, weight EMA, logs, exact resume."""

from __future__ import annotations

import csv
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from derc import runtime
from derc.checkpoints import load_state
from derc.config import StageConfig, get_preset
from derc.errors import ModelFolderError
from derc.runtime import (
    cache_budget_mb,
    configure_threads,
    cpu_has_fast_bf16,
    data_workers,
    pick_device,
    seed_everything,
    use_bf16,
    worker_init_fn,
)
from derc.training import EarlyStopping, fit

torch.set_num_threads(1)
CPU = torch.device("cpu")


def test_early_stopping_counts_steps_without_improvement() -> None:
    stopper = EarlyStopping(patience=2, min_delta=0.1)
    assert stopper.step(1.0) is True
    assert stopper.step(0.95) is False  # not better by more than min_delta
    assert stopper.step(0.5) is True
    assert not stopper.should_stop
    stopper.step(0.6)
    stopper.step(0.45)
    assert stopper.should_stop


def _regression_data(seed: int, n: int = 24) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, 6, 6, generator=generator)
    return TensorDataset(x, x.mean(dim=1, keepdim=True) * 2 - 0.5)


def _small_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.2), nn.Conv2d(4, 1, 1)
    )


def test_scripted_validation_curve_stops_early_and_restores_best(tmp_path) -> None:
    seed_everything(0)
    model = _small_net()
    scripted = [1.0, 0.5, 0.7, 0.6, 0.8, 0.9, 0.95]
    calls = {"val": 0}
    snapshots: dict[int, dict[str, torch.Tensor]] = {}

    def loss_fn(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if model.training:
            return nn.functional.mse_loss(output, target)
        calls["val"] += 1  # one validation batch per epoch
        snapshots[calls["val"]] = {k: v.clone() for k, v in model.state_dict().items()}
        return torch.tensor(scripted[calls["val"] - 1]) + 0 * output.sum()

    data = _regression_data(0)
    stage = StageConfig(
        epochs=7, lr=1e-2, plateau_patience=1, plateau_factor=0.5, min_lr=1e-4, early_stopping_patience=3
    )
    result = fit(
        model,
        train_loader=DataLoader(data, batch_size=8, shuffle=True),
        val_loader=DataLoader(data, batch_size=len(data)),
        loss_fn=loss_fn,
        stage=stage,
        device=CPU,
        name="scripted",
        log_dir=tmp_path,
        val_metrics=lambda out, tgt: {"mae": float((out - tgt).abs().mean())},
        progress=False,
    )
    assert result.stopped_early and result.best_epoch == 2 and result.best_val_loss == pytest.approx(0.5)
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4, 5]
    assert [row["lr"] for row in result.history] == pytest.approx([1e-2, 1e-2, 1e-2, 1e-2, 5e-3])
    for key, value in model.state_dict().items():
        assert torch.equal(value, snapshots[2][key]), key
    assert not torch.equal(model.state_dict()["0.weight"], snapshots[5]["0.weight"])
    with open(tmp_path / "scripted_log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["val_loss"]) for r in rows] == pytest.approx(scripted[:5])
    assert {"epoch", "train_loss", "val_loss", "lr", "seconds", "mae"} <= set(rows[0])
    assert (tmp_path / "scripted_curves.png").read_bytes()[:4] == b"\x89PNG"


def _resumable_run(tmp_path, epochs: int, checkpoint, seed: int, stage: StageConfig | None = None, loss_fn=None):
    seed_everything(seed)
    model = _small_net()
    train = DataLoader(_regression_data(0), batch_size=5, shuffle=True, generator=torch.Generator().manual_seed(seed))
    val = DataLoader(_regression_data(1, n=10), batch_size=4)
    stage = stage or StageConfig(
        epochs=epochs, lr=5e-3, plateau_patience=1, plateau_factor=0.5, early_stopping_patience=5
    )
    result = fit(
        model,
        train_loader=train,
        val_loader=val,
        loss_fn=loss_fn or nn.functional.mse_loss,
        stage=stage,
        device=CPU,
        name="resume",
        log_dir=tmp_path,
        checkpoint_path=checkpoint,
        progress=False,
    )
    return model, result


def _without_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_resume_matches_uninterrupted_run(tmp_path) -> None:
    straight, straight_result = _resumable_run(tmp_path / "a", 3, tmp_path / "a" / "ckpt.pt", seed=0)
    _, first = _resumable_run(tmp_path / "b", 2, tmp_path / "b" / "ckpt.pt", seed=0)
    assert first.resumed_from_epoch is None
    # a different seed for the new process: everything that matters must come from the checkpoint
    resumed, resumed_result = _resumable_run(tmp_path / "b", 3, tmp_path / "b" / "ckpt.pt", seed=123)
    assert resumed_result.resumed_from_epoch == 2
    assert _without_seconds(resumed_result.history) == _without_seconds(straight_result.history)
    assert resumed_result.best_epoch == straight_result.best_epoch
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    last_a = load_state(tmp_path / "a" / "ckpt.pt", what="checkpoint")["model"]
    last_b = load_state(tmp_path / "b" / "ckpt.pt", what="checkpoint")["model"]
    assert all(torch.equal(last_a[k], last_b[k]) for k in last_a)
    with open(tmp_path / "b" / "resume_log.csv", newline="") as handle:
        assert [int(r["epoch"]) for r in csv.DictReader(handle)] == [1, 2, 3]


def test_cosine_schedule_decays_per_step_and_resumes_exactly(tmp_path) -> None:
    stage = StageConfig(epochs=3, lr=1e-2, min_lr=1e-4, early_stopping_patience=5, schedule="cosine")
    straight, straight_result = _resumable_run(tmp_path / "a", 3, tmp_path / "a" / "ckpt.pt", seed=0, stage=stage)
    # 24 samples in batches of 5: 5 steps per epoch, 15 in all; the lr at each epoch's start follows the cosine
    factor = [1e-2 + 0.5 * (1e-4 - 1e-2) * (1 - math.cos(math.pi * k / 15)) for k in (0, 5, 10)]
    assert [row["lr"] for row in straight_result.history] == pytest.approx(factor)
    saved = load_state(tmp_path / "a" / "ckpt.pt", what="checkpoint")
    assert saved["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-4)  # min_lr after the last step

    calls = {"train": 0}

    def crash_in_epoch_3(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            calls["train"] += 1
            if calls["train"] > 10:
                raise KeyboardInterrupt  # the run dies during its third epoch, after epoch 2's checkpoint
        return nn.functional.mse_loss(output, target)

    with pytest.raises(KeyboardInterrupt):
        _resumable_run(tmp_path / "b", 3, tmp_path / "b" / "ckpt.pt", seed=0, stage=stage, loss_fn=crash_in_epoch_3)
    resumed, resumed_result = _resumable_run(tmp_path / "b", 3, tmp_path / "b" / "ckpt.pt", seed=7, stage=stage)
    assert resumed_result.resumed_from_epoch == 2
    assert _without_seconds(resumed_result.history) == _without_seconds(straight_result.history)
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_schedule_is_checked() -> None:
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        StageConfig(schedule="linear")


def test_ema_keeps_validates_and_returns_the_moving_average(tmp_path) -> None:
    decay = 0.6
    stage = StageConfig(epochs=1, lr=5e-2, early_stopping_patience=5, ema_decay=decay)
    seed_everything(0)
    model = _small_net()
    seen: list[dict[str, torch.Tensor]] = []  # the parameters before each training step

    def loss_fn(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            seen.append({k: v.detach().clone() for k, v in model.named_parameters()})
        return nn.functional.mse_loss(output, target)

    data = _regression_data(0)
    result = fit(
        model,
        train_loader=DataLoader(data, batch_size=5),
        val_loader=DataLoader(data, batch_size=len(data)),
        loss_fn=loss_fn,
        stage=stage,
        device=CPU,
        name="ema",
        log_dir=tmp_path,
        checkpoint_path=tmp_path / "ckpt.pt",
        progress=False,
    )
    raw = load_state(tmp_path / "ckpt.pt", what="checkpoint")["model"]
    after_steps = [*seen[1:], {k: raw[k] for k in seen[0]}]  # 24 samples in batches of 5: 5 steps
    assert len(after_steps) == 5
    expected = dict(after_steps[0])  # the average starts as the weights after the first step
    for weights in after_steps[1:]:
        expected = {k: decay * expected[k] + (1 - decay) * weights[k] for k in expected}
    returned = model.state_dict()
    for key, value in expected.items():
        assert torch.allclose(returned[key], value, atol=1e-6), key
        assert not torch.equal(returned[key], raw[key]), key
    # BatchNorm statistics are those of the averaged weights over the epoch's training inputs (all 24 here:
    # the cap of 256 images keeps every batch), and validation scored the average, not the trained weights
    check = _small_net()
    check.load_state_dict(returned)
    for module in check.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    check.train()
    with torch.no_grad():
        for inputs, _ in DataLoader(data, batch_size=5):
            check(inputs)
    for key in ("1.running_mean", "1.running_var"):
        assert torch.allclose(returned[key], check.state_dict()[key], atol=1e-6), key
        assert not torch.allclose(returned[key], raw[key]), key
    model.eval()
    with torch.no_grad():
        val_loss = float(nn.functional.mse_loss(model(data.tensors[0]), data.tensors[1]))
    assert result.history[0]["val_loss"] == pytest.approx(val_loss, rel=1e-5)


def test_ema_run_resumes_exactly_and_refuses_a_plain_checkpoint(tmp_path) -> None:
    stage = StageConfig(epochs=3, lr=5e-3, early_stopping_patience=5, ema_decay=0.9)
    straight, straight_result = _resumable_run(tmp_path / "a", 3, tmp_path / "a" / "ckpt.pt", seed=0, stage=stage)
    _resumable_run(tmp_path / "b", 2, tmp_path / "b" / "ckpt.pt", seed=0, stage=replace(stage, epochs=2))
    resumed, resumed_result = _resumable_run(tmp_path / "b", 3, tmp_path / "b" / "ckpt.pt", seed=5, stage=stage)
    assert resumed_result.resumed_from_epoch == 2
    assert _without_seconds(resumed_result.history) == _without_seconds(straight_result.history)
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    _resumable_run(tmp_path / "c", 1, tmp_path / "c" / "ckpt.pt", seed=0)  # no EMA
    with pytest.raises(ModelFolderError, match="weight average"):
        _resumable_run(tmp_path / "c", 3, tmp_path / "c" / "ckpt.pt", seed=0, stage=stage)


def test_ema_batchnorm_inputs_keep_only_the_last_batches() -> None:
    from derc.training import _keep_recent

    recent: list[torch.Tensor] = []
    for step in range(6):
        _keep_recent(recent, torch.full((4, 1), float(step)), images=10)
    assert [int(batch[0, 0]) for batch in recent] == [3, 4, 5]  # 12 images: the fewest batches holding >= 10


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5, 1.5])
def test_ema_decay_is_checked(decay: float) -> None:
    with pytest.raises(ValueError, match="ema_decay"):
        StageConfig(ema_decay=decay)
    with pytest.raises(ValueError, match="ema_bn_images"):
        StageConfig(ema_decay=0.9, ema_bn_images=0)


def test_checkpoint_of_another_run_is_refused(tmp_path) -> None:
    _resumable_run(tmp_path, 1, tmp_path / "ckpt.pt", seed=0)
    model = _small_net()
    data = _regression_data(0)
    with pytest.raises(ModelFolderError, match="belongs to 'resume'"):
        fit(
            model,
            train_loader=DataLoader(data, batch_size=8),
            val_loader=None,
            loss_fn=nn.functional.mse_loss,
            stage=StageConfig(epochs=2),
            device=CPU,
            name="other",
            log_dir=tmp_path,
            checkpoint_path=tmp_path / "ckpt.pt",
            progress=False,
        )


def test_no_validation_uses_train_loss_and_transform_runs_without_grad(tmp_path) -> None:
    seed_everything(0)
    model = _small_net()
    seen_grad: list[bool] = []

    def transform(x: torch.Tensor) -> torch.Tensor:
        seen_grad.append(torch.is_grad_enabled())
        return x * 0.5

    stage = replace(StageConfig(epochs=3, lr=1e-2), max_steps_per_epoch=2)
    result = fit(
        model,
        train_loader=DataLoader(_regression_data(0), batch_size=4, shuffle=True),
        val_loader=None,
        loss_fn=nn.functional.mse_loss,
        stage=stage,
        device=CPU,
        name="noval",
        log_dir=tmp_path,
        input_transform=transform,
        progress=False,
    )
    assert len(seen_grad) == 6 and not any(seen_grad)  # 2 capped steps x 3 epochs
    assert all(math.isnan(row["val_loss"]) for row in result.history)
    assert result.best_val_loss == min(row["train_loss"] for row in result.history)


def test_bf16_training_on_the_cpu(tmp_path, monkeypatch) -> None:
    """Config.amp on a CPU with DERC_BF16=1: bfloat16 autocast, no scaler; the net still learns."""
    monkeypatch.setenv("DERC_BF16", "1")
    seed_everything(0)
    model = _small_net()
    data = _regression_data(0, n=64)
    seen: list[torch.dtype] = []
    model[0].register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    result = fit(
        model,
        train_loader=DataLoader(data, batch_size=8, shuffle=True),
        val_loader=DataLoader(data, batch_size=len(data)),
        loss_fn=lambda out, tgt: nn.functional.mse_loss(out.float(), tgt),
        stage=StageConfig(epochs=6, lr=1e-2, early_stopping_patience=10),
        device=CPU,
        name="bf16",
        log_dir=tmp_path,
        progress=False,
    )
    assert torch.bfloat16 in seen and all(p.dtype == torch.float32 for p in model.parameters())
    losses = [row["val_loss"] for row in result.history]
    assert all(math.isfinite(v) for v in losses) and min(losses) < 0.5 * losses[0], losses


def test_runtime_helpers(monkeypatch) -> None:
    assert configure_threads(1) == 1 and torch.get_num_threads() == 1
    monkeypatch.setenv("DERC_DEVICE", "cpu")
    assert pick_device() == CPU
    assert pick_device("cpu") == CPU
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            pick_device("cuda")
    for value, expected in (("1", True), ("0", False), ("off", False)):
        monkeypatch.setenv("DERC_BF16", value)
        assert use_bf16(CPU) is expected
    monkeypatch.setenv("DERC_BF16", "maybe")
    with pytest.raises(ValueError, match="DERC_BF16"):
        use_bf16(CPU)
    monkeypatch.delenv("DERC_BF16")
    assert use_bf16(CPU) is False  # fp32 unless asked, whatever the CPU
    assert isinstance(cpu_has_fast_bf16(), bool)
    seed_everything(5)
    first = (np.random.rand(), torch.rand(1).item())  # noqa: NPY002 - checking the legacy global stream
    seed_everything(5)
    assert first == (np.random.rand(), torch.rand(1).item())  # noqa: NPY002
    torch.manual_seed(7)
    worker_init_fn(0)
    value = np.random.rand()  # noqa: NPY002
    torch.manual_seed(7)
    worker_init_fn(0)
    assert np.random.rand() == value  # noqa: NPY002


def test_automatic_data_workers_share_the_cpus_between_local_processes(monkeypatch) -> None:
    monkeypatch.setattr(runtime, "available_cpus", lambda: 16)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert data_workers(None) == 12  # 15 left, capped
    assert data_workers(3) == 3 and data_workers(0) == 0
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # torchrun --nproc_per_node 4
    assert data_workers(None) == 3
    monkeypatch.setattr(runtime, "available_cpus", lambda: 2)
    assert data_workers(None) == 1  # never none: rendering stays off the training process
    assert get_preset("paper").num_workers is None and get_preset("small").num_workers == 2


def test_validation_cache_budget_is_a_share_of_the_available_memory(monkeypatch) -> None:
    assert runtime.memory_available_mb() > 0
    monkeypatch.setattr(runtime, "memory_available_mb", lambda: 8000.0)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert cache_budget_mb(None) == 2000.0
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert cache_budget_mb(None) == 1000.0
    assert cache_budget_mb(0) == 0.0 and cache_budget_mb(300) == 300.0


def test_monitored_metric_picks_the_best_epoch_instead_of_the_loss(tmp_path) -> None:
    # The loss keeps its best at epoch 1 while the (scripted) metric peaks at epoch 3: with
    # monitor="score" the epoch-3 weights are kept, stopping waits on the metric, and the log says so.
    seed_everything(0)
    model = _small_net()
    losses, scores = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7], [0.5, 0.6, 0.9, 0.8, 0.7, 0.6]
    seen = {"epoch": 0}
    snapshots: dict[int, dict[str, torch.Tensor]] = {}

    def loss_fn(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if model.training:
            return nn.functional.mse_loss(output, target)
        seen["epoch"] += 1
        snapshots[seen["epoch"]] = {k: v.clone() for k, v in model.state_dict().items()}
        return torch.tensor(losses[seen["epoch"] - 1]) + 0 * output.sum()

    data = _regression_data(1)
    stage = StageConfig(epochs=6, lr=1e-2, early_stopping_patience=2, plateau_patience=5, monitor="score")
    result = fit(
        model,
        train_loader=DataLoader(data, batch_size=8),
        val_loader=DataLoader(data, batch_size=len(data)),
        loss_fn=loss_fn,
        stage=stage,
        device=CPU,
        name="monitored",
        log_dir=tmp_path,
        val_metrics=lambda out, tgt: {"score": scores[seen["epoch"] - 1]},
        progress=False,
    )
    assert result.best_epoch == 3 and result.best_monitored == pytest.approx(-0.9)
    assert result.best_val_loss == pytest.approx(0.4) and result.stopped_early
    assert len(result.history) == 5
    for key, value in model.state_dict().items():
        assert torch.equal(value, snapshots[3][key]), key


def test_monitoring_a_metric_without_metrics_is_refused(tmp_path) -> None:
    data = _regression_data(0, n=8)
    with pytest.raises(ValueError, match="needs validation metrics"):
        fit(
            _small_net(),
            train_loader=DataLoader(data, batch_size=8),
            val_loader=DataLoader(data, batch_size=8),
            loss_fn=nn.functional.mse_loss,
            stage=StageConfig(epochs=1, monitor="macro_auroc"),
            device=CPU,
            name="refused",
            log_dir=tmp_path,
            progress=False,
        )
