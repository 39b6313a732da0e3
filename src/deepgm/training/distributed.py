"""Data parallelism over ``torch.distributed``: every process computes gradients on its share of the
global batch; gradients are averaged with one all-reduce of a flattened buffer before each optimiser
step, so every replica takes the same step as one process on the whole batch would.

Launch with ``torchrun --nproc_per_node N -m deepgm.cli train ...`` (gloo on CPU, nccl on GPU).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import torch
import torch.distributed as tdist
from torch import nn

__all__ = ["init_from_env", "is_active", "rank", "world_size", "average_gradients", "broadcast_module",
           "average_value"]


def init_from_env(backend: str | None = None) -> bool:
    """Join the process group that ``torchrun`` describes in the environment; False when not launched so."""
    if is_active():
        return True
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) <= 1:
        return False
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    tdist.init_process_group(backend=backend)
    return True


def is_active() -> bool:
    """Whether a process group with more than one process is running."""
    return tdist.is_available() and tdist.is_initialized() and tdist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return tdist.get_rank() if is_active() else 0


def world_size() -> int:
    """The number of processes (1 when not distributed)."""
    return tdist.get_world_size() if is_active() else 1


def average_gradients(params: Iterable[nn.Parameter]) -> None:
    """Replace every gradient by its mean over the processes (one all-reduce of a flat buffer)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    tdist.all_reduce(flat, op=tdist.ReduceOp.SUM)
    flat /= tdist.get_world_size()
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n


def average_value(value: float) -> float:
    """The mean of a scalar over the processes."""
    t = torch.tensor([value], dtype=torch.float64)
    tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
    return float(t.item()) / tdist.get_world_size()


def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Copy ``src``'s parameters and buffers to every process, so replicas start equal."""
    for t in list(module.parameters()) + list(module.buffers()):
        tdist.broadcast(t.data, src=src)
