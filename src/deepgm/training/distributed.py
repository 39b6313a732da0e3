"""Data parallelism over ``torch.distributed``: every process computes gradients on its share of the
global batch; before each optimiser step — of the main objective and of every auxiliary one
(discriminators, density ratios) alike — the objective's value and its gradients are averaged over the
processes (:func:`average_step`), so every replica takes the step one process would take on the whole
batch, and all of them skip or stop together on a non-finite value. The model checks the gradients for
NaN and infinity after they are averaged: one process's non-finite gradient makes the mean non-finite on
every process, so that check, too, gives one answer everywhere.

Gradients are averaged by an explicit all-reduce after the backward pass, in buckets of about
``BUCKET_BYTES`` (flattened, so a few collectives rather than one per parameter), not by
``torch.nn.parallel.DistributedDataParallel``: deepgm's objectives reach the networks through the
distributions' evaluation protocol, several times per step (the discriminator on real and generated
batches, the generator inside the discriminator's step) and with double backward (gradient penalties),
none of which DDP's once-per-``forward`` reducer supports; wrapping would also rename every weight in
the checkpoints. What it gives up is DDP's overlap of communication with the backward pass.

Launch with ``torchrun --nproc_per_node N -m deepgm.cli train ...`` (gloo on CPU, nccl on GPU).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence

import torch
import torch.distributed as tdist
from torch import nn

__all__ = ["init_from_env", "is_active", "rank", "world_size", "average_step", "average_gradients",
           "broadcast_module", "average_value", "BUCKET_BYTES"]

BUCKET_BYTES = 25 * 2**20  # gradients per all-reduce (DDP's default bucket size)


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


def _comm_device(params: Sequence[nn.Parameter]) -> torch.device:
    """Where the small collectives run: the parameters' device (nccl needs CUDA tensors), else the CPU."""
    return params[0].device if params else torch.device("cpu")


def average_step(value: float, params: Sequence[nn.Parameter], bucket_bytes: int = BUCKET_BYTES) -> float:
    """The mean of ``value`` over the processes; when it is finite, also replace the gradients of
    ``params`` by their means (see :func:`average_gradients`). Every process gets the same mean, so all
    of them step, skip or stop together."""
    params = list(params)
    # one small all-reduce: the value, then which parameters have a gradient on each process
    small = torch.tensor([value] + [float(p.grad is not None) for p in params], dtype=torch.float64,
                         device=_comm_device(params))
    tdist.all_reduce(small, op=tdist.ReduceOp.SUM)
    mean = float(small[0].item()) / tdist.get_world_size()
    if math.isfinite(mean):
        present = [bool(c > 0) for c in small[1:].tolist()]
        _average_grads(params, present, bucket_bytes)
    return mean


def average_gradients(params: Iterable[nn.Parameter], bucket_bytes: int = BUCKET_BYTES) -> None:
    """Replace every gradient by its mean over the processes (flat buckets of about ``bucket_bytes``).

    A parameter without a gradient on some process counts as a zero gradient there (its share of the
    batch did not reach it); one without a gradient on every process keeps none."""
    params = list(params)
    present = torch.tensor([float(p.grad is not None) for p in params], dtype=torch.float64,
                           device=_comm_device(params))
    tdist.all_reduce(present, op=tdist.ReduceOp.SUM)
    _average_grads(params, [bool(c > 0) for c in present.tolist()], bucket_bytes)


def _average_grads(params: Sequence[nn.Parameter], present: Sequence[bool], bucket_bytes: int) -> None:
    grads: list[torch.Tensor] = []
    for p, anywhere in zip(params, present):
        if not anywhere:
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        grads.append(p.grad)
    world = tdist.get_world_size()
    for bucket in _buckets(grads, bucket_bytes):
        flat = torch.cat([g.reshape(-1) for g in bucket])
        tdist.all_reduce(flat, op=tdist.ReduceOp.SUM)
        flat /= world
        offset = 0
        for g in bucket:
            n = g.numel()
            g.copy_(flat[offset:offset + n].view_as(g))
            offset += n


def _buckets(grads: Sequence[torch.Tensor], bucket_bytes: int) -> list[list[torch.Tensor]]:
    """Consecutive gradients of one dtype and device, about ``bucket_bytes`` each (the same split on
    every process, since it depends only on the parameters' shapes)."""
    out: list[list[torch.Tensor]] = []
    size = 0
    for g in grads:
        nbytes = g.numel() * g.element_size()
        last = out[-1] if out else None
        if last is None or size + nbytes > bucket_bytes or (last[0].dtype, last[0].device) != (g.dtype, g.device):
            out.append([g])
            size = nbytes
        else:
            last.append(g)
            size += nbytes
    return out


def average_value(value: float, device: torch.device | str = "cpu") -> float:
    """The mean of a scalar over the processes (``device``: a CUDA device under nccl)."""
    t = torch.tensor([value], dtype=torch.float64, device=device)
    tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
    return float(t.item()) / tdist.get_world_size()


def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Copy ``src``'s parameters and buffers to every process, so replicas start equal."""
    for t in list(module.parameters()) + list(module.buffers()):
        tdist.broadcast(t.data, src=src)
