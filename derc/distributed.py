"""Multi-process training under ``torchrun``: DistributedDataParallel with rank-0-only logging and saving.

``torchrun --nproc_per_node N train_model.py -d DATA -m MODEL`` sets ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``;
:func:`init_from_env` then joins the process group (NCCL on CUDA, gloo on the CPU). Without those variables
everything here is a no-op for a single process, so the same code path serves both cases.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

BACKEND_ENV = "DERC_DIST_BACKEND"


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def info() -> DistInfo:
    """Rank, world size and local rank of this process (0, 1, 0 outside a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def init_from_env(backend: str | None = None) -> DistInfo:
    """Join the process group described by torchrun's environment variables (when ``WORLD_SIZE`` > 1)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1 or not dist.is_available():
        return DistInfo()
    if not dist.is_initialized():
        backend = backend or os.environ.get(BACKEND_ENV) or ("nccl" if torch.cuda.is_available() else "gloo")
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return info()


def device_for(device: torch.device) -> torch.device:
    """``device`` made rank-local: ``cuda`` becomes ``cuda:LOCAL_RANK`` under a process group."""
    state = info()
    if device.type == "cuda" and state.active:
        return torch.device("cuda", state.local_rank)
    return device


def barrier() -> None:
    if info().active:
        dist.barrier()


def mean(value: float) -> float:
    """The mean of a scalar over all ranks (the value itself in a single process)."""
    state = info()
    if not state.active:
        return float(value)
    backend_device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    tensor = torch.tensor([float(value)], dtype=torch.float64, device=backend_device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / state.world_size


def sum_over_ranks(*tensors: torch.Tensor) -> None:
    """Replace each tensor by its sum over all ranks, in place (no-op in one process).

    For results split by rows between the ranks: each rank fills its own rows and leaves zeros elsewhere.
    Tensors may live on the CPU; under NCCL they travel through the rank's GPU.
    """
    if not info().active:
        return
    backend_device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    for tensor in tensors:
        buffer = tensor.to(backend_device) if backend_device is not None else tensor
        dist.all_reduce(buffer)
        if buffer is not tensor:
            tensor.copy_(buffer)


def average_buffers(module: nn.Module) -> None:
    """Replace every floating-point buffer of ``module`` by its mean over all ranks (no-op in one process)."""
    if not info().active:
        return
    for buffer in module.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer)
            buffer.div_(info().world_size)


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` wrapped in DistributedDataParallel under a process group, else ``model`` itself."""
    if not info().active:
        return model
    ids = [device.index if device.index is not None else 0] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def shutdown() -> None:
    """Leave the process group once every rank has reached this point.

    The barrier matters with gloo: a rank that destroys its group while a peer still has an operation in
    flight can abort the peer ("terminate called without an active exception", SIGABRT).
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
