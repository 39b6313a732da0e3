"""A GAN: the generator's objective and the discriminator's, each with its own optimiser.

:class:`GAN` is a :class:`~deepgm.models.Model` whose main objective is the generator's (any expression
holding adversarial terms from :mod:`deepgm.losses.gan`, e.g. ``NonSaturatingGAN(p_data, p_g, D).mean()``
plus anything else) and whose auxiliary objective is the sum of those terms' discriminator losses,
stepped ``d_steps`` times before every generator step. ``train_step`` returns
``{"loss": generator loss, "discriminator": discriminator loss}``; ``eval_step`` returns ``MMD²`` between
a batch of generated samples and the given batch (a multi-bandwidth Gaussian kernel; lower is better),
a number the trainer can validate and select checkpoints by, which a generator loss is not.

>>> from deepgm.distributions import Empirical, Normal
>>> from deepgm.losses import LogProb, NonSaturatingGAN
>>> _ = torch.manual_seed(0)
>>> generator = Normal(var=["x"], loc=nn.Parameter(torch.zeros(2)), scale=1.0, name="p_g")
>>> gan = GAN(NonSaturatingGAN(Empirical(var=["x"]), generator, nn.Linear(2, 1)).mean(), generator)
>>> sorted(gan.train_step({"x": torch.randn(8, 2) + 3}))  # one discriminator step, one generator step
['discriminator', 'loss']
>>> gan.generate(5).shape, type(gan.eval_step({"x": torch.randn(8, 2)}))  # eval_step: MMD² to the batch
(torch.Size([5, 2]), <class 'float'>)
>>> discriminator_objective(-LogProb(generator).mean())  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
deepgm.errors.ObjectiveError: the objective -mean(log p_g(x)) has no adversarial term (deepgm.losses.gan) to ...
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from deepgm.distributions.base import Distribution
from deepgm.errors import ObjectiveError
from deepgm.losses.adversarial import AdversarialLoss
from deepgm.losses.expr import Loss
from deepgm.losses.mmd import mmd2_mixture
from deepgm.models.evaluation import conditions_of, generator_metrics, rows, save_sample_figure
from deepgm.models.model import AuxiliaryObjective, Model

if TYPE_CHECKING:
    from deepgm.data.prepared import DataInfo

__all__ = ["GAN", "discriminator_objective"]


def discriminator_objective(loss: Loss, *, modules: Sequence[nn.Module] = (), extra: Loss | None = None,
                            optimizer: Callable[..., torch.optim.Optimizer] = torch.optim.Adam,
                            optimizer_params: Mapping[str, Any] | None = None, steps: int = 1,
                            when: Literal["before", "after"] = "before",
                            name: str = "discriminator") -> AuxiliaryObjective:
    """The :class:`AuxiliaryObjective` training the discriminators of every adversarial term of ``loss``:
    the sum of their ``discriminator_loss()`` (plus ``extra``), with their post-step hooks (clipping)."""
    advs = adversarial_terms(loss)
    if not advs:
        raise ObjectiveError(f"the objective {loss} has no adversarial term (deepgm.losses.gan) to train a "
                             f"discriminator for")
    total: Loss = advs[0].discriminator_loss()
    for a in advs[1:]:
        total = total + a.discriminator_loss()
    if extra is not None:
        total = total + extra
    hooks = [a.after_discriminator_step for a in advs]
    owned = [m for node in total.walk() for m in node.own_modules()]
    return AuxiliaryObjective(total, modules=(*owned, *modules), optimizer=optimizer,
                              optimizer_params=dict(optimizer_params or {}), steps=steps,
                              when=when, name=name, after_step=hooks)


def adversarial_terms(loss: Loss) -> list[AdversarialLoss]:
    """The adversarial nodes of ``loss`` that have a discriminator to train, each once."""
    seen: dict[int, AdversarialLoss] = {}
    for node in loss.walk():
        if isinstance(node, AdversarialLoss) and not (hasattr(node, "features") and node.features is None):
            seen.setdefault(id(node), node)
    return list(seen.values())


class GAN(Model):
    """Generator and discriminator(s) trained in turn (see the module docstring).

    ``loss``: the generator's scalar objective; ``generator``: the model distribution (sampled by
    :meth:`generate`); ``distributions``: every distribution the generator's optimiser trains (default
    ``[generator]``; add an encoder for BiGAN/ALI). ``discriminator_extra`` adds a term to the
    discriminator's objective (InfoGAN's and ACGAN's classifier losses) and ``discriminator_modules`` the
    modules it trains beyond the adversarial terms' own. With no adversarial term (GMMN) it is a plain
    model trained by one optimiser.
    """

    generator: Distribution  # set in __init__ (not a submodule: its weights live in ``distributions``)

    def __init__(self, loss: Loss, generator: Distribution, *, distributions: Sequence[Distribution] | None = None,
                 d_steps: int = 1, optimizer: Callable[..., torch.optim.Optimizer] = torch.optim.Adam,
                 optimizer_params: Mapping[str, Any] | None = None,
                 d_optimizer: Callable[..., torch.optim.Optimizer] = torch.optim.Adam,
                 d_optimizer_params: Mapping[str, Any] | None = None, discriminator_extra: Loss | None = None,
                 discriminator_modules: Sequence[nn.Module] = (), x_var: str | None = None,
                 eval_bandwidths: Sequence[float] = (0.5, 1.0, 2.0), **model_kwargs: Any) -> None:
        if not isinstance(generator, Distribution):
            raise TypeError(f"GAN: generator must be a deepgm distribution, got {type(generator).__name__}")
        if d_steps < 1:
            raise ValueError(f"GAN: d_steps must be >= 1, got {d_steps}")
        aux = []
        if adversarial_terms(loss) if isinstance(loss, Loss) else False:
            aux.append(discriminator_objective(loss, modules=discriminator_modules, extra=discriminator_extra,
                                               optimizer=d_optimizer, optimizer_params=d_optimizer_params,
                                               steps=d_steps))
        elif discriminator_extra is not None:
            raise ObjectiveError("GAN: discriminator_extra given, but the objective has no adversarial term")
        super().__init__(loss, list(distributions) if distributions is not None else [generator], optimizer,
                         optimizer_params or {"lr": 2e-4, "betas": (0.5, 0.999)}, auxiliary=aux, **model_kwargs)
        self.__dict__["generator"] = generator  # not a second submodule: its weights live in `distributions`
        self.d_steps = d_steps
        self.x_var = x_var or generator.var[0]
        if self.x_var not in generator.var:
            raise ValueError(f"GAN: x_var {self.x_var!r} is not a variable of {generator.prob_text}")
        self.eval_bandwidths = tuple(eval_bandwidths)

    @torch.no_grad()
    def generate(self, n: int, **conditions: torch.Tensor) -> torch.Tensor:
        """``n`` draws of ``x`` from the generator (in eval mode), given any conditions (e.g. ``y``)."""
        with self.evaluating():
            return self.generator.sample(dict(conditions), batch_n=n)[self.x_var]

    def eval_step(self, inputs: Mapping[str, Any], **params: Any) -> float:
        """``MMD²`` (Gaussian kernels at ``eval_bandwidths`` × the batch's median distance) between
        ``len(batch)`` generated samples and the batch ``inputs[x_var]``; lower is better."""
        x = inputs[self.x_var]
        conds = {c: inputs[c] for c in self.generator.cond_var if c in inputs}
        fake = self.generate(int(x.shape[0]), **conds)
        with torch.no_grad():
            return float(mmd2_mixture(fake, x, self.eval_bandwidths))

    def evaluate(self, test_data: Mapping[str, torch.Tensor], *, k: int = 1000,
                 info: DataInfo | None = None) -> dict[str, Any]:
        """Sample-based scores of as many draws as there are test examples (conditioned on the test
        labels for a conditional generator): MNIST-FID and MNIST-IS on 28×28 images, else MMD², precision
        and recall (and mode coverage on the toy mixtures); see
        :func:`~deepgm.models.evaluation.generator_metrics`. ``k`` is not used (no likelihood)."""
        x = test_data[self.x_var]
        conds = conditions_of(test_data, self.generator.cond_var)
        fake = torch.cat([self.generate(len(x[i:i + 1000]), **{c: v[i:i + 1000] for c, v in conds.items()})
                          for i in range(0, len(x), 1000)])
        return generator_metrics(fake, x, info, self.eval_bandwidths)

    def figures(self, out_dir: Path, test_data: Mapping[str, torch.Tensor], info: DataInfo) -> list[Path]:
        """``samples.png``: 64 draws (at the first test labels for a conditional generator), as an image
        grid or a 2-D scatter."""
        conds = conditions_of(test_data, self.generator.cond_var, 64)
        path = save_sample_figure(self.generate(rows(conds, 64), **conds), out_dir / "samples.png", info)
        return [path] if path is not None else []

