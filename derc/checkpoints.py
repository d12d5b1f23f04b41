"""Safe saving and loading of weights and training state.

Files are written atomically and carry a header with a SHA-256 of the payload, so a truncated or
tampered file is refused instead of silently loading altered numbers (torch's zip reader does not notice a
changed byte inside tensor data). The payload is an ordinary ``torch.save`` archive read back with
``torch.load(weights_only=True)``, which also refuses pickles that would run code. Every failure becomes a
:class:`~derc.errors.ModelFolderError` naming the file and what it was meant to hold.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from derc.errors import ModelFolderError
from derc.fileio import atomic_path

MAGIC = b"DERC-STATE-1\n"
_DIGEST_SIZE = hashlib.sha256().digest_size
_PRIMITIVES = (str, int, float, bool, bytes, type(None), torch.Tensor, torch.Size, torch.dtype, torch.device)

PathLike = str | os.PathLike[str]


def _check_storable(value: Any, where: str) -> None:
    """Reject values that ``torch.load(weights_only=True)`` would refuse later (e.g. NumPy arrays)."""
    if isinstance(value, _PRIMITIVES):
        return
    if isinstance(value, dict | OrderedDict):
        for key, item in value.items():
            if not isinstance(key, str | int):
                raise TypeError(f"{where}: key {key!r} is not a str or int")
            _check_storable(item, f"{where}[{key!r}]")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_storable(item, f"{where}[{index}]")
        return
    raise TypeError(f"{where}: {type(value).__name__} cannot be saved safely (use tensors, containers, primitives)")


def save_state(path: PathLike, state: dict[str, Any]) -> None:
    """Save a dict of tensors, state_dicts and primitive values atomically, with an integrity header."""
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict, got {type(state).__name__}")
    _check_storable(state, "state")
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getbuffer()
    digest = hashlib.sha256(payload).digest()
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(MAGIC)
        handle.write(digest)
        handle.write(payload)


def _torch_load(source: Any, path: PathLike, what: str) -> Any:
    try:
        return torch.load(source, weights_only=True, map_location="cpu")
    except Exception as error:  # torch raises many kinds; the user needs the file and the reason
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelFolderError(f"cannot load {what} from {path}: {reason}") from error


def load_state(path: PathLike, *, what: str) -> dict[str, Any]:
    """Load a file written by :func:`save_state`; any problem raises ModelFolderError naming it."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ModelFolderError(f"{what} file {path} is missing") from None
    except OSError as error:
        raise ModelFolderError(f"cannot read {what} file {path}: {error}") from error
    header = len(MAGIC) + _DIGEST_SIZE
    if not data.startswith(MAGIC):
        raise ModelFolderError(f"{what} file {path} was not written by this program (bad header)")
    if len(data) < header:
        raise ModelFolderError(f"{what} file {path} is truncated")
    view = memoryview(data)
    payload = view[header:]
    if hashlib.sha256(payload).digest() != bytes(view[len(MAGIC) : header]):
        raise ModelFolderError(f"{what} file {path} is truncated or corrupted (checksum mismatch)")
    state = _torch_load(io.BytesIO(payload), path, what)
    if not isinstance(state, dict):
        raise ModelFolderError(f"{what} file {path} does not hold a dict (got {type(state).__name__})")
    return state


def load_torch_file(path: PathLike, *, what: str) -> dict[str, Any]:
    """Load a plain third-party ``torch.save`` dict (e.g. torchvision weights) safely, without our header."""
    if not Path(path).is_file():
        raise ModelFolderError(f"{what} file {path} is missing")
    state = _torch_load(str(path), path, what)
    if not isinstance(state, dict):
        raise ModelFolderError(f"{what} file {path} does not hold a state_dict (got {type(state).__name__})")
    return state


def save_weights(path: PathLike, module: nn.Module) -> None:
    """Save a module's state_dict (moved to the CPU) with :func:`save_state`."""
    weights = {key: value.detach().cpu() for key, value in module.state_dict().items()}
    save_state(path, {"state_dict": weights})


def apply_state_dict(module: nn.Module, state_dict: Any, *, path: PathLike, what: str) -> None:
    """Load ``state_dict`` into ``module`` strictly; mismatched keys or shapes raise ModelFolderError."""
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ModelFolderError(f"{what} file {path} does not hold a state_dict of tensors")
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = [k for k in expected if k in state_dict and state_dict[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} key(s), e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s), e.g. {unexpected[:3]}")
    if mismatched:
        shown = ", ".join(f"{k}: {tuple(state_dict[k].shape)} vs {tuple(expected[k].shape)}" for k in mismatched[:3])
        problems.append(f"{len(mismatched)} shape mismatch(es), e.g. {shown}")
    if problems:
        raise ModelFolderError(f"{what} file {path} does not match the model: {'; '.join(problems)}")
    module.load_state_dict(state_dict, strict=True)


def load_weights(path: PathLike, module: nn.Module, *, what: str) -> None:
    """Load weights written by :func:`save_weights` into ``module`` (strict)."""
    state = load_state(path, what=what)
    apply_state_dict(module, state.get("state_dict"), path=path, what=what)
