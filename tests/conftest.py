"""Shared test helpers."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

# fp32 throughout unless a test asks for bf16 (DERC_BF16, runtime.use_bf16), even where a developer's shell
# turned it on; tests of the bf16 path set it themselves
os.environ["DERC_BF16"] = "0"


@contextmanager
def restored_derc_state(threads: int = 1) -> Iterator[None]:
    """Run in-process training/inference with ``threads`` torch threads; afterwards remove the handlers that
    training added to the 'derc' logger and restore its level and the thread count."""
    logger = logging.getLogger("derc")
    saved = (list(logger.handlers), logger.propagate, logger.level, torch.get_num_threads())
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        for handler in set(logger.handlers) - set(saved[0]):
            logger.removeHandler(handler)
            handler.close()
        logger.propagate, logger.level = saved[1], saved[2]
        torch.set_num_threads(saved[3])
