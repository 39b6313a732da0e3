"""Reusable networks: MLPs and the heads that turn features into distribution parameters.

A network of several inputs (a conditional generator ``G(z, y)``, a discriminator ``D(x, z)``) receives
them positionally and concatenates them along the last dimension.

An MLP and a head call their ``Linear`` layers and ReLUs through :func:`call`, which goes straight to
``F.linear``/``torch.relu`` when the layer has no hooks (and none are registered globally): a scan over
hundreds of time steps makes tens of thousands of such calls, and ``nn.Module.__call__`` is a good part
of their cost. A layer with a hook (pruning, a forward hook) is called as a module, as always.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import module as _module

__all__ = ["MLP", "activation", "call", "NormalHead", "LogitsHead", "AsLoc", "Concat", "OneHotInputs"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "softplus": nn.Softplus,
    "gelu": nn.GELU, "silu": nn.SiLU,
}


def call(m: nn.Module, *inputs: torch.Tensor) -> Any:
    """``m(*inputs)``, without ``nn.Module.__call__``'s layers when ``m`` has no hooks (nor are any registered
    globally): ``m.forward(*inputs)`` — the same condition under which ``__call__`` itself goes straight to
    ``forward`` — and, for a ``Linear`` or ``ReLU``, the functional call.

    >>> lin = nn.Linear(3, 2)
    >>> x = torch.randn(4, 3)
    >>> bool(torch.equal(call(lin, x), lin(x))), bool(torch.equal(call(nn.ReLU(), x), x.relu()))
    (True, True)
    """
    if (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks
            or _module._global_forward_hooks or _module._global_forward_pre_hooks
            or _module._global_backward_hooks or _module._global_backward_pre_hooks):
        return m(*inputs)
    kind = type(m)
    if kind is nn.Linear:
        params = m._parameters  # read directly: nn.Module.__getattr__ is the slow path for parameters
        return F.linear(inputs[0], params["weight"], params["bias"])  # type: ignore[arg-type]
    if kind is nn.ReLU:
        return torch.relu(inputs[0])
    return m.forward(*inputs)


def activation(name: str) -> nn.Module:
    """The activation module called ``name`` (relu, tanh, elu, leaky_relu, softplus, gelu, silu)."""
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(_ACTIVATIONS)}") from None


def _joined(inputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """One input as it is; several concatenated along the last dimension."""
    return torch.cat(list(inputs), -1) if len(inputs) > 1 else inputs[0]


class MLP(nn.Sequential):
    """``Linear → act → … → Linear`` through ``sizes`` (``[in, h1, …, out]``); no activation at the end
    unless ``out_activation`` is given.

    >>> MLP([4, 8, 2])(torch.zeros(3, 4)).shape
    torch.Size([3, 2])
    """

    def __init__(self, sizes: Sequence[int], act: str = "relu", out_activation: str | None = None) -> None:
        if len(sizes) < 2:
            raise ValueError(f"MLP needs at least an input and an output size, got {list(sizes)}")
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(activation(act))
        if out_activation is not None:
            layers.append(activation(out_activation))
        super().__init__(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for m in self._modules.values():
            x = call(m, x)  # type: ignore[arg-type]
        return x  # noqa: RET504


class NormalHead(nn.Module):
    """Features → ``{"loc", "scale"}`` with ``scale = softplus(·) + min_scale``, after an MLP body."""

    def __init__(self, body: nn.Module, features: int, out: int, min_scale: float = 1e-4) -> None:
        super().__init__()
        self.body = body
        self.loc = nn.Linear(features, out)
        self.scale = nn.Linear(features, out)
        self.min_scale = min_scale

    def forward(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        mods = self._modules
        h = call(mods["body"], _joined(inputs))  # type: ignore[arg-type]
        return {"loc": call(mods["loc"], h), "scale": F.softplus(call(mods["scale"], h)) + self.min_scale}  # type: ignore[arg-type]


class LogitsHead(nn.Module):
    """Inputs → ``{"logits": net(inputs)}`` (for Bernoulli and Categorical); several inputs are concatenated."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": call(self._modules["net"], _joined(inputs))}  # type: ignore[arg-type]


class AsLoc(nn.Module):
    """Inputs → ``{"loc": out(net(inputs))}``: a network as the location of a ``Deterministic`` (a GAN's
    generator ``x = G(z)``, an implicit posterior ``θ = f(y, ε)``); ``out`` is e.g. a sigmoid.

    >>> AsLoc(nn.Linear(3, 2))(torch.zeros(4, 1), torch.zeros(4, 2))["loc"].shape
    torch.Size([4, 2])
    """

    def __init__(self, net: nn.Module, out: nn.Module | None = None) -> None:
        super().__init__()
        self.net, self.out = net, out if out is not None else nn.Identity()

    def forward(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        mods = self._modules
        h = call(mods["net"], _joined(inputs))  # type: ignore[arg-type]
        out = mods["out"]
        return {"loc": h if type(out) is nn.Identity else call(out, h)}  # type: ignore[arg-type]


class Concat(nn.Module):
    """``net(cat(inputs))`` with every input flattened to ``(N, -1)`` first (integer inputs as floats of the
    default dtype): a network of several variables, e.g. a discriminator ``D(x, z)``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        flat = [t.reshape(t.shape[0], -1) for t in inputs]
        out: torch.Tensor = self.net(_joined([t if t.is_floating_point() else t.to(torch.get_default_dtype())
                                              for t in flat]))
        return out


class OneHotInputs(nn.Module):
    """Calls ``net`` with the inputs at ``positions`` turned into one-hot vectors of ``n_classes`` when
    they hold class indices (one-hot or relaxed inputs pass unchanged)."""

    def __init__(self, net: nn.Module, n_classes: int, positions: Sequence[int] = (1,)) -> None:
        super().__init__()
        self.net, self.n_classes, self.positions = net, n_classes, tuple(positions)

    def forward(self, *inputs: torch.Tensor) -> Any:  # whatever net returns: parameters or a discriminator's logits
        parts = list(inputs)
        dtype = next((t.dtype for t in parts if t.is_floating_point()), torch.get_default_dtype())
        for i in self.positions:
            if not parts[i].is_floating_point():
                parts[i] = F.one_hot(parts[i], self.n_classes).to(dtype)
        return self.net(*parts)
